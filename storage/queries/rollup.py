"""The quarterly rollup read from the database in a few bulk queries (per rollup, not per item)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.checkin import CHECKIN_PROMPT
from domain.commitments import ChangeKind, RequestState
from domain.equity import DEFAULT_MIN_COUNT, Breakdown, BreakdownKind, GroupInput, breakdown
from domain.errors import NotFound, ReapError
from domain.fiscal import FiscalQuarter
from domain.measures import (
    MeasureRule,
    actual_fraction,
    check_measure,
    expected_fraction,
    expected_value,
    measure_status,
)
from domain.rollup import (
    QUIET_DAYS,
    STALE_DAYS,
    STATUSES,
    Changes,
    DepartmentRollup,
    ItemLine,
    MeasureBreakdown,
    MeasureLine,
    RankedLine,
    RequestLine,
    Rollup,
    SeriesPoint,
    StaleStatus,
    StrategyRollup,
    evidence_link,
)
from domain.status import ItemStatus, MeasureStatus, Role
from storage.measures import candidates, parse_quarter, ranking, rule_of
from storage.models import (
    ActionItem,
    AuditEvent,
    ChangeRequest,
    CheckInCycle,
    CheckInResponse,
    Department,
    Dimension,
    Measure,
    MeasureReading,
    Notification,
    NotificationState,
    Person,
    Plan,
    Strategy,
)

DEFAULT_ZONE = "America/New_York"


class _Tally:
    """Counts, percent complete and on-time completion over a set of items."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(STATUSES, 0)
        self.progress_sum = 0
        self.progress_n = 0
        self.completed_with_due = 0
        self.on_time = 0

    def add(self, status: str, progress: int, on_time: bool | None) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        if status != ItemStatus.DROPPED:
            # Done counts as finished even if nobody moved the progress slider.
            self.progress_sum += 100 if status == ItemStatus.DONE else progress
            self.progress_n += 1
        if on_time is not None:
            self.completed_with_due += 1
            self.on_time += on_time

    def merge(self, other: _Tally) -> None:
        for status, n in other.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        self.progress_sum += other.progress_sum
        self.progress_n += other.progress_n
        self.completed_with_due += other.completed_with_due
        self.on_time += other.on_time

    @property
    def percent_complete(self) -> float:
        return round(self.progress_sum / self.progress_n, 1) if self.progress_n else 0.0

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.completed_with_due if self.completed_with_due else None


@dataclass
class _Item:
    id: int
    ref: str
    title: str
    owner_id: str | None
    status: str
    progress: int
    due: date | None
    last_note: str | None
    strategy_id: int
    department_id: int
    completed_on: date | None
    updated_on: date
    evidence_url: str | None = None
    verified_on: date | None = None
    verified_by: str | None = None


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def _choose_plan(plans: Sequence[Plan], as_of: date) -> Plan | None:
    """The plan covering `as_of`, else the latest one already started, else the earliest."""
    covering = [p for p in plans if p.start_date <= as_of <= p.end_date]
    if covering:
        return max(covering, key=lambda p: p.start_date)
    started = [p for p in plans if p.start_date <= as_of]
    if started:
        return max(started, key=lambda p: p.start_date)
    return min(plans, key=lambda p: p.start_date) if plans else None


def _as_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def build_rollup(
    session: AsyncSession,
    *,
    team_id: str,
    quarter: FiscalQuarter,
    as_of: date,
    department_key: str | None = None,
    stale_days: int = STALE_DAYS,
    zone: ZoneInfo | None = None,
) -> Rollup:
    """The rollup of every department (or one) at `quarter`, as of min(`as_of`, quarter end).

    Item states are today's; the changes come from the audit trail inside the quarter. Dates of
    instants (completion, last update, audit events) are taken in `zone`, the organisation's.
    """
    zone = zone or ZoneInfo(DEFAULT_ZONE)
    # A quarter that ended before the day asked about is shown as it stood on its last day.
    past = as_of > quarter.end
    as_of = min(as_of, quarter.end)
    departments = await _departments(session, team_id=team_id, key=department_key)
    dept_ids = [d.id for d in departments if d.id is not None]
    plans = await _plans(session, dept_ids=dept_ids, as_of=as_of)
    strategies = await _strategies(session, plan_ids=[p.id for p in plans.values() if p.id is not None])
    people = await _people(session, team_id=team_id)
    items = await _items(session, team_id=team_id, dept_ids=dept_ids, zone=zone)
    strategy_ids = {s.id for group in strategies.values() for s in group}
    if past:
        items = await _as_it_stood(
            session, items, cutoff=_local_midnight(as_of + timedelta(days=1), zone), zone=zone
        )
    items = [i for i in items if i.strategy_id in strategy_ids]
    measures = await _measures(session, team_id=team_id, quarter=quarter, strategy_ids=strategy_ids)
    window = (_local_midnight(quarter.start, zone), _local_midnight(as_of + timedelta(days=1), zone))
    events = await _events(session, team_id=team_id, dept_ids=dept_ids, window=window)
    checkin = await _checkin(session, team_id=team_id, quarter=quarter)
    requests: dict[int, list[_Request]] = defaultdict(list)
    for request in await _requests(session, team_id=team_id, dept_ids=dept_ids, zone=zone):
        requests[request.item_id].append(request)
    ranked_by_dept: dict[int, list[RankedLine]] = defaultdict(list)
    found = await candidates(session, team_id=team_id)
    department_of = {i.ref: i.department_id for i in found.items}
    for line in ranking(found):
        line = replace(line, days_overdue=_days_overdue(line.status, line.due, as_of))
        ranked_by_dept[department_of[line.ref]].append(line)

    names = {user_id: person.name or user_id for user_id, person in people.items()}
    by_dept: dict[int, list[_Item]] = defaultdict(list)
    for item in items:
        by_dept[item.department_id].append(item)
    context = _Context(
        quarter=quarter,
        as_of=as_of,
        stale_before=as_of - timedelta(days=stale_days),
        people=people,
        names=names,
        plans=plans,
        strategies=strategies,
        measures=measures,
        events=events,
        checkin=checkin,
        requests=requests,
    )
    total = _Tally()
    dept_rollups = []
    asked = responded = 0
    for department in departments:
        assert department.id is not None
        rollup, tally = _department_rollup(context, department, by_dept.get(department.id, []))
        rollup = replace(rollup, ranked=ranked_by_dept.get(department.id, []))
        dept_rollups.append(rollup)
        total.merge(tally)
        asked += rollup.checkin_asked
        responded += rollup.checkin_responded
    basis = (
        f"reconstructed from the history as of {as_of.isoformat()}"
        if past
        else f"as of {as_of.isoformat()}, while the quarter is open"
    )
    opens = checkin.opens_on if checkin is not None and not checkin.opened else None
    return Rollup(
        checkin_opens_on=opens,
        checkin_scheduled=checkin is not None,
        basis=basis,
        quarter=quarter.label,
        as_of=as_of,
        departments=dept_rollups,
        counts=total.counts,
        percent_complete=total.percent_complete,
        on_time_rate=total.on_time_rate,
        response_rate=(responded / asked) if checkin is not None and asked else None,
        previous_quarter=quarter.previous().label,
        stale_days=stale_days,
        names=names,
    )


async def _departments(session: AsyncSession, *, team_id: str, key: str | None) -> list[Department]:
    query = select(Department).where(Department.team_id == team_id)
    if key is not None:
        query = query.where(Department.key == key.strip().upper())
    departments = list(await session.exec(query.order_by(col(Department.key))))
    if key is not None and not departments:
        raise NotFound("department", key.strip().upper())
    return departments


async def _plans(session: AsyncSession, *, dept_ids: list[int], as_of: date) -> dict[int, Plan]:
    rows = await session.exec(select(Plan).where(col(Plan.department_id).in_(dept_ids)))
    grouped: dict[int, list[Plan]] = defaultdict(list)
    for plan in rows:
        grouped[plan.department_id].append(plan)
    chosen = {dept_id: _choose_plan(group, as_of) for dept_id, group in grouped.items()}
    return {dept_id: plan for dept_id, plan in chosen.items() if plan is not None}


async def _strategies(session: AsyncSession, *, plan_ids: list[int]) -> dict[int, list[Strategy]]:
    rows = await session.exec(
        select(Strategy)
        .where(col(Strategy.plan_id).in_(plan_ids))
        .order_by(col(Strategy.position), col(Strategy.key))
    )
    grouped: dict[int, list[Strategy]] = defaultdict(list)
    for strategy in rows:
        grouped[strategy.plan_id].append(strategy)
    return grouped


@dataclass(frozen=True)
class _PersonRow:
    name: str
    active: bool
    role: str
    department_id: int | None


async def _people(session: AsyncSession, *, team_id: str) -> dict[str, _PersonRow]:
    connection = await session.connection()
    rows = await connection.execute(
        sa.select(
            col(Person.user_id),
            col(Person.name),
            col(Person.active),
            col(Person.role),
            col(Person.department_id),
        ).where(col(Person.team_id) == team_id)
    )
    return {r[0]: _PersonRow(name=r[1], active=bool(r[2]), role=r[3], department_id=r[4]) for r in rows}


async def _items(session: AsyncSession, *, team_id: str, dept_ids: list[int], zone: ZoneInfo) -> list[_Item]:
    # Plain columns, not ORM entities: a 10,000-item rollup must not build 10,000 tracked objects.
    connection = await session.connection()
    rows = await connection.execute(
        sa.select(
            col(ActionItem.id),
            col(ActionItem.ref),
            col(ActionItem.title),
            col(ActionItem.owner_id),
            col(ActionItem.status),
            col(ActionItem.progress),
            col(ActionItem.due),
            col(ActionItem.last_note),
            col(ActionItem.strategy_id),
            col(ActionItem.department_id),
            col(ActionItem.completed_at),
            col(ActionItem.updated_at),
            col(ActionItem.evidence_url),
            col(ActionItem.verified_at),
            col(ActionItem.verified_by),
        )
        .where(col(ActionItem.team_id) == team_id)
        .where(col(ActionItem.department_id).in_(dept_ids))
        .order_by(col(ActionItem.department_id), col(ActionItem.number))
    )
    items = []
    for (
        id_,
        ref,
        title,
        owner,
        status,
        progress,
        due,
        note,
        strategy_id,
        dept_id,
        done_at,
        updated,
        evidence,
        verified_at,
        verified_by,
    ) in rows:
        items.append(
            _Item(
                id=id_ or 0,
                ref=ref,
                title=title,
                owner_id=owner,
                status=status,
                progress=progress,
                due=due,
                last_note=note,
                strategy_id=strategy_id,
                department_id=dept_id,
                completed_on=done_at.astimezone(zone).date() if done_at is not None else None,
                updated_on=updated.astimezone(zone).date(),
                evidence_url=evidence,
                verified_on=verified_at.astimezone(zone).date() if verified_at is not None else None,
                verified_by=verified_by,
            )
        )
    return items


@dataclass(frozen=True)
class _MeasureData:
    measure: Measure
    readings: dict[str, float]  # quarter label -> value, up to the rollup's quarter
    groups: dict[str, dict[str, Any]]  # quarter label -> {group key: {"value", "n"}}
    dimension: Dimension | None
    min_count: int


async def _measures(
    session: AsyncSession, *, team_id: str, quarter: FiscalQuarter, strategy_ids: set[int | None]
) -> dict[int, list[_MeasureData]]:
    ids = [s for s in strategy_ids if s is not None]
    measures = list(
        await session.exec(
            select(Measure).where(col(Measure.strategy_id).in_(ids)).order_by(col(Measure.key))
        )
    )
    readings: dict[int, dict[str, float]] = defaultdict(dict)
    groups: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    dimensions: dict[tuple[int | None, str], Dimension] = {}
    plan_of: dict[int | None, tuple[int | None, int]] = {}
    if measures:
        rows = await session.exec(
            select(
                col(MeasureReading.measure_id),
                col(MeasureReading.quarter),
                col(MeasureReading.value),
                col(MeasureReading.groups),
            )
            .where(MeasureReading.team_id == team_id)
            .where(col(MeasureReading.measure_id).in_([m.id for m in measures]))
            # Canonical labels (FY2027-Q2) sort in time order as text.
            .where(col(MeasureReading.quarter) <= quarter.label)
        )
        for measure_id, label, value, by_group in rows:
            readings[measure_id][label] = value
            if by_group:
                groups[measure_id][label] = by_group
        plan_rows = await session.exec(
            select(col(Strategy.id), col(Plan.id), col(Plan.min_group_count))
            .join(Plan, col(Plan.id) == col(Strategy.plan_id))
            .where(col(Strategy.id).in_(ids))
        )
        plan_of = {sid: (pid, min_count) for sid, pid, min_count in plan_rows}
        if any(m.breakdown_dimension for m in measures):
            plan_ids = {pid for pid, _ in plan_of.values()}
            for dim in await session.exec(select(Dimension).where(col(Dimension.plan_id).in_(plan_ids))):
                dimensions[(dim.plan_id, dim.key)] = dim
    grouped: dict[int, list[_MeasureData]] = defaultdict(list)
    for m in measures:
        plan_id, min_count = plan_of.get(m.strategy_id, (None, DEFAULT_MIN_COUNT))
        dimension = dimensions.get((plan_id, m.breakdown_dimension)) if m.breakdown_dimension else None
        grouped[m.strategy_id].append(
            _MeasureData(
                measure=m,
                readings=readings.get(m.id or 0, {}),
                groups=groups.get(m.id or 0, {}),
                dimension=dimension,
                min_count=min_count,
            )
        )
    return grouped


@dataclass(frozen=True)
class _Event:
    item_id: int
    action: str
    field: str | None
    old: str | None
    new: str | None
    note: str | None = None


def _undo(item: _Item, action: str, field: str | None, old: str | None, zone: ZoneInfo) -> None:
    """Put back what one audited change replaced (the newest change is undone first)."""
    if field == "status" and old is not None:
        item.status = old
    elif field == "progress" and old is not None and old.lstrip("-").isdigit():
        item.progress = int(old)
    elif field == "due":
        item.due = _as_date(old)
    elif field == "owner_id":
        item.owner_id = old
    elif field == "title" and old is not None:
        item.title = old
    elif field == "strategy_id" and old is not None and old.isdigit():
        item.strategy_id = int(old)
    elif field == "evidence_url":
        item.evidence_url = old
    elif action == "verify":
        item.verified_on = item.verified_by = None


async def _as_it_stood(
    session: AsyncSession, items: list[_Item], *, cutoff: datetime, zone: ZoneInfo
) -> list[_Item]:
    """The items as they stood just before `cutoff`, rebuilt from the audit trail: items created
    later are left out and every later change is undone, newest first."""
    by_id = {i.id: i for i in items}
    if not by_id:
        return items
    connection = await session.connection()
    later = await connection.execute(
        sa.select(col(AuditEvent.item_id), col(AuditEvent.action), col(AuditEvent.field), col(AuditEvent.old))
        .where(col(AuditEvent.item_id).in_(list(by_id)))
        .where(col(AuditEvent.at) >= cutoff)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    )
    created_later: set[int] = set()
    touched: set[int] = set()
    for item_id, action, field, old in later:
        item = by_id.get(item_id or 0)
        if item is None:
            continue
        touched.add(item.id)
        if action == "create":
            created_later.add(item.id)
        else:
            _undo(item, action, field, old, zone)
    if touched:
        # The last note and the last update as of then: the newest such events before the cutoff.
        before = await connection.execute(
            sa.select(
                col(AuditEvent.item_id), col(AuditEvent.action), col(AuditEvent.note), col(AuditEvent.at)
            )
            .where(col(AuditEvent.item_id).in_(list(touched)))
            .where(col(AuditEvent.at) < cutoff)
            .order_by(col(AuditEvent.at), col(AuditEvent.id))
        )
        notes: dict[int, str | None] = {}
        updated: dict[int, date] = {}
        for item_id, action, note, at in before:
            if item_id is None:
                continue
            updated[item_id] = at.astimezone(zone).date()
            if action in ("note", "status") and note:
                notes[item_id] = note
        for item_id in touched:
            item = by_id[item_id]
            item.last_note = notes.get(item_id)
            if item_id in updated:
                item.updated_on = updated[item_id]
    stood = []
    for item in items:
        if item.id in created_later:
            continue
        if item.status != "done":
            item.completed_on = None
            item.verified_on = item.verified_by = None
        elif item.completed_on is not None and item.completed_on >= cutoff.astimezone(zone).date():
            item.completed_on = None  # done again later; when it first was is not recorded
        stood.append(item)
    return stood


async def _events(
    session: AsyncSession, *, team_id: str, dept_ids: list[int], window: tuple[datetime, datetime]
) -> dict[int, list[_Event]]:
    connection = await session.connection()
    rows = await connection.execute(
        sa.select(
            col(AuditEvent.item_id),
            col(AuditEvent.action),
            col(AuditEvent.field),
            col(AuditEvent.old),
            col(AuditEvent.new),
            col(AuditEvent.note),
        )
        .join(ActionItem, col(ActionItem.id) == col(AuditEvent.item_id))
        .where(col(AuditEvent.team_id) == team_id)
        .where(col(ActionItem.department_id).in_(dept_ids))
        .where(col(AuditEvent.entity) == "item")
        .where(col(AuditEvent.at) >= window[0])
        .where(col(AuditEvent.at) < window[1])
        .where(col(AuditEvent.action).in_(["create", "status", "redate"]))
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    grouped: dict[int, list[_Event]] = defaultdict(list)
    for item_id, action, fld, old, new, note in rows:
        if item_id is not None:
            grouped[item_id].append(_Event(item_id, action, fld, old, new, note))
    return grouped


@dataclass(frozen=True)
class _Request:
    id: int
    item_id: int
    kind: str
    old: str | None
    new: str | None
    reason: str
    requested_by: str
    requested_on: date


async def _requests(
    session: AsyncSession, *, team_id: str, dept_ids: list[int], zone: ZoneInfo
) -> list[_Request]:
    """Every pending change request in these departments, oldest first (one query per rollup)."""
    connection = await session.connection()
    rows = await connection.execute(
        sa.select(
            col(ChangeRequest.id),
            col(ChangeRequest.item_id),
            col(ChangeRequest.kind),
            col(ChangeRequest.old_value),
            col(ChangeRequest.new_value),
            col(ChangeRequest.reason),
            col(ChangeRequest.requested_by),
            col(ChangeRequest.requested_at),
        )
        .where(col(ChangeRequest.team_id) == team_id)
        .where(col(ChangeRequest.department_id).in_(dept_ids))
        .where(col(ChangeRequest.state) == RequestState.PENDING.value)
        .order_by(col(ChangeRequest.requested_at), col(ChangeRequest.id))
    )
    return [
        _Request(
            id=id_ or 0,
            item_id=item_id,
            kind=kind,
            old=old,
            new=new,
            reason=reason,
            requested_by=by,
            requested_on=at.astimezone(zone).date(),
        )
        for id_, item_id, kind, old, new, reason, by, at in rows
    ]


@dataclass(frozen=True)
class _CheckIn:
    responded_items: set[int]
    opened: bool = True
    opens_on: date | None = None
    # Who was sent the prompt: only they can be "not yet responded".
    prompted: frozenset[str] = frozenset()


async def _checkin(session: AsyncSession, *, team_id: str, quarter: FiscalQuarter) -> _CheckIn | None:
    cycle = (
        await session.exec(
            select(CheckInCycle)
            .where(CheckInCycle.team_id == team_id)
            .where(CheckInCycle.quarter == quarter.label)
        )
    ).first()
    if cycle is None:
        return None
    rows = await session.exec(
        select(col(CheckInResponse.item_id)).where(CheckInResponse.cycle_id == cycle.id)
    )
    # A prompt counts once Slack has it (sent, or sent but unconfirmed); one still waiting in the
    # outbox has asked nobody yet.
    prompted = await session.exec(
        select(col(Notification.recipient))
        .where(Notification.team_id == team_id)
        .where(Notification.kind == CHECKIN_PROMPT)
        .where(col(Notification.key).startswith(f"{team_id}:{CHECKIN_PROMPT}:{quarter.label}:"))
        .where(col(Notification.state).in_([NotificationState.SENT.value, NotificationState.AMBIGUOUS.value]))
    )
    return _CheckIn(
        responded_items=set(rows),
        opened=cycle.opened_at is not None,
        opens_on=cycle.opens_on,
        prompted=frozenset(prompted),
    )


@dataclass(frozen=True)
class _Context:
    quarter: FiscalQuarter
    as_of: date
    stale_before: date
    people: dict[str, _PersonRow]
    names: dict[str, str]
    plans: dict[int, Plan]
    strategies: dict[int, list[Strategy]]
    measures: dict[int, list[_MeasureData]]
    events: dict[int, list[_Event]]
    checkin: _CheckIn | None
    requests: dict[int, list[_Request]]

    def owner_state(self, owner_id: str | None) -> str:
        if not owner_id:
            return "none"
        person = self.people.get(owner_id)
        if person is None:
            return "unknown"
        return "active" if person.active else "deactivated"

    def line(self, item: _Item, strategy: str) -> ItemLine:
        return ItemLine(
            ref=item.ref,
            title=item.title,
            owner_id=item.owner_id,
            owner_name=self.names.get(item.owner_id, item.owner_id) if item.owner_id else "no owner",
            status=item.status,
            progress=100 if item.status == ItemStatus.DONE else item.progress,
            due=item.due,
            days_overdue=_days_overdue(item.status, item.due, self.as_of),
            last_note=item.last_note,
            strategy=strategy,
            updated_on=item.updated_on,
            owner_state=self.owner_state(item.owner_id),
            completed_on=item.completed_on if item.status == ItemStatus.DONE else None,
            evidence_url=evidence_link(item.evidence_url),
            verified_on=item.verified_on if item.status == ItemStatus.DONE else None,
            verified_by=item.verified_by if item.status == ItemStatus.DONE else None,
        )

    def request_line(self, request: _Request, item: _Item) -> RequestLine:
        redate = request.kind == ChangeKind.REDATE
        reassign = request.kind == ChangeKind.REASSIGN
        return RequestLine(
            id=request.id,
            ref=item.ref,
            title=item.title,
            kind=request.kind,
            reason=request.reason,
            requested_by=request.requested_by,
            requested_on=request.requested_on,
            days_waiting=max(0, (self.as_of - request.requested_on).days),
            old_due=_as_date(request.old) if redate else None,
            new_due=_as_date(request.new) if redate else None,
            old_owner=request.old if reassign else None,
            new_owner=request.new if reassign else None,
        )


_OPEN = frozenset(s.value for s in ItemStatus if s.is_open)


def _days_overdue(status: str, due: date | None, as_of: date) -> int:
    """Days an open item is past its due date at `as_of`, whatever status was typed (0: not overdue)."""
    if due is None or status not in _OPEN or due >= as_of:
        return 0
    return (as_of - due).days


def _department_rollup(
    ctx: _Context, department: Department, items: list[_Item]
) -> tuple[DepartmentRollup, _Tally]:
    plan = ctx.plans.get(department.id or 0)
    strategies = ctx.strategies.get(plan.id or 0, []) if plan else []
    strategy_names = {s.id: s.name for s in strategies}
    by_strategy: dict[int, list[_Item]] = defaultdict(list)
    for item in items:
        by_strategy[item.strategy_id].append(item)
    lines = {item.id: ctx.line(item, strategy_names.get(item.strategy_id, "")) for item in items}
    dept_tally = _Tally()
    strategy_rollups = []
    for strategy in strategies:
        assert strategy.id is not None and plan is not None
        rollup, tally = _strategy_rollup(ctx, strategy, plan, by_strategy.get(strategy.id, []), lines)
        strategy_rollups.append(rollup)
        dept_tally.merge(tally)
    stale = sorted(
        (lines[i.id] for i in items if i.status in _OPEN and i.updated_on <= ctx.stale_before),
        # Items arrive in ref-number order and sorted() is stable, so ties stay in that order.
        key=lambda line: line.updated_on or ctx.as_of,
    )
    orphaned = [lines[i.id] for i in items if i.status in _OPEN and lines[i.id].owner_state != "active"]
    quiet_before = ctx.as_of - timedelta(days=QUIET_DAYS)
    stale_status = []
    for item in items:
        if item.status != ItemStatus.ON_TRACK:
            continue
        silent = item.updated_on <= quiet_before
        if lines[item.id].overdue or silent:
            stale_status.append(StaleStatus(lines[item.id], item.updated_on if silent else None))
    done = [lines[i.id] for i in items if i.status == ItemStatus.DONE]
    completed = sorted(
        (
            line
            for line in done
            if line.awaiting_verification
            or (line.completed_on is not None and ctx.quarter.start <= line.completed_on <= ctx.as_of)
        ),
        key=lambda line: line.completed_on or ctx.as_of,
    )
    requests = [ctx.request_line(r, item) for item in items for r in ctx.requests.get(item.id, [])]
    requests.sort(key=lambda r: (r.requested_on, r.id))
    asked, responded = _response(ctx, items)
    coordinators = sorted(
        user_id
        for user_id, person in ctx.people.items()
        if person.department_id == department.id and person.role == Role.COORDINATOR and person.active
    )
    return (
        DepartmentRollup(
            key=department.key,
            name=department.name,
            report_channel=department.report_channel,
            coordinators=coordinators,
            strategies=strategy_rollups,
            changes=_changes(ctx, items),
            response_rate=(len(responded) / len(asked)) if ctx.checkin is not None and asked else None,
            non_responders=sorted(asked - responded, key=lambda u: (ctx.names.get(u, u) or u).lower()),
            stale=stale,
            orphaned=orphaned,
            counts=dept_tally.counts,
            percent_complete=dept_tally.percent_complete,
            on_time_rate=dept_tally.on_time_rate,
            checkin_asked=len(asked),
            checkin_responded=len(responded),
            verified=sum(line.verified for line in done),
            awaiting_verification=sum(line.awaiting_verification for line in done),
            completed=completed,
            requests=requests,
            stale_status=stale_status,
        ),
        dept_tally,
    )


def _strategy_rollup(
    ctx: _Context, strategy: Strategy, plan: Plan, items: list[_Item], lines: dict[int, ItemLine]
) -> tuple[StrategyRollup, _Tally]:
    tally = _Tally()
    overdue: list[ItemLine] = []
    blocked: list[ItemLine] = []
    for item in items:
        on_time = None
        if item.status == ItemStatus.DONE and item.due is not None and item.completed_on is not None:
            on_time = item.completed_on <= item.due
        tally.add(item.status, item.progress, on_time)
        line = lines[item.id]
        if line.days_overdue > 0:
            overdue.append(line)
        if item.status == ItemStatus.BLOCKED:
            blocked.append(line)
    overdue.sort(key=lambda line: -line.days_overdue)
    measures = [_measure_line(ctx.quarter, data, plan) for data in ctx.measures.get(strategy.id or 0, [])]
    return (
        StrategyRollup(
            key=strategy.key,
            name=strategy.name,
            counts=tally.counts,
            percent_complete=tally.percent_complete,
            on_time_rate=tally.on_time_rate,
            overdue=overdue,
            blocked=blocked,
            measures=measures,
        ),
        tally,
    )


def _measure_line(quarter: FiscalQuarter, data: _MeasureData, plan: Plan) -> MeasureLine:
    m = data.measure
    try:
        return _measure_figures(quarter, data, plan)
    except (ReapError, ValueError, TypeError, ArithmeticError, KeyError) as exc:
        # Data the rules cannot read (written before a check existed, or by hand) costs this one
        # line its figures, never the report: the line says why and everything else still prints.
        return MeasureLine(
            key=m.key,
            name=m.name,
            unit=m.unit,
            baseline=_finite(m.baseline),
            latest=None,
            target=_finite(m.target),
            status=MeasureStatus.NEEDS_ATTENTION,
            change=None,
            direction=m.direction,
            target_date=m.target_date,
            owner_id=m.owner_id,
            problem=str(exc) or type(exc).__name__,
        )


def _finite(value: Any) -> float | None:
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def _quarter(label: str, start_month: int) -> FiscalQuarter:
    return parse_quarter(label, start_month=start_month)


def _measure_figures(quarter: FiscalQuarter, data: _MeasureData, plan: Plan) -> MeasureLine:
    m = data.measure
    rule = rule_of(m, start_month=quarter.start_month)
    if _finite(m.baseline) is None or _finite(m.target) is None:
        raise ValueError(f"its baseline ({m.baseline}) or target ({m.target}) is not a number")
    check_measure(rule)
    start = rule.line_start(plan.start_date)
    current = data.readings.get(quarter.label)
    previous = data.readings.get(quarter.previous().label)
    latest_quarter = max(data.readings) if data.readings else None
    latest = data.readings[latest_quarter] if latest_quarter else None
    status = measure_status(
        baseline=m.baseline,
        target=m.target,
        direction=m.direction,
        start=start,
        target_date=m.target_date,
        quarter=quarter,
        value=current,
    )
    progress = None
    if latest is not None:
        progress = actual_fraction(baseline=m.baseline, target=m.target, value=latest, direction=m.direction)
    for value in data.readings.values():
        if not math.isfinite(value):
            raise ValueError(f"a stored reading is {value}, not a number")
    return MeasureLine(
        key=m.key,
        name=m.name,
        unit=m.unit,
        baseline=m.baseline,
        latest=latest,
        target=m.target,
        status=status,
        change=(current - previous) if current is not None and previous is not None else None,
        latest_quarter=latest_quarter,
        direction=m.direction,
        target_date=m.target_date,
        owner_id=m.owner_id,
        progress=progress,
        expected=expected_fraction(start=start, target_date=m.target_date, as_of=quarter.end),
        kind=m.kind,
        baseline_quarter=rule.baseline_quarter.label if rule.baseline_quarter else None,
        target_quarter=rule.target_quarter.label,
        source=m.source,
        series=_series(quarter, data, rule, start),
        breakdown=_breakdown(quarter, data, rule),
    )


def _series(
    until: FiscalQuarter, data: _MeasureData, rule: MeasureRule, start: date
) -> tuple[SeriesPoint, ...]:
    """Every quarter from the baseline quarter (else the first reading) to the rollup's quarter."""
    firsts = [q for q in (rule.baseline_quarter,) if q is not None]
    firsts += [_quarter(label, until.start_month) for label in data.readings]
    if not firsts:
        return ()
    quarter = min(firsts)
    points: list[SeriesPoint] = []
    # A plan runs a few years; the cap keeps a garbled baseline year from looping for ever.
    while quarter <= until and len(points) < 200:
        expected: float | None = expected_value(
            baseline=rule.baseline,
            target=rule.target,
            start=start,
            target_date=rule.target_date,
            as_of=quarter.end,
        )
        if rule.baseline_quarter is not None and quarter < rule.baseline_quarter:
            expected = None
        points.append(
            SeriesPoint(quarter=quarter.label, value=data.readings.get(quarter.label), expected=expected)
        )
        quarter = quarter.next()
    return tuple(points)


def _breakdown(quarter: FiscalQuarter, data: _MeasureData, rule: MeasureRule) -> MeasureBreakdown | None:
    m = data.measure
    if not m.breakdown_dimension:
        return None
    dim = data.dimension
    if dim is None:
        raise ValueError(
            f"its breakdown names dimension '{m.breakdown_dimension}', which the plan does not declare"
        )
    declared = [(str(g["key"]), g) for g in dim.groups]

    def at(label: str | None) -> Breakdown | None:
        if label is None or label not in data.groups:
            return None
        given = data.groups[label]
        inputs = [
            GroupInput(
                key=key,
                value=_number(given.get(key, {}).get("value")),
                n=_number(given.get(key, {}).get("n")),
                population_share=_number(group.get("population_share")),
            )
            for key, group in declared
        ]
        return breakdown(
            m.breakdown_kind or BreakdownKind.RATE.value,
            inputs,
            overall=data.readings.get(label),
            reference_group=m.reference_group,
            min_count=data.min_count,
        )

    if not data.groups:
        return None
    # The quarter's own breakdown, else the latest one given: a gap does not vanish for a quarter.
    current = at(quarter.label) or at(max(data.groups))
    if current is None:
        return None
    return MeasureBreakdown(
        dimension=dim.key,
        dimension_name=dim.name,
        kind=m.breakdown_kind or BreakdownKind.RATE.value,
        group_names={key: str(group.get("name") or key) for key, group in declared},
        current=current,
        last=at(quarter.previous().label),
        baseline=at(rule.baseline_quarter.label) if rule.baseline_quarter else None,
    )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"a stored group value is {value}, not a number")
    return number


def _changes(ctx: _Context, items: list[_Item]) -> Changes:
    transitions: list[tuple[str, str, str]] = []
    completed: list[str] = []
    new_items: list[str] = []
    redated: list[tuple[str, date | None, date | None]] = []
    notes: dict[str, str] = {}
    for item in items:
        events = ctx.events.get(item.id, [])
        statuses = [e for e in events if e.action == "status" and e.field == "status"]
        # Net change per item: a quarter's packet cares where an item went, not each wobble.
        if statuses and statuses[0].old != statuses[-1].new:
            transitions.append((item.ref, statuses[0].old or "", statuses[-1].new or ""))
        created = any(e.action == "create" for e in events)
        if created:
            new_items.append(item.ref)
        finished_here = statuses and statuses[-1].new == ItemStatus.DONE
        # An item imported as done has a create event but no status change to count.
        created_done = (
            created
            and not statuses
            and item.completed_on is not None
            and ctx.quarter.start <= item.completed_on <= ctx.as_of
        )
        if item.status == ItemStatus.DONE and (finished_here or created_done):
            completed.append(item.ref)
        dates = [e for e in events if e.action == "redate" and e.field == "due"]
        if dates and dates[0].old != dates[-1].new:
            redated.append((item.ref, _as_date(dates[0].old), _as_date(dates[-1].new)))
        why = next((e.note for e in reversed(statuses + dates) if e.note), None) or item.last_note
        if why:
            notes[item.ref] = why
    newly_overdue = [
        item.ref
        for item in items
        if item.status in _OPEN and item.due is not None and ctx.quarter.start <= item.due < ctx.as_of
    ]
    attention = [
        (item.ref, item.status)
        for item in items
        if item.status in (ItemStatus.AT_RISK.value, ItemStatus.OFF_TRACK.value)
    ]
    mentioned = {ref for ref, _, _ in transitions} | set(completed) | set(newly_overdue) | set(new_items)
    mentioned |= {ref for ref, _, _ in redated} | {ref for ref, _ in attention}
    return Changes(
        status_transitions=transitions,
        completed=completed,
        newly_overdue=newly_overdue,
        new_items=new_items,
        redated=redated,
        titles={item.ref: item.title for item in items if item.ref in mentioned},
        notes={ref: why for ref, why in notes.items() if ref in mentioned},
        attention=attention,
    )


def _response(ctx: _Context, items: list[_Item]) -> tuple[set[str], set[str]]:
    """Owners asked (active owners of open or answered items who were sent the prompt, once the
    cycle opened) and those who answered. Nobody is listed for a question they were never asked."""
    if ctx.checkin is None or not ctx.checkin.opened:
        return set(), set()
    asked: set[str] = set()
    responded: set[str] = set()
    for item in items:
        answered = item.id in ctx.checkin.responded_items
        if not item.owner_id or ctx.owner_state(item.owner_id) != "active":
            continue
        if answered:
            responded.add(item.owner_id)
            asked.add(item.owner_id)
        elif item.status in _OPEN and item.owner_id in ctx.checkin.prompted:
            asked.add(item.owner_id)
    return asked, responded


@dataclass(frozen=True)
class PlacedMeasure:
    """A measure line with the department and strategy it belongs to."""

    department: str
    strategy: str
    line: MeasureLine


async def measure_lines(
    session: AsyncSession,
    *,
    team_id: str,
    quarter: FiscalQuarter,
    owner_id: str | None = None,
    strategy_id: int | None = None,
) -> list[PlacedMeasure]:
    """Every measure (or one owner's, or one strategy's) at `quarter`, as the rollup computes it."""
    rows = list(
        await session.exec(
            select(Strategy, Plan, Department)
            .join(Plan, col(Plan.id) == col(Strategy.plan_id))
            .join(Department, col(Department.id) == col(Plan.department_id))
            .where(Strategy.team_id == team_id)
            .order_by(col(Department.key), col(Strategy.position))
        )
    )
    if strategy_id is not None:
        rows = [row for row in rows if row[0].id == strategy_id]
    grouped = await _measures(
        session, team_id=team_id, quarter=quarter, strategy_ids={s.id for s, _, _ in rows}
    )
    placed: list[PlacedMeasure] = []
    for strategy, plan, department in rows:
        for data in grouped.get(strategy.id or 0, []):
            if owner_id is not None and data.measure.owner_id != owner_id:
                continue
            placed.append(PlacedMeasure(department.key, strategy.name, _measure_line(quarter, data, plan)))
    return placed
