"""Planning: turn what the policy says is owed at `now` into outbox rows, once per key.

A tick first works out which local business days are being served right now (each zone in its
sending window), so outside every window it costs one small query. For each such day it fetches
only the items owed something that day, by the due dates the policy's inverse functions name
(using the team/status/due and team/snoozed indexes), never the whole plan; `plan_digests`
then re-checks every candidate per recipient. Rows go in with `ON CONFLICT (key) DO NOTHING`,
so any number of instances may plan the same instant and each message is stored once.

Besides the digests, planning owes riders (rows that go out only inside a digest): orphan reports,
and each pending change request put before its deciders, once when it arrives and again every
week it waits. `fold_in` then carries every waiting rider into its reader's
digest for the day, storing that digest if nothing else was owed, so a person hears once a day.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, text
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.cadence import Cadence, CadenceError
from domain.calendar import BusinessCalendar
from domain.commitments import RequestState
from reminders.digest import (
    REQUEST,
    carrier_row,
    decision_row,
    orphan_row,
    planned_row,
    request_key,
)
from reminders.policy import (
    OPEN_STATUSES,
    ItemView,
    PlannedDigest,
    Recipient,
    due_dates_owed_on,
    escalation_due,
    escalation_due_dates,
    nudge_kind,
    plan_digests,
    sending_slot,
    snooze_end_dates,
)
from storage import outbox
from storage.changes import mark_surfaced
from storage.engine import Sessions, one_of, transaction
from storage.installations import uninstalled_teams
from storage.models import (
    ActionItem,
    ChangeRequest,
    Department,
    Installation,
    Notification,
    NotificationCreate,
    Person,
    Plan,
    Strategy,
)
from storage.people import valid_zone
from storage.queries.people import active_coordinators, deciders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanConfig:
    """What planning needs besides the data: the org zone, calendar, default cadence and hours."""

    zone: ZoneInfo
    calendar: BusinessCalendar
    cadence: Cadence = field(default_factory=Cadence)
    reminder_hour: int = 9
    reminder_minute: int = 0
    quiet_hour: int = 18

    def slot(self, now: datetime, zone: ZoneInfo) -> date | None:
        """The local business day being served in `zone` at `now`, if its window is open."""
        return sending_slot(
            now,
            zone,
            self.calendar,
            reminder_hour=self.reminder_hour,
            quiet_hour=self.quiet_hour,
            reminder_minute=self.reminder_minute,
        )


@dataclass
class PlanReport:
    """What one planning pass for one workspace found and stored."""

    team_id: str
    now: datetime
    local_dates: tuple[date, ...] = ()
    candidates: int = 0
    planned: int = 0
    existing: int = 0
    inserted: int = 0
    conflicts: int = 0
    orphans: int = 0
    decisions: int = 0
    keys: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for logs and the CLI."""
        days = ", ".join(d.isoformat() for d in self.local_dates) or "none"
        return (
            f"{self.team_id}: serving {days}; {self.candidates} candidate items,"
            f" {self.planned} messages owed, {self.existing} already planned, {self.inserted} new,"
            f" {self.conflicts} lost to another ticker"
        )


@dataclass(frozen=True)
class _Group:
    """Plans sharing one cadence (plan_ids None: every plan of the team)."""

    cadence: Cadence
    plan_ids: tuple[int, ...] | None


def _zone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    checked = valid_zone(name)
    return ZoneInfo(checked) if checked else default


# A team's distinct zones, found by skipping through ix_person_team_tz one zone at a time: a few
# index probes per tick however many people there are, where DISTINCT reads every person row.
# (A person without a zone uses the organisation's, which is always served.)
_DISTINCT_ZONES = text(
    """
    WITH RECURSIVE zones(tz) AS (
        SELECT min(tz) FROM person WHERE team_id = :team
        UNION ALL
        SELECT (SELECT min(p.tz) FROM person p WHERE p.team_id = :team AND p.tz > zones.tz)
        FROM zones WHERE zones.tz IS NOT NULL
    )
    SELECT tz FROM zones WHERE tz IS NOT NULL
    """
)


async def _serving_dates(
    session: AsyncSession, *, team_id: str, now: datetime, config: PlanConfig
) -> tuple[date, ...]:
    connection = await session.connection()
    names = (await connection.execute(_DISTINCT_ZONES, {"team": team_id})).scalars().all()
    zones = {config.zone.key: config.zone}
    for name in names:
        zone = _zone(name, config.zone)
        zones[zone.key] = zone
    days = {config.slot(now, zone) for zone in zones.values()}
    return tuple(sorted(day for day in days if day is not None))


async def _cadence_groups(session: AsyncSession, *, team_id: str, config: PlanConfig) -> list[_Group]:
    plans = await session.exec(select(Plan.id, Plan.cadence).where(Plan.team_id == team_id))
    by_cadence: dict[Cadence, list[int]] = {}
    for plan_id, overrides in plans:
        cadence = config.cadence
        if overrides:
            try:
                cadence = Cadence.from_mapping({**asdict(config.cadence), **overrides})
            except CadenceError as exc:
                # One bad plan setting must not stop everyone's reminders.
                log.warning("plan %s: %s; using the default cadence", plan_id, exc)
        by_cadence.setdefault(cadence, []).append(plan_id or 0)
    if len(by_cadence) <= 1:
        only = next(iter(by_cadence), config.cadence)
        return [_Group(only, None)]
    return [_Group(cadence, tuple(ids)) for cadence, ids in by_cadence.items()]


async def _candidates(
    session: AsyncSession,
    *,
    team_id: str,
    day: date,
    group: _Group,
    config: PlanConfig,
) -> list[ItemView]:
    cadence = group.cadence
    calendar = config.calendar
    owed = set(due_dates_owed_on(day, calendar, cadence)) | set(escalation_due_dates(day, calendar, cadence))
    ends = snooze_end_dates(day, calendar)
    if not owed and not ends:
        return []
    item = ActionItem
    unsnoozed = or_(col(item.snoozed_until).is_(None), col(item.snoozed_until) <= day)
    conditions = []
    if owed:
        conditions.append(and_(col(item.due).in_(sorted(owed)), unsnoozed))
    if ends:
        waking = col(item.snoozed_until).in_(sorted(ends))
        conditions.append(and_(waking, col(item.due) <= day + timedelta(days=cadence.first_days_before)))
    columns = (
        item.id,
        item.ref,
        item.owner_id,
        item.due,
        item.status,
        item.snoozed_until,
        item.department_id,
    )
    query = (
        sa_select(*(col(c) for c in columns))
        .where(col(item.team_id) == team_id)
        .where(col(item.status).in_(sorted(OPEN_STATUSES)))
        .where(or_(*conditions))
    )
    if group.plan_ids is not None:
        query = query.join(Strategy, col(Strategy.id) == col(item.strategy_id)).where(
            col(Strategy.plan_id).in_(group.plan_ids)
        )
    connection = await session.connection()
    rows: Sequence[Any] = (await connection.execute(query)).all()
    return [
        ItemView(
            item_id=item_id or 0,
            ref=ref,
            owner_id=owner,
            due=due,
            status=status,
            snoozed_until=snoozed,
            department_id=department,
        )
        for item_id, ref, owner, due, status, snoozed, department in rows
    ]


async def _owners(
    session: AsyncSession, *, team_id: str, owners: Iterable[str], config: PlanConfig
) -> dict[str, Recipient]:
    """The known owners among `owners`, as recipients (an unknown owner is simply absent)."""
    columns = (Person.user_id, Person.tz, Person.paused_until, Person.active)
    connection = await session.connection()
    zones: dict[str | None, ZoneInfo] = {}
    found: dict[str, Recipient] = {}
    # Plain columns and one array parameter: at a million items with 1% owed, loading 9,000
    # Person objects through IN lists of 500 was half the tick.
    for condition in one_of(col(Person.user_id), sorted(set(owners)), dialect=connection.dialect.name):
        query = sa_select(*(col(c) for c in columns)).where(col(Person.team_id) == team_id, condition)
        rows: Sequence[Any] = (await connection.execute(query)).all()
        for user_id, tz, paused, active in rows:
            if tz not in zones:
                zones[tz] = _zone(tz, config.zone)
            found[user_id] = Recipient(user_id=user_id, zone=zones[tz], paused_until=paused, active=active)
    return found


async def _coordinators(
    session: AsyncSession, *, team_id: str, departments: Iterable[int], config: PlanConfig
) -> tuple[dict[str, Recipient], dict[int, list[str]]]:
    """The active coordinators of `departments`, as recipients and by department."""
    people: dict[str, Recipient] = {}
    coordinators: dict[int, list[str]] = {}
    found = await active_coordinators(session, team_id=team_id, department_ids=departments)
    for department, persons in found.items():
        coordinators[department] = [person.user_id for person in persons]
        for person in persons:
            people[person.user_id] = _recipient(person, config)
    return people, coordinators


def _recipient(person: Person, config: PlanConfig) -> Recipient:
    return Recipient(
        user_id=person.user_id,
        zone=_zone(person.tz, config.zone),
        paused_until=person.paused_until,
        active=person.active,
    )


def _merge(digests: Iterable[PlannedDigest]) -> list[PlannedDigest]:
    merged: dict[str, PlannedDigest] = {}
    for digest in digests:
        known = merged.get(digest.key)
        if known is None:
            merged[digest.key] = digest
        else:
            items = dict(known.items) | dict(digest.items)
            merged[digest.key] = PlannedDigest(
                key=known.key,
                team_id=known.team_id,
                kind=known.kind,
                recipient=known.recipient,
                local_date=known.local_date,
                items=tuple(sorted(items.items())),
            )
    return [merged[key] for key in sorted(merged)]


def _orphan_rows(
    *,
    team_id: str,
    now: datetime,
    items: Sequence[tuple[ItemView, Cadence]],
    people: Mapping[str, Recipient],
    coordinators: Mapping[int, Sequence[str]],
    active: Mapping[str, bool],
    config: PlanConfig,
) -> list[NotificationCreate]:
    # An owner the bot knows has left (Person.active False) hears nothing; their coordinators are
    # told once per item, on a day the item is owed something, in the coordinator's own window.
    rows: list[NotificationCreate] = []
    for item, cadence in items:
        owner = item.owner_id
        if owner is None or active.get(owner, True):
            continue
        for coordinator in coordinators.get(item.department_id, ()):
            who = people[coordinator]
            day = config.slot(now, who.zone)
            if day is None or not who.hears_on(day) or coordinator == owner:
                continue
            owed = nudge_kind(item, day, config.calendar, cadence) is not None or escalation_due(
                item, day, config.calendar, cadence
            )
            if owed:
                rows.append(
                    orphan_row(
                        team_id=team_id,
                        coordinator=coordinator,
                        item_id=item.item_id,
                        ref=item.ref,
                        owner=owner,
                        reason="owner is no longer active",
                        now=now,
                        local_date=day,
                    )
                )
    return rows


async def _decision_riders(
    session: AsyncSession, *, team_id: str, now: datetime, config: PlanConfig
) -> list[NotificationCreate]:
    """Each pending change request, owed to each of its deciders whose day it is: once when it
    arrives, then again each week it waits (a key per decider and week)."""
    connection = await session.connection()
    request = ChangeRequest
    requests: Sequence[Any] = (
        await connection.execute(
            sa_select(
                col(request.id),
                col(request.department_id),
                col(request.requested_by),
                col(request.requested_at),
            ).where(col(request.team_id) == team_id, col(request.state) == RequestState.PENDING.value)
        )
    ).all()
    if not requests:
        return []
    found = await deciders(session, team_id=team_id, department_ids=[r[1] for r in requests])
    days: dict[str, tuple[date, ZoneInfo] | None] = {}

    def day_of(person: Person) -> tuple[date, ZoneInfo] | None:
        if person.user_id not in days:
            who = _recipient(person, config)
            day = config.slot(now, who.zone)
            days[person.user_id] = (day, who.zone) if day is not None and who.hears_on(day) else None
        return days[person.user_id]

    rows: list[NotificationCreate] = []
    for request_id, department_id, requested_by, requested_at in requests:
        for person in found.get(department_id, []):
            if person.user_id == requested_by or (slot := day_of(person)) is None:
                continue  # nobody decides their own request
            day, zone = slot
            week = max(0, (day - requested_at.astimezone(zone).date()).days) // 7
            rows.append(
                decision_row(
                    kind=REQUEST,
                    key=request_key(team_id, request_id, person.user_id, week),
                    team_id=team_id,
                    decider=person.user_id,
                    day=day,
                    payload={"request": request_id, "week": week},
                    now=now,
                )
            )
    return rows


def _surfaced(rows: Iterable[NotificationCreate]) -> dict[int, date]:
    """The day each request among newly owed rows is put before someone (for resurfaced_on)."""
    days: dict[int, date] = {}
    for row in rows:
        request_id = row.payload.get("request") if row.kind == REQUEST else None
        if isinstance(request_id, int) and row.local_date is not None:
            days[request_id] = max(row.local_date, days.get(request_id, row.local_date))
    return days


async def owed_rows(
    session: AsyncSession, *, team_id: str, now: datetime, config: PlanConfig
) -> tuple[list[NotificationCreate], PlanReport]:
    """The outbox rows owed at `now` for one workspace (read-only; nothing is inserted)."""
    report = PlanReport(team_id=team_id, now=now)
    report.local_dates = await _serving_dates(session, team_id=team_id, now=now, config=config)
    if not report.local_dates:
        return [], report
    rows = await _decision_riders(session, team_id=team_id, now=now, config=config)
    report.decisions = len(rows)
    rows += await _digest_rows(session, report=report, config=config)
    report.planned = len(rows)
    report.keys = tuple(row.key for row in rows)
    return rows, report


async def _digest_rows(
    session: AsyncSession, *, report: PlanReport, config: PlanConfig
) -> list[NotificationCreate]:
    """The digests the policy owes at the report's instant, and the orphan reports found with them."""
    team_id, now = report.team_id, report.now
    groups = await _cadence_groups(session, team_id=team_id, config=config)
    found: dict[int, tuple[ItemView, Cadence]] = {}
    for group in groups:
        for day in report.local_dates:
            for item in await _candidates(session, team_id=team_id, day=day, group=group, config=config):
                found[item.item_id] = (item, group.cadence)
    report.candidates = len(found)
    if not found:
        return []
    people = await _owners(
        session,
        team_id=team_id,
        owners=[item.owner_id for item, _ in found.values() if item.owner_id],
        config=config,
    )
    active = {user_id: who.active for user_id, who in people.items()}
    found_coordinators, coordinators = await _coordinators(
        session,
        team_id=team_id,
        departments=[item.department_id for item, _ in found.values()],
        config=config,
    )
    people |= found_coordinators
    planned: list[PlannedDigest] = []
    for group in groups:
        items = [item for item, cadence in found.values() if cadence == group.cadence]
        planned += plan_digests(
            team_id=team_id,
            now=now,
            items=items,
            people=people,
            coordinators=coordinators,
            default_zone=config.zone,
            calendar=config.calendar,
            cadence=group.cadence,
            reminder_hour=config.reminder_hour,
            quiet_hour=config.quiet_hour,
            reminder_minute=config.reminder_minute,
        )
    refs = {item.item_id: item.ref for item, _ in found.values()}
    rows = [
        planned_row(
            digest,
            zone=(people.get(digest.recipient) or Recipient(digest.recipient, config.zone)).zone,
            refs=refs,
            now=now,
        )
        for digest in _merge(planned)
    ]
    orphans = _orphan_rows(
        team_id=team_id,
        now=now,
        items=list(found.values()),
        people=people,
        coordinators=coordinators,
        active=active,
        config=config,
    )
    report.orphans = len(orphans)
    return rows + orphans


async def plan_in(session: AsyncSession, *, team_id: str, now: datetime, config: PlanConfig) -> PlanReport:
    """Plan and enqueue in the caller's transaction (dry runs roll it back)."""
    rows, report = await owed_rows(session, team_id=team_id, now=now, config=config)
    if rows:
        stored = await outbox.existing_keys(session, keys=[row.key for row in rows])
        report.existing = len(stored)
        report.inserted = await outbox.enqueue(session, rows=rows)
        await mark_surfaced(session, days=_surfaced(row for row in rows if row.key not in stored))
    return report


async def plan_tick(sessions: Sessions, *, team_id: str, now: datetime, config: PlanConfig) -> PlanReport:
    """Plan what is owed at `now` for one workspace and store each owed message once.

    Reading and writing are separate transactions, so the write lock (SQLite) is held only for
    the insert; a key another ticker stores in between is counted in `conflicts`.
    """
    async with sessions() as session:
        rows, report = await owed_rows(session, team_id=team_id, now=now, config=config)
        if rows:
            stored = await outbox.existing_keys(session, keys=[row.key for row in rows])
            report.existing = len(stored)
            rows = [row for row in rows if row.key not in stored]
    if rows:
        async with transaction(sessions) as session:
            report.inserted = await outbox.enqueue(session, rows=rows)
            await mark_surfaced(session, days=_surfaced(rows))
        report.conflicts = len(rows) - report.inserted
    return report


async def fold_in(
    session: AsyncSession, *, team_id: str, now: datetime, config: PlanConfig, kinds: Collection[str]
) -> int:
    """Carry every rider of `kinds` waiting for a reader whose day it is into that day's digest
    (stored now if nothing else was owed to them today); how many were carried.

    A reader whose digest for today is already out waits for their next business day, as does one
    who is paused; riders for someone who has left are settled unsent.
    """
    waiting = await outbox.pending_riders(session, team_id=team_id, kinds=kinds)
    if not waiting:
        return 0
    by_reader: dict[str, list[Notification]] = {}
    for row in waiting:
        by_reader.setdefault(row.recipient, []).append(row)
    people = await _owners(session, team_id=team_id, owners=list(by_reader), config=config)
    carried = 0
    gone: list[str] = []
    for reader, rows in sorted(by_reader.items()):
        who = people.get(reader) or Recipient(reader, config.zone)
        if not who.active:
            gone += [row.key for row in rows]
            continue
        day = config.slot(now, who.zone)
        if day is None or not who.hears_on(day):
            continue
        carrier = carrier_row(team_id=team_id, recipient=reader, day=day, zone=who.zone, now=now)
        carried += len(await outbox.carry_riders(session, carrier=carrier, riders=rows))
    if gone:
        await outbox.skip_pending(session, keys=gone, reason="recipient is inactive")
    return carried


async def fold_riders(
    sessions: Sessions, *, team_id: str, now: datetime, config: PlanConfig, kinds: Collection[str]
) -> int:
    """fold_in in its own transaction, taken only when some rider is waiting and some window is open."""
    if not kinds:
        return 0
    async with sessions() as session:
        if not await _serving_dates(session, team_id=team_id, now=now, config=config):
            return 0
        if not await outbox.pending_riders(session, team_id=team_id, kinds=kinds, limit=1):
            return 0
    async with transaction(sessions) as session:
        return await fold_in(session, team_id=team_id, now=now, config=config, kinds=kinds)


async def team_ids(sessions: Sessions) -> list[str]:
    """Every workspace with an installation or a department: the teams a tick serves.

    A workspace whose installation was removed (or whose org's was) keeps its data but is no
    longer served; an org-wide installation's own row names the org, not a workspace.
    """
    async with sessions() as session:
        installed = await session.exec(
            select(Installation.team_id).where(col(Installation.is_enterprise_install).is_(False))
        )
        departments = await session.exec(select(Department.team_id).distinct())
        gone = await uninstalled_teams(session)
        return sorted({*installed, *departments} - gone)
