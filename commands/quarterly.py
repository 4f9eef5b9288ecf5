"""The quarterly cycle from Slack: check-ins, measure readings, and rollups posted into channels."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from commands import grammar as g
from commands.telling import tell_privately
from domain.calendar import BusinessCalendar, calendar_for_year
from domain.checkin import DUE_BEFORE_MEETING, OPEN_BEFORE_MEETING, checkin_window
from domain.errors import InvalidChange, NotFound, ReapError
from domain.fiscal import FiscalQuarter, QuarterError
from domain.numbers import one_line
from domain.status import ItemStatus
from domain.text import NOTE_MAX, number_problem, trimmed_problem, whole_percent
from messages import primitives as ui
from messages.agenda import build_agenda_blocks
from messages.checkin import NO_CHANGE, chunks
from storage import outbox
from storage.amendments import amend_quarter
from storage.checkins import (
    NO_CHANGE_NOTE,
    ItemAnswer,
    answers_change_anything,
    close_and_owe,
    cycle_progress,
    get_cycle,
    open_cycle,
    record_response,
    rollup_channels,
    rollup_requests,
    schedule_cycle,
)
from storage.decisions import record_decision
from storage.engine import reading, transaction
from storage.items import department_by_key
from storage.measures import GroupValue, record_reading
from storage.models import NotificationState
from storage.outbox import enqueue
from storage.permissions import ensure_coordinator
from storage.queries import checkins as queries
from storage.queries.agenda import agenda_cycle, build_agenda
from storage.queries.checkins import CheckInSubject

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from commands.service import Caller, Reap, Reply

log = logging.getLogger(__name__)

QUARTER_LABEL = re.compile(r"FY[0-9]{4}-Q[1-4]", re.ASCII)


def business_calendar(reap: Reap) -> BusinessCalendar:
    """The organisation's business calendar around today, from REAP_HOLIDAYS."""
    return calendar_for_year(reap.org.holidays, reap.org.holidays_file, reap.clock().year)


def _reply(text: str, blocks: list[dict[str, Any]] | None = None) -> Reply:
    from commands.service import Reply

    return Reply(text=text, blocks=blocks or [ui.section(text)])


async def run_checkin(reap: Reap, *, caller: Caller, command: g.CheckIn) -> Reply:
    """`/reap checkin start|status|close|schedule`."""
    quarter = command.quarter.label
    actor, now = caller.actor, caller.now
    calendar = business_calendar(reap)
    if command.action == "schedule":
        assert command.meeting is not None
        async with transaction(reap.sessions) as session:
            await schedule_cycle(session, actor=actor, quarter=quarter, meeting=command.meeting, now=now)
        window = checkin_window(command.meeting, calendar)
        when, opens, due = (
            ui.date_token(d, caller.zone) for d in (window.meeting, window.opens_on, window.due_on)
        )
        return _reply(f"The {quarter} DEI meeting is on {when}. The check-in opens {opens} and is due {due}.")
    if command.action == "start":
        async with transaction(reap.sessions) as session:
            cycle = await get_cycle(session, team_id=actor.team_id, quarter=quarter)
            meeting = cycle.meeting_date if cycle else None
            if meeting and meeting > caller.today:
                due_on = checkin_window(meeting, calendar).due_on
            else:
                due_on = calendar.add_business_days(caller.today, OPEN_BEFORE_MEETING - DUE_BEFORE_MEETING)
            due_on = max(due_on, calendar.add_business_days(caller.today, 1))
            cycle = await open_cycle(
                session,
                actor=actor,
                quarter=quarter,
                now=now,
                opens_on=caller.today,
                due_on=due_on,
                meeting=meeting,
            )
        due = ui.date_token(cycle.due_on or due_on, caller.zone)
        return _reply(
            f":clipboard: The {quarter} check-in is open; owners get their prompt at their next reminder "
            f"time. It is due {due}."
        )
    if command.action == "close":
        # Refused at once if it would be refused; the close itself follows the ack (close_checkin).
        async with reading(reap.sessions) as session:
            await ensure_coordinator(session, actor=actor, department_id=None, action="close check-ins")
            cycle = await get_cycle(session, team_id=actor.team_id, quarter=quarter)
        if cycle is None or cycle.opened_at is None:
            raise InvalidChange(f"The {quarter} check-in has not been opened.")
        reply = _reply(
            f"Closing the {quarter} check-in: its record is being frozen. You will see here when it is "
            "closed and the rollup is on its way."
        )
        reply.followups.append(
            lambda client: close_checkin(reap, caller=caller, quarter=quarter, client=client)
        )
        return reply
    return await _checkin_status(reap, caller, quarter)


async def close_checkin(reap: Reap, *, caller: Caller, quarter: str, client: AsyncWebClient) -> None:
    """Close and freeze `quarter` and owe its messages, after the command's ack, then tell the closer.

    Freezing a large plan's quarter takes seconds (3 s for 10,000 items on SQLite), more than Slack
    waits for an answer and more than a request's database time, so it runs after the ack, in a
    transaction of its own: closed and frozen together, or not at all.
    """
    try:
        async with transaction(reap.sessions) as session:
            rows = await close_and_owe(
                session,
                actor=caller.actor,
                quarter=quarter,
                now=caller.now,
                dei_channel=reap.org.dei_channel,
                start_month=reap.org.fiscal_year_start_month,
                zone=reap.org.zone,
            )
            await enqueue(session, rows=rows)
    except ReapError as exc:
        await tell_later(client, caller, f"The {quarter} check-in was not closed: {exc}")
        return
    except Exception:
        # The person was told it is closing: they must hear that it may not have, whatever failed.
        await tell_later(client, caller, CLOSE_FAILED.format(quarter=quarter))
        raise
    await tell_later(
        client,
        caller,
        f"The {quarter} check-in is closed; the rollup is on its way to the channels and "
        "coordinators get the list of owners who did not respond.",
    )
    await reap.deliver_soon()


async def tell_later(
    client: AsyncWebClient, caller: Caller, text: str, blocks: list[dict[str, Any]] | None = None
) -> None:
    """Answer a slash command after its ack, privately, where they typed it (see tell_privately)."""
    await tell_privately(
        client, user=caller.actor.user_id, text=text, blocks=blocks, response_url=caller.response_url
    )


# Any failure, the database's or ours: a close is idempotent, so checking and closing again is safe.
CLOSE_FAILED = (
    "Closing the {quarter} check-in failed on REAP Tracker's side, so it may not be closed. See "
    "`/reap checkin status {quarter}`, and close it again if it is still open (closing twice is safe)."
)


async def _checkin_status(reap: Reap, caller: Caller, quarter: str) -> Reply:
    async with reading(reap.sessions) as session:
        cycle = await get_cycle(session, team_id=caller.actor.team_id, quarter=quarter)
        if cycle is None or cycle.opened_at is None:
            return _reply(f"The {quarter} check-in has not opened yet.")
        progress = await cycle_progress(session, team_id=caller.actor.team_id, cycle=cycle)
    state = (
        "closed"
        if cycle.closed_at
        else f"open, due {ui.date_token(cycle.due_on, caller.zone)}"
        if (cycle.due_on)
        else "open"
    )
    lines = [f"*{quarter} check-in* · {state}"]
    for department in progress:
        rate = f"{department.rate:.0%}" if department.rate is not None else "n/a"
        waiting = ", ".join(f"<@{u}>" for u in department.waiting[:40]) or "nobody"
        responded = len(department.responded)
        lines.append(f"*{ui.escape(department.key)}*: {responded} responded ({rate}); waiting on {waiting}")
    if not progress:
        lines.append("No owner has open items.")
    return _reply("\n".join(lines), [ui.section(chunk) for chunk in chunks(lines)])


async def run_rollup(reap: Reap, *, caller: Caller, command: g.Rollup) -> Reply:
    """`/reap rollup [quarter] [department] [#channel]` (coordinators and admins)."""
    async with reading(reap.sessions) as session:
        department_id = None
        if command.department:
            department = await department_by_key(
                session, team_id=caller.actor.team_id, key=command.department
            )
            department_id = department.id
        await ensure_coordinator(
            session, actor=caller.actor, department_id=department_id, action="post a rollup"
        )
        channels = [command.channel] if command.channel else []
        channels = channels or await rollup_channels(
            session,
            team_id=caller.actor.team_id,
            department=command.department,
            dei_channel=reap.org.dei_channel,
        )
    if not channels:
        raise InvalidChange("There is no channel to post into: set REAP_DEI_CHANNEL or give a #channel.")
    requests = rollup_requests(
        team_id=caller.actor.team_id,
        actor=caller.actor,
        quarter=command.quarter.label,
        channels=channels,
        department=command.department,
        start_month=reap.org.fiscal_year_start_month,
        day=caller.today,
        now=caller.now,
    )
    async with transaction(reap.sessions) as session:
        known = await outbox.states(session, keys=[key for row in requests for key in _attempts(row.key)])
        await enqueue(
            session, rows=[row.model_copy(update={"key": _open_attempt(row.key, known)}) for row in requests]
        )
    reply = _reply(
        f"Posting the {command.quarter.label} rollup to "
        + ", ".join(f"<#{c}>" for c in channels)
        + ". If Slack refuses it anywhere, I will send you a DM saying why."
    )
    reply.followups.append(lambda _client: reap.deliver_soon())
    return reply


# A person asking again the same day, after Slack refused (say, before the bot was invited into a
# private channel), gets a new attempt; while one has not failed, asking again posts nothing more.
_MAX_ATTEMPTS_A_DAY = 10


def _attempts(key: str) -> list[str]:
    return [key] + [f"{key}:again{n}" for n in range(2, _MAX_ATTEMPTS_A_DAY + 1)]


def _open_attempt(key: str, known: dict[str, str]) -> str:
    """The first attempt's key that has not failed (it may exist, then enqueueing it is a no-op)."""
    attempts = _attempts(key)
    return next((k for k in attempts if known.get(k) != NotificationState.FAILED.value), attempts[-1])


# --- the check-in modal ----------------------------------------------------------------------


async def checkin_subject(reap: Reap, *, team_id: str, user_id: str, quarter: str = "") -> CheckInSubject:
    """An owner's open items and owned measures, each measure as it stands at the check-in's quarter."""
    start_month = reap.org.fiscal_year_start_month
    try:
        at = (
            FiscalQuarter.parse(quarter, today=reap.clock().date(), start_month=start_month)
            if quarter
            else None
        )
    except QuarterError:
        at = None
    async with reading(reap.sessions) as session:
        return await queries.checkin_subject(session, team_id=team_id, user_id=user_id, quarter=at)


@dataclass(frozen=True)
class CheckInForm:
    """A validated check-in submission."""

    answers: list[ItemAnswer]
    readings: dict[str, float]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)  # measure -> group -> value
    no_change: bool = False  # the owner ticked "no change since last quarter"


def parse_checkin_form(values: dict[str, Any]) -> CheckInForm | dict[str, str]:
    """Read the check-in modal; inline errors by block_id if anything is off."""
    errors: dict[str, str] = {}
    answers: list[ItemAnswer] = []
    readings: dict[str, float] = {}
    groups: dict[str, dict[str, float]] = {}
    no_change = False
    for block_id, fields in values.items():
        kind, _, key = block_id.partition(":")
        element = fields.get("value", {})
        if kind == "confirm":
            chosen = element.get("selected_options") or []
            no_change = any(isinstance(o, dict) and o.get("value") == NO_CHANGE for o in chosen)
            continue
        if kind == "group":
            measure, _, group = key.partition(":")
            raw = element.get("value")
            if raw in (None, "") or not measure or not group:
                continue
            if not g.MEASURE_KEY.fullmatch(measure):
                errors[block_id] = str(NotFound("measure", ui.clip(ascii(measure), 40)))
                continue
            try:
                number = float(str(raw).replace(",", ""))
            except ValueError:
                errors[block_id] = "Enter a number."
                continue
            if problem := number_problem(number, field="value"):
                errors[block_id] = problem
                continue
            groups.setdefault(measure, {})[group] = number
            continue
        if kind == "status":
            ref = key
            status_value = (element.get("selected_option") or {}).get("value")
            raw_progress = str((values.get(f"progress:{ref}", {}).get("value", {}) or {}).get("value") or "")
            raw_note = (values.get(f"note:{ref}", {}).get("value", {}) or {}).get("value") or ""
            # Block ids come back from the client; one naming no item must not reach a query.
            if not g.REF.fullmatch(ref):
                errors[block_id] = str(NotFound("item", ui.clip(ascii(ref), 40)))
                continue
            try:
                status = ItemStatus(str(status_value))
            except ValueError:
                errors[block_id] = "Pick a status."
                continue
            progress = whole_percent(raw_progress)
            if progress is None:
                errors[f"progress:{ref}"] = "Enter a whole number from 0 to 100."
                continue
            if problem := trimmed_problem(raw_note, field="note", limit=NOTE_MAX, multiline=True):
                errors[f"note:{ref}"] = problem
                continue
            note = raw_note.strip() or None
            answers.append(ItemAnswer(ref=ref, status=status, progress=progress, note=note))
        elif kind == "measure":
            if not g.MEASURE_KEY.fullmatch(key):
                errors[block_id] = str(NotFound("measure", ui.clip(ascii(key), 40)))
                continue
            raw = element.get("value")
            if raw in (None, ""):
                continue
            try:
                value = float(str(raw).replace(",", ""))
            except ValueError:
                errors[block_id] = "Enter a number."
                continue
            # float() reads inf, nan and 1e999 too; a reading must be a real number.
            if problem := number_problem(value, field="value"):
                errors[block_id] = problem
                continue
            readings[key] = value
        elif kind in ("progress", "note") and f"status:{key}" not in values:
            # A progress or note arrives with its item's status; alone it would be dropped unsaid.
            errors[f"status:{key}"] = "Pick a status."
    if errors:
        return errors
    return CheckInForm(answers=answers, readings=readings, groups=groups, no_change=no_change)


async def submit_checkin(reap: Reap, *, caller: Caller, quarter: str, form: CheckInForm) -> int:
    """Record every answer and reading of a check-in in one transaction; returns items updated."""
    # The quarter is the modal's metadata, back from the client: only a label may reach a query.
    if not QUARTER_LABEL.fullmatch(quarter):
        raise InvalidChange(f"There is no {ui.clip(ascii(quarter), 40)} check-in.")
    async with transaction(reap.sessions) as session:
        cycle = await get_cycle(session, team_id=caller.actor.team_id, quarter=quarter)
        if cycle is None:
            raise InvalidChange(f"There is no {quarter} check-in.")
        changed = bool(form.readings or form.groups) or await answers_change_anything(
            session, team_id=caller.actor.team_id, answers=form.answers
        )
        if not changed and not form.no_change and form.answers:
            # An untouched form is not an answer unless the owner says it is.
            raise NothingChanged()
        await record_response(
            session,
            actor=caller.actor,
            cycle=cycle,
            answers=form.answers,
            now=caller.now,
            no_change=not changed,
        )
        for key in sorted(set(form.readings) | set(form.groups)):
            await record_reading(
                session,
                actor=caller.actor,
                key=key,
                quarter=quarter,
                value=form.readings.get(key),
                note=None,
                now=caller.now,
                groups={group: GroupValue(value) for group, value in form.groups.get(key, {}).items()},
                start_month=reap.org.fiscal_year_start_month,
            )
    return len(form.answers)


class NothingChanged(ReapError):
    """A check-in form submitted exactly as it was opened, without saying there is no change."""

    def __init__(self) -> None:
        super().__init__(
            f"Nothing changed. If that is your answer, tick “{NO_CHANGE_NOTE}” and submit again."
        )


# --- the quarterly DEI meeting ------------------------------------------------------------------


async def run_decision(reap: Reap, *, caller: Caller, command: g.RecordDecision) -> Reply:
    """`/reap decision "<text>" [item <ref>] [owner @user] [due <date>]` (coordinators)."""
    async with transaction(reap.sessions) as session:
        decision, followup = await record_decision(
            session,
            actor=caller.actor,
            text=command.text,
            ref=command.ref,
            owner=command.owner,
            due=command.due,
            today=caller.today,
            now=caller.now,
        )
    text = f"Recorded for the {decision.quarter} DEI meeting: {ui.escape(one_line(decision.text))}"
    if followup is not None and command.due is not None:
        text += (
            f"\nFollow-up *{followup.ref}* is <@{command.owner}>'s,"
            f" due {ui.date_token(command.due, caller.zone)}; the next agenda reports how it went."
        )
    return _reply(text)


async def run_agenda(reap: Reap, *, caller: Caller, command: g.ShowAgenda) -> Reply:
    """`/reap agenda [quarter]`: the quarter's DEI meeting agenda, for the caller, just after the
    answer (it reads the whole quarter: about 2 s of database time for 10,000 items)."""
    async with reading(reap.sessions) as session:
        await agenda_cycle(session, team_id=caller.actor.team_id, quarter=command.quarter)
    reply = _reply(f"Gathering the {command.quarter.label} DEI meeting agenda; it appears here in a moment.")
    reply.followups.append(
        lambda client: show_agenda(reap, caller=caller, quarter=command.quarter, client=client)
    )
    return reply


async def show_agenda(reap: Reap, *, caller: Caller, quarter: FiscalQuarter, client: AsyncWebClient) -> None:
    """Build the quarter's agenda and show it to the caller (after the command's ack)."""
    try:
        async with reading(reap.sessions) as session:
            agenda = await build_agenda(
                session, team_id=caller.actor.team_id, quarter=quarter, today=caller.today, zone=reap.org.zone
            )
    except Exception:
        await tell_later(client, caller, AGENDA_FAILED.format(quarter=quarter.label))
        raise
    blocks = build_agenda_blocks(agenda, caller.zone)
    # A message holds 50 blocks; the agenda's sections are few, but its lists can be long.
    await tell_later(client, caller, f"DEI meeting agenda: {agenda.quarter}", blocks[: ui.MAX_MESSAGE_BLOCKS])


AGENDA_FAILED = (
    "Gathering the {quarter} agenda failed on REAP Tracker's side. Try `/reap agenda {quarter}` again "
    "in a minute."
)


async def run_amend(reap: Reap, *, caller: Caller, command: g.Amend) -> Reply:
    """`/reap amend <quarter> <subject> "<correction>" "<reason>"`: beside the frozen record, not over it."""
    kind = "item" if g.REF.fullmatch(command.subject) else "measure"
    async with transaction(reap.sessions) as session:
        await amend_quarter(
            session,
            actor=caller.actor,
            quarter=command.quarter.label,
            subject=f"{kind} {command.subject}",
            old=None,
            new=command.correction,
            reason=command.reason,
            now=caller.now,
        )
    return _reply(
        f"Amended {command.quarter.label}: {ui.escape(kind)} {ui.escape(command.subject)}:"
        f" {ui.escape(command.correction)}. Reports show it beside the frozen record, with your reason."
    )
