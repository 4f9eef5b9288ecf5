"""The quarterly check-in on schedule: open, prompt, follow up, list non-responders, close, post the rollup.

Every message is an outbox row with a unique key, so any number of tickers can plan the same cycle
and each owner still gets exactly one prompt and at most the two follow-ups, in their own time
zone, on business days, never two check-in messages on one day. Prompts, follow-ups and the
coordinators' non-responder lists are riders: each goes out as a section of its reader's digest
for the day (the planner folds it in), so a check-in never makes a second DM.

A rollup goes into a channel whole or not at all: the bot joins a public channel before posting
(it could post there without joining, but not share the chart), and a private channel it was not
invited to refuses the post itself. When Slack refuses any part, whoever asked (for a scheduled
rollup: the channel's department coordinators, else the REAP admins) gets a DM saying why, owed
once through the outbox under the failed row's key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.agenda import Agenda
from domain.calendar import BusinessCalendar
from domain.checkin import AGENDA_BEFORE_MEETING, CHECKIN_PROMPT, checkin_window
from domain.errors import ReapError
from domain.fiscal import FiscalQuarter
from domain.status import OPEN_STATUSES, Role
from messages import primitives as ui
from messages.agenda import build_agenda_blocks
from messages.checkin import build_checkin_note, build_checkin_prompt
from messages.failures import build_rollup_failed
from reminders.digest import (
    FOOTER,
    NotificationKind,
    RenderContext,
    Rendered,
    Rider,
    Section,
    SectionContext,
    Skip,
    zone_of,
)
from reminders.planner import PlanConfig
from storage.checkins import (
    NONRESPONDERS,
    NONRESPONDERS_TO_CLOSER,
    ROLLUP,
    close_and_owe,
    open_cycle,
    rollup_channels,
)
from storage.checkins import (
    outbox_key as _key,
)
from storage.checkins import (
    outbox_row as _row,
)
from storage.engine import Sessions, transaction
from storage.models import (
    ActionItem,
    CheckInCycle,
    CheckInResponse,
    Department,
    Measure,
    Notification,
    NotificationCreate,
    NotificationState,
    Person,
)
from storage.outbox import enqueue
from storage.permissions import SYSTEM_ACTOR, Actor
from storage.queries.agenda import build_agenda
from storage.queries.checkins import CheckInSubject, checkin_subject
from storage.queries.people import active_coordinators

log = logging.getLogger(__name__)

PROMPT = CHECKIN_PROMPT
FOLLOWUP = "checkin_followup"
CHECKIN_KINDS = (PROMPT, FOLLOWUP)
# Whoever asked for a rollup hears at once why it failed; a scheduled rollup's failure is a rider.
AGENDA = "agenda"  # the DEI meeting agenda, posted to the DEI and department channels
AGENDA_NOTICE = "agenda_notice"  # and a note of it in each coordinator's digest
ROLLUP_FAILED = "rollup_failed"
ROLLUP_FAILED_NOTICE = "rollup_failed_notice"


@dataclass(frozen=True)
class Schedule:
    """A cycle's business days: open, first follow-up (halfway), second (day before due), due."""

    opens_on: date
    halfway: date
    day_before: date
    due_on: date

    @classmethod
    def of(cls, cycle: CheckInCycle, calendar: BusinessCalendar) -> Schedule:
        """The schedule from the cycle's stored window, or derived from its meeting date."""
        window = checkin_window(cycle.meeting_date, calendar)
        opens_on = cycle.opens_on or window.opens_on
        due_on = cycle.due_on or window.due_on
        span = calendar.business_days_between(opens_on, due_on)
        halfway = calendar.add_business_days(opens_on, max(1, span // 2))
        return cls(opens_on, halfway, calendar.add_business_days(due_on, -1), due_on)


@dataclass
class CheckInReport:
    """What one planning pass did to the check-in cycles of a workspace."""

    opened: list[str]
    closed: list[str]
    inserted: int = 0


async def _owners(session: AsyncSession, team_id: str) -> dict[str, Person]:
    """Active people who own an open item or a measure: the ones a check-in asks."""
    owners = set(
        await session.exec(
            select(ActionItem.owner_id)
            .where(ActionItem.team_id == team_id)
            .where(col(ActionItem.status).in_(OPEN_STATUSES))
            .where(col(ActionItem.owner_id).is_not(None))
            .distinct()
        )
    )
    owners |= set(
        await session.exec(
            select(Measure.owner_id)
            .where(Measure.team_id == team_id)
            .where(col(Measure.owner_id).is_not(None))
            .distinct()
        )
    )
    people = await session.exec(
        select(Person)
        .where(Person.team_id == team_id)
        .where(col(Person.user_id).in_([o for o in owners if o]))
    )
    return {p.user_id: p for p in people if p.active}


async def _responders(session: AsyncSession, cycle: CheckInCycle) -> set[str]:
    return set(
        await session.exec(select(CheckInResponse.responder).where(CheckInResponse.cycle_id == cycle.id))
    )


async def _sent(session: AsyncSession, team_id: str, quarter: str) -> tuple[dict[str, set[date]], set[str]]:
    """For each recipient, the local days a check-in message of this cycle went out on (on its own
    or in a digest); and the keys of every one owed."""
    prefix = [f"{team_id}:{kind}:{quarter}:" for kind in CHECKIN_KINDS]
    rows = await session.exec(
        select(Notification.recipient, col(Notification.local_date), Notification.key, Notification.state)
        .where(Notification.team_id == team_id)
        .where(col(Notification.kind).in_(CHECKIN_KINDS))
    )
    days: dict[str, set[date]] = {}
    keys: set[str] = set()
    for recipient, day, key, state in rows:
        if any(key.startswith(p) for p in prefix) and day is not None:
            keys.add(key)
            # One still waiting for a digest has not used up a day yet.
            if state != NotificationState.PENDING.value:
                days.setdefault(recipient, set()).add(day)
    return days, keys


def _zone(person: Person, default: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(person.tz) if person.tz else default
    except (KeyError, ValueError):
        return default


async def plan_checkins(
    sessions: Sessions,
    *,
    team_id: str,
    now: datetime,
    config: PlanConfig,
    dei_channel: str | None = None,
    fiscal_start_month: int = 7,
    agenda_days: int = AGENDA_BEFORE_MEETING,
) -> CheckInReport:
    """Open cycles whose day has come, owe prompts and follow-ups, close cycles that are due, and
    owe each DEI meeting's agenda when it is `agenda_days` business days away."""
    async with sessions() as session, session.begin():
        return await plan_checkins_in(
            session,
            team_id=team_id,
            now=now,
            config=config,
            dei_channel=dei_channel,
            fiscal_start_month=fiscal_start_month,
            agenda_days=agenda_days,
        )


async def _agendas(
    session: AsyncSession,
    *,
    team_id: str,
    now: datetime,
    config: PlanConfig,
    dei_channel: str | None,
    days: int,
) -> list[NotificationCreate]:
    """The agenda of each DEI meeting `days` business days away (or nearer, up to the day itself):
    a post to the DEI and department channels, and a note in every coordinator's digest; keyed by
    quarter, so it goes out once."""
    today = now.astimezone(config.zone).date()
    if config.slot(now, config.zone) is None:
        return []
    rows: list[NotificationCreate] = []
    cycles = await session.exec(
        select(CheckInCycle)
        .where(CheckInCycle.team_id == team_id)
        .where(col(CheckInCycle.meeting_date) >= today)
    )
    for cycle in cycles:
        if today < config.calendar.add_business_days(cycle.meeting_date, -days):
            continue
        payload = {"quarter": cycle.quarter, "meeting": cycle.meeting_date.isoformat()}
        for channel in await rollup_channels(
            session, team_id=team_id, department=None, dei_channel=dei_channel
        ):
            key = _key(team_id, AGENDA, cycle.quarter, channel)
            rows.append(_row(team_id, AGENDA, key, channel, None, payload, now))
        coordinators = await session.exec(
            select(Person.user_id)
            .where(Person.team_id == team_id)
            .where(col(Person.role).in_([Role.COORDINATOR.value, Role.DEI.value]))
            .where(Person.active == True)  # noqa: E712
        )
        for user_id in coordinators:
            key = _key(team_id, AGENDA_NOTICE, cycle.quarter, user_id)
            rows.append(_row(team_id, AGENDA_NOTICE, key, user_id, today, payload, now))
    return rows


async def plan_checkins_in(
    session: AsyncSession,
    *,
    team_id: str,
    now: datetime,
    config: PlanConfig,
    dei_channel: str | None = None,
    fiscal_start_month: int = 7,
    agenda_days: int = AGENDA_BEFORE_MEETING,
) -> CheckInReport:
    """plan_checkins inside the caller's transaction (a dry run rolls it back)."""
    report = CheckInReport(opened=[], closed=[])
    org_today = now.astimezone(config.zone).date()
    system = Actor.system(team_id)
    cycles = list(
        await session.exec(
            select(CheckInCycle)
            .where(CheckInCycle.team_id == team_id)
            .where(col(CheckInCycle.closed_at).is_(None))
        )
    )
    rows: list[NotificationCreate] = []
    for cycle in cycles:
        schedule = Schedule.of(cycle, config.calendar)
        if cycle.opened_at is None:
            if not schedule.opens_on <= org_today < schedule.due_on:
                continue
            await open_cycle(
                session,
                actor=system,
                quarter=cycle.quarter,
                now=now,
                opens_on=schedule.opens_on,
                due_on=schedule.due_on,
            )
            report.opened.append(cycle.quarter)
        if org_today >= schedule.due_on and config.slot(now, config.zone) is not None:
            rows += await close_and_owe(
                session,
                actor=system,
                quarter=cycle.quarter,
                now=now,
                dei_channel=dei_channel,
                start_month=fiscal_start_month,
            )
            report.closed.append(cycle.quarter)
            continue
        rows += await _prompts(session, cycle, schedule, now=now, config=config)
    rows += await _agendas(
        session, team_id=team_id, now=now, config=config, dei_channel=dei_channel, days=agenda_days
    )
    report.inserted = await enqueue(session, rows=rows)
    return report


async def _prompts(
    session: AsyncSession, cycle: CheckInCycle, schedule: Schedule, *, now: datetime, config: PlanConfig
) -> list[NotificationCreate]:
    team_id, quarter = cycle.team_id, cycle.quarter
    owners = await _owners(session, team_id)
    answered = await _responders(session, cycle)
    days_sent, keys_sent = await _sent(session, team_id, quarter)
    owed: list[NotificationCreate] = []
    for user_id, person in owners.items():
        zone = _zone(person, config.zone)
        day = config.slot(now, zone)
        if day is None or not schedule.opens_on <= day < schedule.due_on:
            continue
        if person.paused_until is not None and day < person.paused_until:
            continue
        days = days_sent.get(user_id, set())
        if day in days:
            continue  # one check-in message a day
        payload = {"quarter": quarter, "zone": zone.key, "local_date": day.isoformat()}
        if not days:
            owed.append(
                _row(team_id, PROMPT, _key(team_id, PROMPT, quarter, user_id), user_id, day, payload, now)
            )
            continue
        if user_id in answered:
            continue
        # A follow-up held back by a day that already had a DM goes on the next free day instead.
        halfway = _key(team_id, FOLLOWUP, quarter, user_id, "halfway")
        if schedule.halfway <= day < schedule.day_before and halfway not in keys_sent:
            owed.append(_row(team_id, FOLLOWUP, halfway, user_id, day, {**payload, "which": "halfway"}, now))
        elif day == schedule.day_before:
            key = _key(team_id, FOLLOWUP, quarter, user_id, "day_before")
            owed.append(_row(team_id, FOLLOWUP, key, user_id, day, {**payload, "which": "day_before"}, now))
    return owed


# --- rendering at send time ----------------------------------------------------------------------


async def _prompt_subject(
    session: AsyncSession, *, team_id: str, recipient: str, quarter: str, followup: bool
) -> tuple[CheckInCycle, CheckInSubject] | Skip:
    """The open cycle and what `recipient` has to check in on, or why there is nothing to say."""
    cycle = (
        await session.exec(
            select(CheckInCycle).where(CheckInCycle.team_id == team_id).where(CheckInCycle.quarter == quarter)
        )
    ).first()
    if cycle is None or cycle.closed_at is not None:
        return Skip(f"the {quarter} check-in is closed")
    if followup and recipient in await _responders(session, cycle):
        return Skip("already checked in")
    subject = await checkin_subject(session, team_id=team_id, user_id=recipient)
    if not subject.items and not subject.measures:
        return Skip("nothing open to check in on")
    return cycle, subject


def _prompt_message(
    cycle: CheckInCycle, subject: CheckInSubject, *, followup: bool, zone: ZoneInfo, now: datetime
) -> tuple[str, list[dict[str, Any]]]:
    quarter = cycle.quarter
    blocks = build_checkin_prompt(quarter, subject, zone=zone, today=now.astimezone(zone).date())
    if followup:
        due = f" It is due {ui.date_token(cycle.due_on, zone)}." if cycle.due_on else ""
        blocks.insert(0, ui.context(f":bell: A reminder: your {quarter} check-in is still open.{due}"))
    return f"Your {quarter} REAP check-in" + (" (reminder)" if followup else ""), blocks


async def render_prompt(
    session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
) -> Rendered | Skip:
    """A check-in prompt or follow-up: the owner's open items and measures, one button."""
    row = rows[0]
    followup = row.kind == FOLLOWUP
    quarter = str((row.payload or {}).get("quarter") or "")
    found = await _prompt_subject(
        session, team_id=row.team_id, recipient=row.recipient, quarter=quarter, followup=followup
    )
    if isinstance(found, Skip):
        return found
    cycle, subject = found
    text, blocks = _prompt_message(
        cycle, subject, followup=followup, zone=zone_of(row, ctx.default_zone), now=ctx.now
    )
    return Rendered(text=text, blocks=blocks, lines=(text,), row_ids=frozenset(r.id for r in rows if r.id))


async def checkin_section(
    session: AsyncSession, carried: Sequence[Rider], sc: SectionContext
) -> Section | None:
    """The check-in in a digest: a note and the button that opens the one form (a prompt, if one is
    among the riders; else the follow-up's reminder)."""
    prompt = next((r for r in carried if r.kind == PROMPT), None) or carried[0]
    followup = prompt.kind == FOLLOWUP
    quarter = str(prompt.payload.get("quarter") or "")
    found = await _prompt_subject(
        session, team_id=sc.row.team_id, recipient=sc.row.recipient, quarter=quarter, followup=followup
    )
    if isinstance(found, Skip):
        return None
    cycle, subject = found
    text, alone = _prompt_message(cycle, subject, followup=followup, zone=sc.zone, now=sc.ctx.now)
    note = build_checkin_note(quarter, subject, due_on=cycle.due_on, zone=sc.zone, followup=followup)
    return Section(blocks=note, line=text, brief=note, alone=alone, alone_text=text)


def _nonresponders_text(payload: Mapping[str, Any]) -> str | None:
    waiting = [str(u) for u in payload.get("waiting") or []]
    if not waiting:
        return None
    quarter, department = payload.get("quarter"), payload.get("department")
    return (
        f"The {ui.escape(quarter)} check-in closed. In {ui.escape(department)}, "
        f"{len(waiting)} owner(s) did not respond: " + ", ".join(f"<@{u}>" for u in waiting[:100])
    )


async def render_nonresponders(
    session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
) -> Rendered | Skip:
    """The coordinator's list of owners who did not check in."""
    text = _nonresponders_text(rows[0].payload or {})
    if text is None:
        return Skip("everyone checked in")
    return Rendered(
        text=ui.clip(text, 3000),
        blocks=[ui.section(ui.clip(text, ui.SECTION_LIMIT))],
        lines=(text,),
        row_ids=frozenset(r.id for r in rows if r.id),
    )


async def nonresponders_section(
    session: AsyncSession, carried: Sequence[Rider], sc: SectionContext
) -> Section | None:
    """Who did not check in, per department, in a coordinator's digest."""
    texts = [text for rider in carried if (text := _nonresponders_text(rider.payload)) is not None]
    if not texts:
        return None
    blocks = [ui.section(ui.clip(f":clipboard: {text}", ui.SECTION_LIMIT)) for text in texts[:4]]
    line = texts[0] if len(texts) == 1 else f"{len(texts)} departments have owners who did not check in"
    brief = [ui.section(f":clipboard: {ui.clip(line, 500)} See `/reap checkin status`.")]
    return Section(
        blocks=blocks, line=line, brief=brief, alone=[*blocks, ui.context(FOOTER)], alone_text=line
    )


async def _agenda_of(session: AsyncSession, row: Notification, day: date, zone: ZoneInfo) -> Agenda | Skip:
    quarter = FiscalQuarter.parse(
        str((row.payload or {}).get("quarter")), today=day, start_month=_start_month(row)
    )
    try:
        return await build_agenda(session, team_id=row.team_id, quarter=quarter, today=day, zone=zone)
    except ReapError as exc:
        return Skip(str(exc))


async def render_agenda(
    session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
) -> Rendered | Skip:
    """The DEI meeting agenda as a channel post."""
    row = rows[0]
    agenda = await _agenda_of(session, row, ctx.now.astimezone(ctx.default_zone).date(), ctx.default_zone)
    if isinstance(agenda, Skip):
        return agenda
    text = f"DEI meeting agenda: {agenda.quarter}"
    return Rendered(
        text=text,
        blocks=build_agenda_blocks(agenda, ctx.default_zone)[: ui.MAX_MESSAGE_BLOCKS],
        lines=(text,),
        row_ids=frozenset(r.id for r in rows if r.id),
    )


def _agenda_line(agenda: Agenda, zone: ZoneInfo) -> str:
    meeting = ui.date_token(agenda.meeting_date, zone)
    return (
        f":spiral_note_pad: The {agenda.quarter} DEI meeting is on {meeting}:"
        f" {len(agenda.decisions_needed)} item(s) need a decision, {len(agenda.measures)} measure(s) to"
        f" discuss, {len(agenda.followups)} follow-up(s). `/reap agenda {agenda.quarter}` has it all."
    )


async def agenda_section(
    session: AsyncSession, carried: Sequence[Rider], sc: SectionContext
) -> Section | None:
    """The coming DEI meeting's agenda in brief, in a coordinator's digest."""
    rider = carried[0]
    row = Notification(
        team_id=sc.row.team_id,
        key=sc.row.key,
        kind=AGENDA_NOTICE,
        recipient=sc.row.recipient,
        payload=dict(rider.payload),
        send_after=sc.ctx.now,
        created_at=sc.ctx.now,
    )
    agenda = await _agenda_of(session, row, sc.ctx.now.astimezone(sc.zone).date(), sc.zone)
    if isinstance(agenda, Skip):
        return None
    line = _agenda_line(agenda, sc.zone)
    blocks = [ui.section(line)]
    return Section(
        blocks=blocks, line=line, brief=blocks, alone=[*blocks, ui.context(FOOTER)], alone_text=line
    )


async def render_agenda_notice(
    session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
) -> Rendered | Skip:
    """The agenda note on its own (when it cannot ride a digest)."""
    agenda = await _agenda_of(session, rows[0], ctx.now.astimezone(ctx.default_zone).date(), ctx.default_zone)
    if isinstance(agenda, Skip):
        return agenda
    line = _agenda_line(agenda, ctx.default_zone)
    return Rendered(
        text=line, blocks=[ui.section(line)], lines=(line,), row_ids=frozenset(r.id for r in rows if r.id)
    )


async def render_rollup(
    session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
) -> Rendered | Skip:
    """The rollup's summary message; the thread and the chart follow once it is posted."""
    from messages.rollup import slack_messages
    from storage.snapshots import quarter_rollup

    row = rows[0]
    quarter = FiscalQuarter.parse(
        str((row.payload or {}).get("quarter")), today=ctx.now.date(), start_month=_start_month(row)
    )
    # A closed quarter posts as it was frozen; an open one as it stands.
    rollup = await quarter_rollup(
        session,
        team_id=row.team_id,
        quarter=quarter,
        as_of=ctx.now.astimezone(ctx.default_zone).date(),
        department_key=_department(row),
        zone=ctx.default_zone,
    )
    summary, _ = slack_messages(rollup)
    return Rendered(
        text=summary["text"],
        blocks=summary["blocks"],
        lines=(summary["text"],),
        row_ids=frozenset(r.id for r in rows if r.id),
    )


def _start_month(row: Notification) -> int:
    return int((row.payload or {}).get("start_month") or 7)


def _department(row: Notification) -> str | None:
    department = (row.payload or {}).get("department")
    return str(department) if department else None


async def ensure_member(client: AsyncWebClient, row: Notification, channel: str) -> None:
    """Join a rollup's channel before posting, so the chart can follow the summary.

    chat:write.public would let the summary into a public channel the bot is not in, but Slack
    refuses file shares there (not_in_channel): joining first keeps a rollup from being half
    posted. A private channel cannot be joined; the post itself then shows whether someone
    invited the bot, and nothing goes out if not.
    """
    if not channel.startswith(("C", "G")):
        return
    try:
        await client.conversations_join(channel=channel)
    except SlackApiError as exc:
        if _error_of(exc) != "method_not_supported_for_channel_type":
            raise


def _error_of(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error") or "") if isinstance(data, dict) else ""


async def _rollup_recipients(session: AsyncSession, row: Notification, admins: frozenset[str]) -> list[str]:
    """Who hears that a rollup failed: whoever asked; for a scheduled one, the coordinators of the
    departments reporting into that channel (they chose it), else the REAP admins (who set the DEI
    channel)."""
    requester = str((row.payload or {}).get("requested_by") or "")
    if requester and requester != SYSTEM_ACTOR:
        return [requester]
    query = (
        select(Department)
        .where(Department.team_id == row.team_id)
        .where(Department.report_channel == row.recipient)
    )
    if department := _department(row):
        query = query.where(Department.key == department)
    ids = [d.id for d in await session.exec(query) if d.id is not None]
    found = await active_coordinators(session, team_id=row.team_id, department_ids=ids)
    coordinators = sorted({person.user_id for people in found.values() for person in people})
    return coordinators or sorted(admins)


def failure_key(row: Notification, recipient: str) -> str:
    """The outbox key that tells one person once that this rollup row failed."""
    return f"{row.key}:{ROLLUP_FAILED}:{recipient}"


async def owe_rollup_failure(
    session: AsyncSession,
    row: Notification,
    *,
    code: str,
    part: str,
    now: datetime,
    admins: frozenset[str] = frozenset(),
) -> int:
    """Owe the DM saying why a rollup (or its thread or chart) did not reach its channel."""
    recipients = await _rollup_recipients(session, row, admins)
    if not recipients:
        log.error("the %s rollup failed in %s (%s) and nobody can be told", row.key, row.recipient, code)
        return 0
    payload = row.payload or {}
    notice = {
        "quarter": payload.get("quarter"),
        "department": _department(row),
        "channel": row.recipient,
        "code": code,
        "part": part,
        "requested": str(payload.get("requested_by") or SYSTEM_ACTOR) != SYSTEM_ACTOR,
        "failed": row.key,
    }
    # Whoever asked hears at once (their own action); a scheduled rollup's readers in their digest.
    kind = ROLLUP_FAILED if notice["requested"] else ROLLUP_FAILED_NOTICE
    rows = [
        _row(row.team_id, kind, failure_key(row, recipient), recipient, None, notice, now)
        for recipient in recipients
    ]
    return await enqueue(session, rows=rows)


def _rollup_failed(payload: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    return build_rollup_failed(
        quarter=str(payload.get("quarter") or ""),
        channel=str(payload.get("channel") or ""),
        code=str(payload.get("code") or ""),
        part=str(payload.get("part") or "post"),
        department=str(payload["department"]) if payload.get("department") else None,
        requested=bool(payload.get("requested")),
    )


async def render_rollup_failed(
    session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
) -> Rendered | Skip:
    """The DM telling someone a rollup did not reach its channel, with Slack's reason in plain words."""
    text, blocks = _rollup_failed(rows[0].payload or {})
    return Rendered(
        text=ui.clip(text, 3000), blocks=blocks, lines=(text,), row_ids=frozenset(r.id for r in rows if r.id)
    )


async def rollup_failed_section(
    session: AsyncSession, carried: Sequence[Rider], sc: SectionContext
) -> Section | None:
    """A scheduled rollup that did not reach its channel, in the digest of whoever is told."""
    told = [_rollup_failed(rider.payload) for rider in carried[:3]]
    blocks = [block for _, parts in told for block in parts]
    line = told[0][0]
    brief = [ui.section(ui.clip(line, ui.SECTION_LIMIT))]
    return Section(
        blocks=blocks, line=line, brief=brief, alone=[*blocks, ui.context(FOOTER)], alone_text=line
    )


async def after_rollup(
    sessions: Sessions,
    client: AsyncWebClient,
    row: Notification,
    *,
    channel: str,
    ts: str,
    now: datetime,
    zone: ZoneInfo,
    admins: frozenset[str] = frozenset(),
) -> None:
    """Post the rollup's per-department detail in the summary's thread, then the chart (with alt
    text); if Slack refuses either, owe the notice saying so."""
    from messages.rollup import build_chart_alt_text, slack_messages
    from reports.chart import rollup_chart_png
    from storage.snapshots import quarter_rollup

    quarter = FiscalQuarter.parse(
        str((row.payload or {}).get("quarter")), today=now.date(), start_month=_start_month(row)
    )
    async with sessions() as session:
        rollup = await quarter_rollup(
            session,
            team_id=row.team_id,
            quarter=quarter,
            as_of=now.astimezone(zone).date(),
            department_key=_department(row),
            zone=zone,
        )
    _, replies = slack_messages(rollup)
    part = "thread"
    try:
        for reply in replies:
            await client.chat_postMessage(channel=channel, thread_ts=ts, **reply)
        part = "chart"
        await client.files_upload_v2(
            channel=channel,
            thread_ts=ts,
            content=rollup_chart_png(rollup),
            filename=f"reap-{quarter.label}.png",
            title=f"REAP {quarter.label}: status by strategy and measure progress",
            alt_txt=build_chart_alt_text(rollup),
        )
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
        code = _error_of(exc) if isinstance(exc, SlackApiError) else "unreachable"
        log.error("the %s of rollup %s failed in %s: %s", part, row.key, channel, code or exc)
        async with transaction(sessions) as session:
            await owe_rollup_failure(session, row, code=code, part=part, now=now, admins=admins)


def checkin_kinds(
    sessions: Sessions,
    client: AsyncWebClient,
    *,
    clock: Callable[[], datetime],
    zone: ZoneInfo,
    admins: frozenset[str] = frozenset(),
) -> dict[str, NotificationKind]:
    """The outbox kinds of the quarterly cycle; `client` (with retry handlers) posts rollup threads;
    `admins` hear of a scheduled rollup that failed in a channel no department coordinator chose."""

    async def thread(row: Notification, channel: str, ts: str) -> None:
        await after_rollup(
            sessions, client, row, channel=channel, ts=ts, now=clock(), zone=zone, admins=admins
        )

    async def failed(session: AsyncSession, rows: Sequence[Notification], reason: str, now: datetime) -> int:
        owed = 0
        for row in rows:
            owed += await owe_rollup_failure(session, row, code=reason, part="post", now=now, admins=admins)
        return owed

    return {
        PROMPT: NotificationKind(PROMPT, render_prompt, section=checkin_section, rank=40),
        FOLLOWUP: NotificationKind(FOLLOWUP, render_prompt, section=checkin_section, rank=40),
        NONRESPONDERS: NotificationKind(
            NONRESPONDERS, render_nonresponders, section=nonresponders_section, rank=50
        ),
        NONRESPONDERS_TO_CLOSER: NotificationKind(NONRESPONDERS_TO_CLOSER, render_nonresponders),
        ROLLUP_FAILED_NOTICE: NotificationKind(
            ROLLUP_FAILED_NOTICE, render_rollup_failed, section=rollup_failed_section, rank=60
        ),
        ROLLUP: NotificationKind(
            ROLLUP, render_rollup, on_failed=failed, before_send=ensure_member, after_send=thread
        ),
        ROLLUP_FAILED: NotificationKind(ROLLUP_FAILED, render_rollup_failed),
        AGENDA: NotificationKind(AGENDA, render_agenda, before_send=ensure_member),
        AGENDA_NOTICE: NotificationKind(AGENDA_NOTICE, render_agenda_notice, section=agenda_section, rank=45),
    }
