"""The quarterly cycle from Slack: check-ins, measure readings, and rollups posted into channels."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from commands import blocks as bk
from commands import grammar as g
from reminders.calendar import BusinessCalendar, calendar_for_year
from reminders.fiscal import FiscalQuarter
from storage.checkins import (
    ItemAnswer,
    close_cycle,
    cycle_progress,
    get_cycle,
    open_cycle,
    record_reading,
    record_response,
    schedule_cycle,
)
from storage.engine import reading, transaction
from storage.errors import InvalidChange, NotFound
from storage.models import OPEN_STATUSES, ActionItem, Department, ItemStatus, Measure
from storage.permissions import ensure_coordinator

if TYPE_CHECKING:
    from commands.service import Caller, Reap, Reply

log = logging.getLogger(__name__)

CHECKIN_OPEN = "checkin_open"
CHECKIN_MODAL = "checkin_modal"
OPEN_BEFORE_MEETING = 10  # business days
DUE_BEFORE_MEETING = 3  # business days
MAX_MODAL_ITEMS = 25  # 3 inputs each, within a modal's 100 blocks


def business_calendar(reap: Reap) -> BusinessCalendar:
    """The organisation's business calendar around today, from REAP_HOLIDAYS."""
    settings = reap.settings
    return calendar_for_year(tuple(settings.holidays), settings.holidays_file, reap.clock().year)


@dataclass(frozen=True)
class Window:
    """When a quarter's check-in opens and is due, derived from the DEI meeting date."""

    opens_on: date
    due_on: date
    meeting: date


def checkin_window(meeting: date, calendar: BusinessCalendar) -> Window:
    """Opens 10 business days before the meeting, due 3 business days before it."""
    return Window(
        opens_on=calendar.add_business_days(meeting, -OPEN_BEFORE_MEETING),
        due_on=calendar.add_business_days(meeting, -DUE_BEFORE_MEETING),
        meeting=meeting,
    )


def _reply(text: str, blocks: list[dict[str, Any]] | None = None) -> Reply:
    from commands.service import Reply

    return Reply(text=text, blocks=blocks or [bk.section(text)])


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
            bk.date_token(d, caller.zone) for d in (window.meeting, window.opens_on, window.due_on)
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
        due = bk.date_token(cycle.due_on or due_on, caller.zone)
        return _reply(
            f":clipboard: The {quarter} check-in is open; owners get their prompt at their next reminder "
            f"time. It is due {due}."
        )
    if command.action == "close":
        async with transaction(reap.sessions) as session:
            await close_cycle(session, actor=actor, quarter=quarter, now=now)
        reply = _reply(f"The {quarter} check-in is closed; the rollup is on its way to the channels.")
        reply.followups.append(
            lambda client: post_rollup(reap, client, caller=caller, quarter=command.quarter)
        )
        return reply
    return await _checkin_status(reap, caller, quarter)


async def _checkin_status(reap: Reap, caller: Caller, quarter: str) -> Reply:
    async with reading(reap.sessions) as session:
        cycle = await get_cycle(session, team_id=caller.actor.team_id, quarter=quarter)
        if cycle is None or cycle.opened_at is None:
            return _reply(f"The {quarter} check-in has not opened yet.")
        progress = await cycle_progress(session, team_id=caller.actor.team_id, cycle=cycle)
    state = (
        "closed"
        if cycle.closed_at
        else f"open, due {bk.date_token(cycle.due_on, caller.zone)}"
        if (cycle.due_on)
        else "open"
    )
    lines = [f"*{quarter} check-in* · {state}"]
    for department in progress:
        rate = f"{department.rate:.0%}" if department.rate is not None else "n/a"
        waiting = ", ".join(f"<@{u}>" for u in department.waiting[:40]) or "nobody"
        responded = len(department.responded)
        lines.append(f"*{bk.escape(department.key)}*: {responded} responded ({rate}); waiting on {waiting}")
    if not progress:
        lines.append("No owner has open items.")
    return _reply("\n".join(lines), [bk.section(chunk) for chunk in _chunks(lines)])


def _chunks(lines: Sequence[str], limit: int = bk.MAX_SECTION_TEXT - 100) -> list[str]:
    out: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + len(line) + 1 > limit:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out[: bk.MAX_MESSAGE_BLOCKS]


async def run_measure(reap: Reap, *, caller: Caller, command: g.RecordMeasure) -> Reply:
    """`/reap measure <key> <value> [quarter] ["note"]`."""
    async with transaction(reap.sessions) as session:
        reading = await record_reading(
            session,
            actor=caller.actor,
            key=command.key,
            quarter=command.quarter.label,
            value=command.value,
            note=command.note,
            now=caller.now,
        )
    return _reply(f"Recorded {bk.escape(command.key)} = {reading.value:g} for {command.quarter.label}.")


async def run_rollup(reap: Reap, *, caller: Caller, command: g.Rollup) -> Reply:
    """`/reap rollup [quarter] [department] [#channel]` (coordinators and admins)."""
    async with reading(reap.sessions) as session:
        department_id = None
        if command.department:
            department = (
                await session.exec(
                    select(Department)
                    .where(Department.team_id == caller.actor.team_id)
                    .where(Department.key == command.department.upper())
                )
            ).first()
            if department is None:
                raise NotFound("department", command.department.upper())
            department_id = department.id
        await ensure_coordinator(
            session, actor=caller.actor, department_id=department_id, action="post a rollup"
        )
    channels = await rollup_channels(
        reap, team_id=caller.actor.team_id, department=command.department, channel=command.channel
    )
    if not channels:
        raise InvalidChange("There is no channel to post into: set REAP_DEI_CHANNEL or give a #channel.")
    reply = _reply(
        f"Posting the {command.quarter.label} rollup to " + ", ".join(f"<#{c}>" for c in channels) + "."
    )
    reply.followups.append(
        lambda client: post_rollup(
            reap,
            client,
            caller=caller,
            quarter=command.quarter,
            department=command.department,
            channels=channels,
        )
    )
    return reply


async def rollup_channels(
    reap: Reap, *, team_id: str, department: str | None, channel: str | None
) -> list[str]:
    """Where a rollup goes: the given channel, else the DEI channel and the departments' report channels."""
    if channel:
        return [channel]
    channels: list[str] = [reap.settings.dei_channel] if reap.settings.dei_channel else []
    async with reading(reap.sessions) as session:
        query = select(Department).where(Department.team_id == team_id)
        if department:
            query = query.where(Department.key == department.upper())
        for row in await session.exec(query):
            if row.report_channel and row.report_channel not in channels:
                channels.append(row.report_channel)
    return channels


async def post_rollup(
    reap: Reap,
    client: AsyncWebClient,
    *,
    caller: Caller | None = None,
    team_id: str | None = None,
    quarter: FiscalQuarter,
    department: str | None = None,
    channels: Sequence[str] | None = None,
) -> list[str]:
    """Post the summary, the per-department thread and the chart into each channel; returns message ts."""
    from reminders.chart import rollup_chart_png
    from reminders.rollup import build_rollup, slack_messages

    team = team_id or (caller.actor.team_id if caller else "")
    today = caller.today if caller else reap.clock().astimezone(reap.settings.zone).date()
    async with reading(reap.sessions) as session:
        rollup = await build_rollup(
            session,
            team_id=team,
            quarter=quarter,
            as_of=today,
            department_key=department,
            zone=reap.settings.zone,
        )
    summary, replies = slack_messages(rollup)
    chart = rollup_chart_png(rollup)
    targets = (
        list(channels)
        if channels
        else await rollup_channels(reap, team_id=team, department=department, channel=None)
    )
    posted: list[str] = []
    for channel in targets:
        head = await client.chat_postMessage(channel=channel, **summary)
        ts = str(head["ts"])
        for reply in replies:
            await client.chat_postMessage(channel=channel, thread_ts=ts, **reply)
        await client.files_upload_v2(
            channel=channel,
            thread_ts=ts,
            content=chart,
            filename=f"reap-{quarter.label}.png",
            title=f"REAP {quarter.label}: status by strategy and measure progress",
        )
        posted.append(ts)
    return posted


# --- the check-in modal ----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckInSubject:
    """What an owner is asked about: their open items and the measures they own."""

    items: list[ActionItem]
    measures: list[Measure]


async def checkin_subject(reap: Reap, *, team_id: str, user_id: str) -> CheckInSubject:
    """An owner's open items and owned measures."""
    async with reading(reap.sessions) as session:
        items = list(
            await session.exec(
                select(ActionItem)
                .where(ActionItem.team_id == team_id)
                .where(ActionItem.owner_id == user_id)
                .where(col(ActionItem.status).in_(OPEN_STATUSES))
                .order_by(col(ActionItem.due), col(ActionItem.id))
            )
        )
        measures = list(
            await session.exec(
                select(Measure).where(Measure.team_id == team_id).where(Measure.owner_id == user_id)
            )
        )
    return CheckInSubject(items=items, measures=measures)


def build_checkin_prompt(
    quarter: str, subject: CheckInSubject, *, zone: Any, today: date
) -> list[dict[str, Any]]:
    """The check-in prompt DM: open items with status and due date, measures to read, one button."""
    blocks = [
        bk.section(f":clipboard: *Time for the {quarter} REAP check-in.* One form covers everything below.")
    ]
    lines = []
    for item in subject.items[:MAX_MODAL_ITEMS]:
        due = f" · due {bk.date_token(item.due, zone)}" if item.due else ""
        lines.append(
            f"*{item.ref}* {bk.escape(bk.clip(item.title, 120))} · {bk.status_text(item.status_enum)}{due}"
        )
    for measure in subject.measures:
        lines.append(
            f":bar_chart: {bk.escape(measure.name)} ({bk.escape(measure.key)}): reading for {quarter}"
        )
    blocks += [bk.section(chunk) for chunk in _chunks(lines)][:45]
    blocks.append(checkin_button(quarter))
    return blocks


def checkin_button(quarter: str) -> dict[str, Any]:
    """The actions block whose one button opens the check-in form for `quarter`."""
    return {
        "type": "actions",
        "block_id": f"checkin:{quarter}",
        "elements": [
            {
                "type": "button",
                "action_id": CHECKIN_OPEN,
                "style": "primary",
                "value": quarter,
                "text": bk.plain("Check in"),
            }
        ],
    }


def build_checkin_note(
    quarter: str, subject: CheckInSubject, *, due_on: date | None, zone: Any, followup: bool
) -> list[dict[str, Any]]:
    """The check-in, in two blocks, for the end of a digest that already lists the day's items."""
    parts = [_count(len(subject.items), "open item"), _count(len(subject.measures), "measure")]
    what = " and ".join(part for part in parts if part)
    due = f", due {bk.date_token(due_on, zone)}" if due_on else ""
    lead = "A reminder: your" if followup else "Your"
    return [
        bk.section(
            f":clipboard: *{lead} {quarter} REAP check-in is open{due}.* One form covers your {what}."
        ),
        checkin_button(quarter),
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}" if n else ""


def build_checkin_modal(quarter: str, subject: CheckInSubject) -> dict[str, Any]:
    """One form: status, progress and a note for every open item; a value for every owned measure."""
    statuses = [{"text": bk.plain(s.label.capitalize()), "value": s.value} for s in ItemStatus]
    blocks: list[dict[str, Any]] = []
    for item in subject.items[:MAX_MODAL_ITEMS]:
        current = next(o for o in statuses if o["value"] == item.status)
        blocks.append(bk.section(f"*{item.ref}* {bk.escape(bk.clip(item.title, 200))}"))
        blocks.append(
            {
                "type": "input",
                "block_id": f"status:{item.ref}",
                "label": bk.plain("Status", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": statuses,
                    "initial_option": current,
                },
            }
        )
        blocks.append(
            {
                "type": "input",
                "block_id": f"progress:{item.ref}",
                "label": bk.plain("Percent complete", 2000),
                "element": {
                    "type": "number_input",
                    "action_id": "value",
                    "is_decimal_allowed": False,
                    "min_value": "0",
                    "max_value": "100",
                    "initial_value": str(item.progress),
                },
            }
        )
        blocks.append(
            {
                "type": "input",
                "block_id": f"note:{item.ref}",
                "optional": True,
                "label": bk.plain("Note", 2000),
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": 2000},
            }
        )
    for measure in subject.measures[: max(0, (bk.MAX_VIEW_BLOCKS - len(blocks)) // 1)]:
        blocks.append(
            {
                "type": "input",
                "block_id": f"measure:{measure.key}",
                "optional": True,
                "label": bk.plain(f"{measure.name} ({measure.unit or 'value'})", 2000),
                "element": {"type": "number_input", "action_id": "value", "is_decimal_allowed": True},
            }
        )
    return {
        "type": "modal",
        "callback_id": CHECKIN_MODAL,
        "title": bk.plain(f"{quarter} check-in", 24),
        "submit": bk.plain("Submit", 24),
        "close": bk.plain("Cancel", 24),
        "private_metadata": quarter,
        "blocks": blocks[: bk.MAX_VIEW_BLOCKS] or [bk.section("You have nothing open. Thank you!")],
    }


@dataclass(frozen=True)
class CheckInForm:
    """A validated check-in submission."""

    answers: list[ItemAnswer]
    readings: dict[str, float]


def parse_checkin_form(values: dict[str, Any]) -> CheckInForm | dict[str, str]:
    """Read the check-in modal; inline errors by block_id if anything is off."""
    errors: dict[str, str] = {}
    answers: list[ItemAnswer] = []
    readings: dict[str, float] = {}
    for block_id, fields in values.items():
        kind, _, key = block_id.partition(":")
        element = fields.get("value", {})
        if kind == "status":
            ref = key
            status_value = (element.get("selected_option") or {}).get("value")
            raw_progress = str((values.get(f"progress:{ref}", {}).get("value", {}) or {}).get("value") or "")
            note = ((values.get(f"note:{ref}", {}).get("value", {}) or {}).get("value") or "").strip() or None
            try:
                status = ItemStatus(str(status_value))
            except ValueError:
                errors[block_id] = "Pick a status."
                continue
            if not raw_progress.isdigit() or not 0 <= int(raw_progress) <= 100:
                errors[f"progress:{ref}"] = "Enter a whole number from 0 to 100."
                continue
            answers.append(ItemAnswer(ref=ref, status=status, progress=int(raw_progress), note=note))
        elif kind == "measure":
            raw = element.get("value")
            if raw in (None, ""):
                continue
            try:
                readings[key] = float(str(raw).replace(",", ""))
            except ValueError:
                errors[block_id] = "Enter a number."
    if errors:
        return errors
    return CheckInForm(answers=answers, readings=readings)


async def submit_checkin(reap: Reap, *, caller: Caller, quarter: str, form: CheckInForm) -> int:
    """Record every answer and reading of a check-in in one transaction; returns items updated."""
    async with transaction(reap.sessions) as session:
        cycle = await get_cycle(session, team_id=caller.actor.team_id, quarter=quarter)
        if cycle is None:
            raise InvalidChange(f"There is no {quarter} check-in.")
        await record_response(session, actor=caller.actor, cycle=cycle, answers=form.answers, now=caller.now)
        for key, value in form.readings.items():
            await record_reading(
                session, actor=caller.actor, key=key, quarter=quarter, value=value, note=None, now=caller.now
            )
    return len(form.answers)
