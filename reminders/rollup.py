"""The quarterly rollup: what each department's plan looks like at a quarter, and its renderings.

`build_rollup` reads the database in a few bulk queries (per rollup, not per item) and returns
frozen data; the renderers (Markdown, HTML, JSON, Slack Block Kit) are pure functions of it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from reminders.fiscal import FiscalQuarter
from reminders.measures import MeasureStatus, actual_fraction, expected_fraction, measure_status
from storage.errors import NotFound
from storage.models import (
    ActionItem,
    AuditEvent,
    CheckInCycle,
    CheckInResponse,
    Department,
    ItemStatus,
    Measure,
    MeasureReading,
    Person,
    Plan,
    Role,
    Strategy,
)

if TYPE_CHECKING:
    from jinja2 import Environment

DEFAULT_ZONE = "America/New_York"
STALE_DAYS = 60
STATUSES: tuple[str, ...] = tuple(s.value for s in ItemStatus)

# --- The rollup data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemLine:
    """One item as a rollup list shows it."""

    ref: str
    title: str
    owner_id: str | None
    owner_name: str
    status: str
    progress: int
    due: date | None
    days_overdue: int
    last_note: str | None
    strategy: str = ""
    updated_on: date | None = None
    owner_state: str = "active"  # active | deactivated | unknown | none


@dataclass(frozen=True)
class MeasureLine:
    """A performance measure at the quarter: baseline, latest reading, target, status and change."""

    key: str
    name: str
    unit: str
    baseline: float
    latest: float | None
    target: float
    status: MeasureStatus
    change: float | None
    latest_quarter: str | None = None
    direction: str = "increase"
    target_date: date | None = None
    owner_id: str | None = None
    progress: float | None = None  # share of baseline->target reached by the latest reading
    expected: float | None = None  # share expected by the end of the quarter


@dataclass(frozen=True)
class StrategyRollup:
    """A strategy's items by status, completion, overdue and blocked items, and measures."""

    key: str
    name: str
    counts: dict[str, int]
    percent_complete: float
    on_time_rate: float | None
    overdue: list[ItemLine]
    blocked: list[ItemLine]
    measures: list[MeasureLine]

    @property
    def total(self) -> int:
        """How many items the strategy has, dropped included."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class Changes:
    """What happened inside the quarter, from the audit trail; transitions are net per item."""

    status_transitions: list[tuple[str, str, str]]
    completed: list[str]
    newly_overdue: list[str]
    new_items: list[str]
    redated: list[tuple[str, date | None, date | None]]

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not (
            self.status_transitions or self.completed or self.newly_overdue or self.new_items or self.redated
        )


@dataclass(frozen=True)
class DepartmentRollup:
    """One department's part of the rollup."""

    key: str
    name: str
    report_channel: str | None
    coordinators: list[str]
    strategies: list[StrategyRollup]
    changes: Changes
    response_rate: float | None
    non_responders: list[str]
    stale: list[ItemLine]
    orphaned: list[ItemLine]
    counts: dict[str, int] = field(default_factory=dict)
    percent_complete: float = 0.0
    on_time_rate: float | None = None
    checkin_asked: int = 0
    checkin_responded: int = 0

    @property
    def total(self) -> int:
        """How many items the department has."""
        return sum(self.counts.values())

    @property
    def overdue_count(self) -> int:
        """How many of its items are overdue."""
        return sum(len(s.overdue) for s in self.strategies)


@dataclass(frozen=True)
class Rollup:
    """The whole rollup for a quarter, as of a day inside (or at the end of) it."""

    quarter: str
    as_of: date
    departments: list[DepartmentRollup]
    counts: dict[str, int]
    percent_complete: float
    on_time_rate: float | None
    response_rate: float | None
    previous_quarter: str = ""
    stale_days: int = STALE_DAYS
    names: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many items the rollup covers."""
        return sum(self.counts.values())

    @property
    def overdue_count(self) -> int:
        """How many items are overdue across departments."""
        return sum(d.overdue_count for d in self.departments)

    def name_of(self, user_id: str | None) -> str:
        """A person's display name, or their id when the bot does not know them."""
        if not user_id:
            return "no owner"
        return self.names.get(user_id) or user_id


# --- Building it ---------------------------------------------------------------------------------


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
    as_of = min(as_of, quarter.end)
    departments = await _departments(session, team_id=team_id, key=department_key)
    dept_ids = [d.id for d in departments if d.id is not None]
    plans = await _plans(session, dept_ids=dept_ids, as_of=as_of)
    strategies = await _strategies(session, plan_ids=[p.id for p in plans.values() if p.id is not None])
    people = await _people(session, team_id=team_id)
    items = await _items(session, team_id=team_id, dept_ids=dept_ids, zone=zone)
    strategy_ids = {s.id for group in strategies.values() for s in group}
    items = [i for i in items if i.strategy_id in strategy_ids]
    measures = await _measures(session, team_id=team_id, quarter=quarter, strategy_ids=strategy_ids)
    window = (_local_midnight(quarter.start, zone), _local_midnight(as_of + timedelta(days=1), zone))
    events = await _events(session, team_id=team_id, dept_ids=dept_ids, window=window)
    checkin = await _checkin(session, team_id=team_id, quarter=quarter)

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
    )
    total = _Tally()
    dept_rollups = []
    asked = responded = 0
    for department in departments:
        assert department.id is not None
        rollup, tally = _department_rollup(context, department, by_dept.get(department.id, []))
        dept_rollups.append(rollup)
        total.merge(tally)
        asked += rollup.checkin_asked
        responded += rollup.checkin_responded
    return Rollup(
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
        )
        .where(col(ActionItem.team_id) == team_id)
        .where(col(ActionItem.department_id).in_(dept_ids))
        .order_by(col(ActionItem.department_id), col(ActionItem.number))
    )
    items = []
    for id_, ref, title, owner, status, progress, due, note, strategy_id, dept_id, done_at, updated in rows:
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
            )
        )
    return items


@dataclass(frozen=True)
class _MeasureData:
    measure: Measure
    readings: dict[str, float]  # quarter label -> value, up to the rollup's quarter


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
    if measures:
        rows = await session.exec(
            select(col(MeasureReading.measure_id), col(MeasureReading.quarter), col(MeasureReading.value))
            .where(MeasureReading.team_id == team_id)
            .where(col(MeasureReading.measure_id).in_([m.id for m in measures]))
            # Canonical labels (FY2027-Q2) sort in time order as text.
            .where(col(MeasureReading.quarter) <= quarter.label)
        )
        for measure_id, label, value in rows:
            readings[measure_id][label] = value
    grouped: dict[int, list[_MeasureData]] = defaultdict(list)
    for m in measures:
        grouped[m.strategy_id].append(_MeasureData(measure=m, readings=readings.get(m.id or 0, {})))
    return grouped


@dataclass(frozen=True)
class _Event:
    item_id: int
    action: str
    field: str | None
    old: str | None
    new: str | None


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
    for item_id, action, fld, old, new in rows:
        if item_id is not None:
            grouped[item_id].append(_Event(item_id, action, fld, old, new))
    return grouped


@dataclass(frozen=True)
class _CheckIn:
    responded_items: set[int]


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
    return _CheckIn(responded_items=set(rows))


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

    def owner_state(self, owner_id: str | None) -> str:
        if not owner_id:
            return "none"
        person = self.people.get(owner_id)
        if person is None:
            return "unknown"
        return "active" if person.active else "deactivated"

    def line(self, item: _Item, strategy: str) -> ItemLine:
        overdue = item.due is not None and item.status in _OPEN and item.due < self.as_of
        return ItemLine(
            ref=item.ref,
            title=item.title,
            owner_id=item.owner_id,
            owner_name=self.names.get(item.owner_id, item.owner_id) if item.owner_id else "no owner",
            status=item.status,
            progress=100 if item.status == ItemStatus.DONE else item.progress,
            due=item.due,
            days_overdue=(self.as_of - item.due).days if overdue and item.due else 0,
            last_note=item.last_note,
            strategy=strategy,
            updated_on=item.updated_on,
            owner_state=self.owner_state(item.owner_id),
        )


_OPEN = frozenset(s.value for s in ItemStatus if s.is_open)


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
    measures = [_measure_line(ctx, data, plan) for data in ctx.measures.get(strategy.id or 0, [])]
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


def _measure_line(ctx: _Context, data: _MeasureData, plan: Plan) -> MeasureLine:
    m = data.measure
    current = data.readings.get(ctx.quarter.label)
    previous = data.readings.get(ctx.quarter.previous().label)
    latest_quarter = max(data.readings) if data.readings else None
    latest = data.readings[latest_quarter] if latest_quarter else None
    status = measure_status(
        baseline=m.baseline,
        target=m.target,
        direction=m.direction,
        plan_start=plan.start_date,
        target_date=m.target_date,
        quarter=ctx.quarter,
        value=current,
    )
    progress = None
    if latest is not None:
        progress = actual_fraction(baseline=m.baseline, target=m.target, value=latest, direction=m.direction)
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
        expected=expected_fraction(
            plan_start=plan.start_date, target_date=m.target_date, as_of=ctx.quarter.end
        ),
    )


def _changes(ctx: _Context, items: list[_Item]) -> Changes:
    transitions: list[tuple[str, str, str]] = []
    completed: list[str] = []
    new_items: list[str] = []
    redated: list[tuple[str, date | None, date | None]] = []
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
    newly_overdue = [
        item.ref
        for item in items
        if item.status in _OPEN and item.due is not None and ctx.quarter.start <= item.due < ctx.as_of
    ]
    return Changes(
        status_transitions=transitions,
        completed=completed,
        newly_overdue=newly_overdue,
        new_items=new_items,
        redated=redated,
    )


def _response(ctx: _Context, items: list[_Item]) -> tuple[set[str], set[str]]:
    """Owners asked (active owners of open or answered items) and those who answered."""
    if ctx.checkin is None:
        return set(), set()
    asked: set[str] = set()
    responded: set[str] = set()
    for item in items:
        answered = item.id in ctx.checkin.responded_items
        if not item.owner_id or ctx.owner_state(item.owner_id) != "active":
            continue
        if item.status in _OPEN or answered:
            asked.add(item.owner_id)
        if answered:
            responded.add(item.owner_id)
    return asked, responded


# --- Text helpers shared by every rendering ------------------------------------------------------


def slack_escape(text: object) -> str:
    """Slack's mrkdwn escaping: & first, then < and >; nothing else, so text shows as typed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_number(value: float | None) -> str:
    """A measure value for people: thousands separators, at most two decimals, no trailing zeros."""
    if value is None:
        return "—"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_change(value: float | None) -> str:
    """A signed change, e.g. +2.5 or −3."""
    if value is None:
        return "—"
    if value == 0:
        return "±0"
    return ("+" if value > 0 else "−") + format_number(abs(value))


def format_rate(value: float | None) -> str:
    """A 0..1 rate as a whole percentage, or a dash when there is nothing to rate."""
    return "—" if value is None else f"{round(value * 100)}%"


def format_percent(value: float | None) -> str:
    """A 0..100 percentage."""
    return "—" if value is None else f"{round(value)}%"


def plural(count: int, noun: str) -> str:
    """'1 item', '2 items'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def label(status: str) -> str:
    """Human label of an item or measure status."""
    return status.replace("_", " ")


def _md_cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# --- Jinja2 --------------------------------------------------------------------------------------


@cache
def template_env() -> Environment:
    """The one Jinja2 environment for rollup templates, built on first use (no I/O at import)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("reminders", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        mrkdwn=slack_escape,
        cell=_md_cell,
        oneline=_one_line,
        num=format_number,
        change=format_change,
        rate=format_rate,
        percent=format_percent,
        label=label,
    )
    env.globals.update(STATUSES=STATUSES, MD_EMOJI=MD_EMOJI, MEASURE_MD_EMOJI=MEASURE_MD_EMOJI)
    return env


MD_EMOJI = {
    "not_started": "⚪",
    "on_track": "🟢",
    "at_risk": "🟡",
    "off_track": "🔴",
    "blocked": "🔴",
    "done": "✅",
    "dropped": "➖",
}
MEASURE_MD_EMOJI = {
    "on_track": "🟢",
    "at_risk": "🟡",
    "off_track": "🔴",
    "no_data": "❔",
    "met": "✅",
}


def render_markdown(rollup: Rollup) -> str:
    """The quarterly meeting packet as Markdown."""
    return template_env().get_template("rollup.md.j2").render(r=rollup)


def render_html(rollup: Rollup) -> str:
    """The quarterly meeting packet as a standalone HTML page (user text escaped)."""
    return template_env().get_template("rollup.html.j2").render(r=rollup)


def _json_default(value: object) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def render_json(rollup: Rollup) -> str:
    """The rollup as JSON, for other tools."""
    data = dataclasses.asdict(rollup)
    data["total"] = rollup.total
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False)


# --- Slack Block Kit -----------------------------------------------------------------------------

Block = dict[str, Any]

MAX_BLOCKS = 50
# Slack rejects section text of 3,000 characters; stay clear of it (counted in UTF-16 units).
SECTION_LIMIT = 2_900
# Slack also rejects a message whose blocks are too long overall (msg_blocks_too_long, about
# 13k characters, undocumented), so each message gets a budget below that.
MESSAGE_BUDGET = 11_000
FALLBACK_LIMIT = 3_000

STATUS_EMOJI = {
    "not_started": ":white_circle:",
    "on_track": ":large_green_circle:",
    "at_risk": ":large_yellow_circle:",
    "off_track": ":red_circle:",
    "blocked": ":red_circle:",
    "done": ":white_check_mark:",
    "dropped": ":heavy_minus_sign:",
}
MEASURE_EMOJI = {
    "on_track": ":large_green_circle:",
    "at_risk": ":large_yellow_circle:",
    "off_track": ":red_circle:",
    "no_data": ":grey_question:",
    "met": ":white_check_mark:",
}
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


def slack_len(text: str) -> int:
    """Length as Slack counts it (UTF-16 code units), so emoji cannot push a text over a limit."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, units: int) -> int:
    """How many characters of `text` fit in `units` UTF-16 units."""
    total = 0
    for index, char in enumerate(text):
        total += 2 if ord(char) > 0xFFFF else 1
        if total > units:
            return index
    return len(text)


def split_text(text: str, units: int) -> list[str]:
    """Split text into pieces of at most `units`, at spaces if possible, never inside an &amp; escape."""
    pieces = []
    while slack_len(text) > units:
        cut = _fit(text, units)
        space = text.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space
        amp = text.rfind("&", max(0, cut - 5), cut)
        if amp > 0 and ";" not in text[amp:cut]:
            cut = amp
        cut = max(cut, 1)
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" ")
    pieces.append(text)
    return pieces


def build_section(text: str) -> Block:
    """A section of mrkdwn text (already escaped and within the section limit)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def build_context(text: str) -> Block:
    """A small grey context line."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def build_header(text: str) -> Block:
    """A header block; only our own words go here (plain_text is not escaped)."""
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def build_divider() -> Block:
    """A divider."""
    return {"type": "divider"}


def build_list_sections(title: str, lines: Sequence[str], *, limit: int = SECTION_LIMIT) -> list[Block]:
    """Sections holding every line under `title`, continued in as many sections as it takes."""
    if not lines:
        return []
    heading = f"*{title}*"
    continued = f"*{title} (continued)*"
    texts: list[str] = []
    current = heading
    for line in lines:
        for piece in split_text(line, limit - slack_len(continued) - 1):
            if slack_len(current) + 1 + slack_len(piece) > limit:
                texts.append(current)
                current = continued
            current = f"{current}\n{piece}"
    texts.append(current)
    return [build_section(text) for text in texts]


def _block_size(block: Block) -> int:
    size = 0
    text = block.get("text")
    if isinstance(text, dict):
        size += slack_len(str(text.get("text", "")))
    for element in block.get("elements", ()):
        if isinstance(element, dict):
            size += slack_len(str(element.get("text", "")))
    return size


def build_messages(blocks: Sequence[Block], *, fallback: str) -> list[dict[str, Any]]:
    """Messages of at most 50 blocks and within the overall size budget, each with fallback text."""
    chunks: list[list[Block]] = []
    current: list[Block] = []
    size = 0
    for block in blocks:
        block_size = _block_size(block)
        if current and (len(current) >= MAX_BLOCKS or size + block_size > MESSAGE_BUDGET):
            chunks.append(current)
            current, size = [], 0
        current.append(block)
        size += block_size
    if current:
        chunks.append(current)
    count = len(chunks)
    return [
        {
            "text": fallback if count == 1 else f"{fallback} ({n}/{count})",
            "blocks": chunk,
        }
        for n, chunk in enumerate(chunks, start=1)
    ]


def _mention(user_id: str, rollup: Rollup) -> str:
    if _SLACK_ID.match(user_id):
        return f"<@{user_id}>"
    return slack_escape(rollup.name_of(user_id))


def _counts_text(counts: dict[str, int]) -> str:
    parts = [f"{STATUS_EMOJI[s]} {counts[s]} {label(s)}" for s in STATUSES if counts.get(s)]
    return " · ".join(parts) if parts else "no items"


def build_department_summary(department: DepartmentRollup) -> str:
    """One mrkdwn line summing a department up for the summary message."""
    parts = [
        f"*{slack_escape(department.key)}* {slack_escape(_one_line(department.name))}",
        plural(department.total, "item"),
        _counts_text(department.counts),
        f"{format_percent(department.percent_complete)} complete",
        f"on time {format_rate(department.on_time_rate)}",
    ]
    if department.overdue_count:
        parts.append(f"*{department.overdue_count} overdue*")
    if department.response_rate is not None:
        parts.append(f"check-in {format_rate(department.response_rate)}")
    return " · ".join(parts)


def _item_head(line: ItemLine) -> str:
    title = slack_escape(_one_line(line.title))
    return f"• *{slack_escape(line.ref)}* {title} — {slack_escape(line.owner_name)}"


def _item_text(line: ItemLine, *, due: bool = False, note: bool = False, updated: bool = False) -> str:
    text = _item_head(line)
    if due and line.due is not None:
        text += f" — *{line.days_overdue} days overdue* (due {line.due.isoformat()})"
    if updated and line.updated_on is not None:
        text += f" — last update {line.updated_on.isoformat()}"
    if note:
        text += f"\n> {slack_escape(_one_line(line.last_note))}" if line.last_note else "\n> _no note_"
    return text


def _orphan_text(line: ItemLine) -> str:
    why = {"deactivated": " (owner deactivated)", "unknown": " (owner unknown to the bot)"}
    return _item_head(line) + why.get(line.owner_state, "")


def with_unit(value: float | None, unit: str) -> str:
    """A measure value with its unit: 27%, 78 days, or a dash when there is no value."""
    if value is None or not unit:
        return format_number(value)
    return f"{format_number(value)}{'' if unit == '%' else ' '}{unit}"


def _measure_text(m: MeasureLine) -> str:
    def value(number: float | None) -> str:
        return slack_escape(with_unit(number, _one_line(m.unit)))

    latest = value(m.latest) + (f" ({m.latest_quarter})" if m.latest_quarter else "")
    return (
        f"• *{slack_escape(_one_line(m.name))}*: baseline {value(m.baseline)}"
        f" → latest {latest} → target {value(m.target)}"
        f" · {MEASURE_EMOJI[m.status]} {label(m.status)} · change {format_change(m.change)}"
    )


def build_department_blocks(department: DepartmentRollup, rollup: Rollup) -> list[Block]:
    """Every block of a department's detail, in reading order (split into messages later)."""
    blocks: list[Block] = [build_divider()]
    blocks += [build_section(t) for t in split_text(build_department_summary(department), SECTION_LIMIT)]
    strategy_lines = [
        f"• *{slack_escape(_one_line(s.name))}* — {plural(s.total, 'item')}: {_counts_text(s.counts)}"
        f" · {format_percent(s.percent_complete)} complete · on time {format_rate(s.on_time_rate)}"
        for s in department.strategies
    ]
    blocks += build_list_sections("Items by strategy", strategy_lines)
    overdue = [line for s in department.strategies for line in s.overdue]
    overdue.sort(key=lambda line: -line.days_overdue)
    blocks += build_list_sections(
        f":red_circle: Overdue ({len(overdue)})", [_item_text(line, due=True) for line in overdue]
    )
    blocked = [line for s in department.strategies for line in s.blocked]
    blocks += build_list_sections(
        f":red_circle: Blocked ({len(blocked)})", [_item_text(line, note=True) for line in blocked]
    )
    measures = [_measure_text(m) for s in department.strategies for m in s.measures]
    blocks += build_list_sections("Measures", measures)
    blocks += build_list_sections(
        f"Changes since {rollup.previous_quarter}", _change_lines(department.changes)
    )
    if department.response_rate is not None:
        lines = [
            f"Response rate {format_rate(department.response_rate)}"
            f" ({department.checkin_responded} of {department.checkin_asked} owners)"
        ]
        if department.non_responders:
            lines.append("Not yet responded:")
            lines += [f"• {slack_escape(rollup.name_of(u))}" for u in department.non_responders]
        blocks += build_list_sections("Check-in", lines)
    if department.stale or department.orphaned:
        who = " ".join(_mention(u, rollup) for u in department.coordinators) or "the DEI coordinator"
        attention = [
            f"For {who}",
            f"• Stale (no update in {rollup.stale_days} days): {len(department.stale)}",
            f"• Orphaned (owner deactivated, unknown or missing): {len(department.orphaned)}",
        ]
        blocks += build_list_sections(":warning: For the coordinator's attention", attention)
        blocks += build_list_sections(
            "Stale items", [_item_text(line, updated=True) for line in department.stale]
        )
        blocks += build_list_sections("Orphaned items", [_orphan_text(line) for line in department.orphaned])
    return blocks


def _change_lines(changes: Changes) -> list[str]:
    lines = [
        f"• {slack_escape(ref)}: {slack_escape(label(old))} → {slack_escape(label(new))}"
        for ref, old, new in changes.status_transitions
    ]
    for title, refs in (
        ("Completed", changes.completed),
        ("Newly overdue", changes.newly_overdue),
        ("New items", changes.new_items),
    ):
        if refs:
            lines.append(f"• {title}: {', '.join(slack_escape(r) for r in refs)}")
    lines += [
        f"• Re-dated {slack_escape(ref)}: {old.isoformat() if old else 'no date'} → "
        f"{new.isoformat() if new else 'no date'}"
        for ref, old, new in changes.redated
    ]
    return lines or ["_No changes recorded this quarter._"]


def build_summary_intro(rollup: Rollup) -> list[Block]:
    """The opening blocks of the summary message: title, as-of line and overall status counts."""
    facts = [
        f"As of {rollup.as_of.isoformat()}",
        plural(rollup.total, "item"),
        f"{format_percent(rollup.percent_complete)} complete",
        f"on-time completion {format_rate(rollup.on_time_rate)}",
        f"{rollup.overdue_count} overdue",
    ]
    if rollup.response_rate is not None:
        facts.append(f"check-in response {format_rate(rollup.response_rate)}")
    return [
        build_header(f"REAP rollup {rollup.quarter}"),
        build_context(" · ".join(facts)),
        build_section(_counts_text(rollup.counts)),
    ]


def slack_messages(rollup: Rollup) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary message and the thread replies with each department's detail, all within limits."""
    blocks = build_summary_intro(rollup)
    lines = [build_department_summary(d) for d in rollup.departments]
    sections = build_list_sections("Departments", lines)
    closing_reserve = 200
    size = sum(_block_size(b) for b in blocks)
    kept = 0
    for section in sections:
        if len(blocks) + 2 > MAX_BLOCKS or size + _block_size(section) > MESSAGE_BUDGET - closing_reserve:
            break
        blocks.append(section)
        size += _block_size(section)
        kept += 1
    thread_blocks: list[Block] = []
    if kept < len(sections):
        blocks.append(
            build_context(f"{len(sections) - kept} more department section(s) continue in the thread.")
        )
        thread_blocks += sections[kept:]
    else:
        blocks.append(build_context("Each department's detail is in the thread."))
    fallback = slack_escape(
        f"REAP rollup {rollup.quarter}: {plural(rollup.total, 'item')}, "
        f"{format_percent(rollup.percent_complete)} complete, {rollup.overdue_count} overdue"
    )
    summary = {"text": fallback, "blocks": blocks}
    replies: list[dict[str, Any]] = []
    if thread_blocks:
        replies += build_messages(thread_blocks, fallback=f"REAP rollup {rollup.quarter}: departments")
    for department in rollup.departments:
        text = slack_escape(_one_line(f"REAP rollup {rollup.quarter}: {department.key} {department.name}"))
        replies += build_messages(build_department_blocks(department, rollup), fallback=text[:FALLBACK_LIMIT])
    return summary, replies
