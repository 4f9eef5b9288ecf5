"""Quarterly check-in cycles, their responses, and measure readings; each change audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import InvalidChange
from domain.status import OPEN_STATUSES, ItemStatus
from domain.text import NOTE_MAX, check_text
from storage.audit import record
from storage.items import add_note, audit, get_item, set_progress, set_status
from storage.measures import parse_quarter
from storage.models import (
    ActionItem,
    CheckInCycle,
    CheckInResponse,
    Department,
    NotificationCreate,
)
from storage.permissions import Actor, ensure_coordinator
from storage.queries.people import coordinators_of
from storage.snapshots import freeze_quarter

# Outbox kinds of the quarterly cycle that a person's command and the tick both owe. The
# non-responder list rides each coordinator's next digest, except the copy of whoever closed the
# cycle by hand: that answers their own command, so it goes at once.
NONRESPONDERS = "checkin_nonresponders"
# What an owner's explicit "nothing changed" answer records (a real answer, recorded as such).
NO_CHANGE_NOTE = "No change since last quarter"
NONRESPONDERS_TO_CLOSER = "checkin_nonresponders_closer"
ROLLUP = "rollup"


def _audit(
    session: AsyncSession,
    *,
    team_id: str,
    entity: str,
    entity_id: int | None,
    actor: Actor,
    now: datetime,
    action: str,
    field: str | None = None,
    old: object = None,
    new: object = None,
    note: str | None = None,
) -> None:
    record(
        session,
        team_id=team_id,
        entity=entity,
        entity_id=entity_id,
        actor=actor.user_id,
        at=now,
        action=action,
        field=field,
        old=old,
        new=new,
        note=note,
    )


async def get_cycle(session: AsyncSession, *, team_id: str, quarter: str) -> CheckInCycle | None:
    """The check-in cycle of a quarter, if one is scheduled."""
    query = select(CheckInCycle).where(CheckInCycle.team_id == team_id).where(CheckInCycle.quarter == quarter)
    return (await session.exec(query)).first()


async def schedule_cycle(
    session: AsyncSession, *, actor: Actor, quarter: str, meeting: date, now: datetime
) -> CheckInCycle:
    """Set (or move) the quarter's DEI meeting date; the window is derived from it."""
    await ensure_coordinator(session, actor=actor, department_id=None, action="schedule check-ins")
    cycle = await get_cycle(session, team_id=actor.team_id, quarter=quarter)
    if cycle is None:
        cycle = CheckInCycle(team_id=actor.team_id, quarter=quarter, meeting_date=meeting)
        session.add(cycle)
        await session.flush()
        _audit(
            session,
            team_id=actor.team_id,
            entity="cycle",
            entity_id=cycle.id,
            actor=actor,
            now=now,
            action="schedule",
            field="meeting_date",
            new=meeting.isoformat(),
        )
    elif cycle.meeting_date != meeting:
        if cycle.closed_at is not None:
            raise InvalidChange(f"The {quarter} check-in is already closed.")
        _audit(
            session,
            team_id=actor.team_id,
            entity="cycle",
            entity_id=cycle.id,
            actor=actor,
            now=now,
            action="schedule",
            field="meeting_date",
            old=cycle.meeting_date.isoformat(),
            new=meeting.isoformat(),
        )
        cycle.meeting_date = meeting
        cycle.opens_on = None
        cycle.due_on = None
    return cycle


async def open_cycle(
    session: AsyncSession,
    *,
    actor: Actor,
    quarter: str,
    now: datetime,
    opens_on: date,
    due_on: date,
    meeting: date | None = None,
) -> CheckInCycle:
    """Open a quarter's check-in now (idempotent: an open cycle stays as it is)."""
    await ensure_coordinator(session, actor=actor, department_id=None, action="start check-ins")
    cycle = await get_cycle(session, team_id=actor.team_id, quarter=quarter)
    if cycle is None:
        cycle = CheckInCycle(team_id=actor.team_id, quarter=quarter, meeting_date=meeting or due_on)
        session.add(cycle)
    if cycle.closed_at is not None:
        raise InvalidChange(f"The {quarter} check-in is already closed.")
    if cycle.opened_at is None:
        cycle.opened_at = now
        cycle.opened_by = actor.user_id
        cycle.opens_on = opens_on
        cycle.due_on = due_on
        await session.flush()
        _audit(
            session,
            team_id=actor.team_id,
            entity="cycle",
            entity_id=cycle.id,
            actor=actor,
            now=now,
            action="open",
            note=quarter,
        )
    return cycle


async def close_cycle(session: AsyncSession, *, actor: Actor, quarter: str, now: datetime) -> CheckInCycle:
    """Close a quarter's check-in (idempotent)."""
    await ensure_coordinator(session, actor=actor, department_id=None, action="close check-ins")
    cycle = await get_cycle(session, team_id=actor.team_id, quarter=quarter)
    if cycle is None or cycle.opened_at is None:
        raise InvalidChange(f"The {quarter} check-in has not been opened.")
    if cycle.closed_at is None:
        cycle.closed_at = now
        _audit(
            session,
            team_id=actor.team_id,
            entity="cycle",
            entity_id=cycle.id,
            actor=actor,
            now=now,
            action="close",
            note=quarter,
        )
    return cycle


@dataclass(frozen=True)
class ItemAnswer:
    """One item's answer in a check-in."""

    ref: str
    status: ItemStatus
    progress: int
    note: str | None = None


async def answers_change_anything(session: AsyncSession, *, team_id: str, answers: list[ItemAnswer]) -> bool:
    """Whether any answer differs from its item as stored (status, progress or a new note)."""
    for answer in answers:
        item = await get_item(session, team_id=team_id, ref=answer.ref)
        moved = answer.status.value != item.status or (
            answer.progress != item.progress and answer.status != ItemStatus.DONE
        )
        if moved or (answer.note and answer.note != item.last_note):
            return True
    return False


async def record_response(
    session: AsyncSession,
    *,
    actor: Actor,
    cycle: CheckInCycle,
    answers: list[ItemAnswer],
    now: datetime,
    no_change: bool = False,
) -> list[CheckInResponse]:
    """Record a check-in for several items at once, updating each item (all or nothing).

    `no_change` records the owner's explicit "no change since last quarter" as each answer's note.
    """
    if cycle.opened_at is None or cycle.closed_at is not None:
        raise InvalidChange(f"The {cycle.quarter} check-in is not open.")
    for answer in answers:
        if answer.note:
            check_text(answer.note, field=f"note on {answer.ref}", limit=NOTE_MAX, multiline=True)
    responses: list[CheckInResponse] = []
    for answer in answers:
        item = await get_item(session, team_id=actor.team_id, ref=answer.ref)
        note = answer.note or None
        if answer.status.value != item.status:
            await set_status(session, ref=item.ref, status=answer.status, actor=actor, now=now, note=note)
        if answer.progress != item.progress and answer.status != ItemStatus.DONE:
            await set_progress(session, ref=item.ref, percent=answer.progress, actor=actor, now=now)
        if note and note != item.last_note:
            await add_note(session, ref=item.ref, text=note, actor=actor, now=now)
        # Even an unchanged answer is a check-in: it is audited and proves the item is not stale.
        item.updated_at = now
        audit(session, item=item, actor=actor, now=now, action="checkin", note=cycle.quarter)
        existing = (
            await session.exec(
                select(CheckInResponse)
                .where(CheckInResponse.cycle_id == cycle.id)
                .where(CheckInResponse.item_id == item.id)
            )
        ).first()
        response = existing or CheckInResponse(
            team_id=actor.team_id,
            cycle_id=cycle.id or 0,
            item_id=item.id or 0,
            responder=actor.user_id,
            status=answer.status.value,
            progress=answer.progress,
            responded_at=now,
        )
        response.responder = actor.user_id
        response.status = answer.status.value
        response.progress = answer.progress if answer.status != ItemStatus.DONE else 100
        response.note = NO_CHANGE_NOTE if no_change else note
        response.responded_at = now
        session.add(response)
        responses.append(response)
    return responses


@dataclass
class DepartmentProgress:
    """Who has and has not checked in, for one department."""

    key: str
    responded: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        """Share of owners asked who responded."""
        asked = len(self.responded) + len(self.waiting)
        return len(self.responded) / asked if asked else None


async def cycle_progress(
    session: AsyncSession, *, team_id: str, cycle: CheckInCycle
) -> list[DepartmentProgress]:
    """Per department: owners of open items who responded, and those still waiting."""
    items = list(
        await session.exec(
            select(ActionItem)
            .where(ActionItem.team_id == team_id)
            .where(col(ActionItem.status).in_(OPEN_STATUSES))
        )
    )
    answered = set(
        await session.exec(select(CheckInResponse.responder).where(CheckInResponse.cycle_id == cycle.id))
    )
    answered_items = set(
        await session.exec(select(CheckInResponse.item_id).where(CheckInResponse.cycle_id == cycle.id))
    )
    departments = {
        d.id: d.key for d in await session.exec(select(Department).where(Department.team_id == team_id))
    }
    progress: dict[int, DepartmentProgress] = {}
    owners_with_answer: dict[tuple[int, str], bool] = {}
    for item in items:
        if not item.owner_id:
            continue
        key = (item.department_id, item.owner_id)
        done = item.id in answered_items or item.owner_id in answered
        owners_with_answer[key] = owners_with_answer.get(key, False) or done
    for (department_id, owner), done in sorted(owners_with_answer.items()):
        entry = progress.setdefault(
            department_id, DepartmentProgress(key=departments.get(department_id, "?"))
        )
        (entry.responded if done else entry.waiting).append(owner)
    return sorted(progress.values(), key=lambda p: p.key)


def outbox_key(team_id: str, kind: str, quarter: str, recipient: str, extra: str = "") -> str:
    """The outbox key of a quarterly message: one per workspace, kind, quarter and recipient."""
    return f"{team_id}:{kind}:{quarter}:{recipient}" + (f":{extra}" if extra else "")


def outbox_row(
    team_id: str,
    kind: str,
    key: str,
    recipient: str,
    day: date | None,
    payload: dict[str, Any],
    now: datetime,
) -> NotificationCreate:
    """An owed quarterly message, sendable from `now`."""
    return NotificationCreate(
        team_id=team_id,
        key=key,
        kind=kind,
        recipient=recipient,
        local_date=day,
        payload=payload,
        send_after=now,
        created_at=now,
    )


async def close_and_owe(
    session: AsyncSession,
    *,
    actor: Actor,
    quarter: str,
    now: datetime,
    dei_channel: str | None,
    start_month: int,
    zone: ZoneInfo | None = None,
) -> list[NotificationCreate]:
    """Close a quarter's check-in, freeze the quarter's record, and owe its messages: the
    non-responder list to each coordinator whose department has owners waiting, and the rollup to
    every rollup channel.

    The keys are the same whether the tick or a person closes, so a close pressed twice, or racing
    the scheduled close, posts once.
    """
    cycle = await close_cycle(session, actor=actor, quarter=quarter, now=now)
    # Frozen in the same transaction as the close: the report shown from now on is this one.
    await freeze_quarter(
        session, actor=actor, quarter=parse_quarter(quarter, start_month=start_month), now=now, zone=zone
    )
    team_id = cycle.team_id
    rows: list[NotificationCreate] = []
    progress = await cycle_progress(session, team_id=team_id, cycle=cycle)
    departments = {
        d.key: d for d in await session.exec(select(Department).where(Department.team_id == team_id))
    }
    for entry in progress:
        department = departments.get(entry.key)
        if department is None or not entry.waiting:
            continue
        coordinators = await coordinators_of(session, team_id=team_id, department_id=department.id or 0)
        for coordinator in (person.user_id for person in coordinators):
            key = outbox_key(team_id, NONRESPONDERS, quarter, coordinator, entry.key)
            payload = {
                "quarter": quarter,
                "department": entry.key,
                "waiting": entry.waiting,
                "responded": len(entry.responded),
            }
            kind = NONRESPONDERS_TO_CLOSER if coordinator == actor.user_id else NONRESPONDERS
            rows.append(outbox_row(team_id, kind, key, coordinator, None, payload, now))
    channels = await rollup_channels(session, team_id=team_id, department=None, dei_channel=dei_channel)
    payload = {"quarter": quarter, "start_month": start_month, "requested_by": actor.user_id}
    for channel in channels:
        key = outbox_key(team_id, ROLLUP, quarter, channel)
        rows.append(outbox_row(team_id, ROLLUP, key, channel, None, payload, now))
    return rows


async def rollup_channels(
    session: AsyncSession, *, team_id: str, department: str | None, dei_channel: str | None
) -> list[str]:
    """Where a rollup goes: the DEI channel, then each (or the one) department's report channel."""
    channels: list[str] = [dei_channel] if dei_channel else []
    query = select(Department).where(Department.team_id == team_id).order_by(col(Department.key))
    if department:
        query = query.where(Department.key == department.upper())
    for row in await session.exec(query):
        if row.report_channel and row.report_channel not in channels:
            channels.append(row.report_channel)
    return channels


def rollup_requests(
    *,
    team_id: str,
    actor: Actor,
    quarter: str,
    channels: list[str],
    department: str | None,
    start_month: int,
    day: date,
    now: datetime,
) -> list[NotificationCreate]:
    """A person's rollup request as owed messages, one per channel, keyed by the person's day: asking
    twice on one day posts once; asking again another day posts the rollup as it then stands."""
    payload: dict[str, Any] = {"quarter": quarter, "start_month": start_month, "requested_by": actor.user_id}
    if department:
        payload["department"] = department.upper()
    extra = f"{(department or 'all').upper()}:{day.isoformat()}"
    rows = []
    for channel in channels:
        key = outbox_key(team_id, ROLLUP, quarter, channel, extra)
        rows.append(outbox_row(team_id, ROLLUP, key, channel, None, payload, now))
    return rows
