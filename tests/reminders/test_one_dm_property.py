"""No person receives more than one bot DM per local day from the tick, in any combination of roles.

Hypothesis builds a workspace (people with any role in any of four zones, some paused; two
departments; items due around the simulated days; maybe a check-in cycle), then drives the real
tick against localslack every few hours for several days while people file requests, finish
items, hand items over and leave Slack between ticks. Every DM Slack received is counted against
its reader's local day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.app import create_app
from bot.runtime import install
from domain.commitments import ChangeKind
from domain.errors import ReapError
from domain.status import ItemStatus, Role
from localslack.server import LocalSlack
from storage.changes import propose_change
from storage.engine import Sessions, transaction
from storage.items import complete_item
from storage.models import CheckInCycle
from storage.permissions import Actor
from tests.factories import TEAM, make_item, make_person, make_plan
from tests.harness import Clock
from tests.reminders.support import settings_for

ZONES = ["America/New_York", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Honolulu"]
MONDAY = date(2027, 1, 4)
DAYS = 3
# Every few hours, so each zone's sending window (09:00-18:00 local) sees two or three ticks a day.
HOURS_UTC = (1, 4, 7, 10, 13, 15, 17, 20, 23)
EVIDENCE = "https://www.phila.gov/oit/evidence"


@dataclass(frozen=True)
class Someone:
    """A generated person: their role, department (0 or 1), zone and whether they are paused."""

    user_id: str
    role: Role
    department: int
    zone: str
    paused: bool


@dataclass(frozen=True)
class Thing:
    """A generated item: owner (index into people, or None), department, due offset, status."""

    owner: int | None
    department: int
    due: int
    status: ItemStatus


@dataclass(frozen=True)
class Event:
    """Something a person does just before tick number `at`."""

    at: int
    what: str  # request | done | assign | leave
    item: int
    person: int


@dataclass(frozen=True)
class World:
    """One generated workspace and what happens in it."""

    people: tuple[Someone, ...]
    things: tuple[Thing, ...]
    events: tuple[Event, ...]
    checkin: tuple[int, int] | None  # (opens, due) in days after MONDAY
    minute: int


OPEN = [ItemStatus.NOT_STARTED, ItemStatus.ON_TRACK, ItemStatus.AT_RISK, ItemStatus.BLOCKED]
TICKS = DAYS * len(HOURS_UTC)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """Any mix of roles, zones, pauses, items, check-ins and mid-day events."""
    count = draw(st.integers(2, 6))
    people = tuple(
        Someone(
            user_id=f"U0P{n}",
            role=draw(st.sampled_from([Role.MEMBER, Role.COORDINATOR, Role.DEI, Role.ADMIN])),
            department=draw(st.integers(0, 1)),
            zone=draw(st.sampled_from(ZONES)),
            paused=draw(st.booleans()) and draw(st.booleans()),
        )
        for n in range(count)
    )
    things = tuple(
        Thing(
            owner=draw(st.none() | st.integers(0, count - 1)),
            department=draw(st.integers(0, 1)),
            due=draw(st.integers(-20, 12)),
            status=draw(st.sampled_from(OPEN)),
        )
        for _ in range(draw(st.integers(1, 8)))
    )
    events = tuple(
        Event(
            at=draw(st.integers(0, TICKS - 1)),
            what=draw(st.sampled_from(["request", "done", "assign", "leave"])),
            item=draw(st.integers(0, len(things) - 1)),
            person=draw(st.integers(0, count - 1)),
        )
        for _ in range(draw(st.integers(0, 6)))
    )
    checkin = None
    if draw(st.booleans()):
        opens = draw(st.integers(0, DAYS - 1))
        checkin = (opens, opens + draw(st.integers(1, 2)))
    return World(people, things, events, checkin, minute=draw(st.integers(0, 59)))


def instants(minute: int) -> Iterator[datetime]:
    """The tick instants: HOURS_UTC on each simulated day, at `minute` past."""
    for day in range(DAYS):
        for hour in HOURS_UTC:
            yield datetime(2027, 1, 4 + day, hour, minute, tzinfo=UTC)


async def seed(sessions: Sessions, world: World) -> list[str]:
    """The world's departments, people and items; the items' refs."""
    async with transaction(sessions) as session:
        plans = [await make_plan(session, key=key, coordinator=None, people=()) for key in ("OIT", "PPR")]
        for plan in plans:
            plan.department.report_channel = None  # no rollup channel: this is about DMs
        for who in world.people:
            person = await make_person(
                session,
                user_id=who.user_id,
                tz=who.zone,
                role=who.role,
                department_id=plans[who.department].department.id,
            )
            if who.paused:
                person.paused_until = MONDAY + timedelta(days=1)
        refs = []
        for thing in world.things:
            owner = world.people[thing.owner].user_id if thing.owner is not None else None
            item = await make_item(
                session,
                plans[thing.department],
                owner=owner,
                due=MONDAY + timedelta(days=thing.due),
                status=thing.status,
            )
            refs.append(item.ref)
        if world.checkin is not None:
            opens, due = world.checkin
            session.add(
                CheckInCycle(
                    team_id=TEAM,
                    quarter="FY2027-Q3",
                    meeting_date=MONDAY + timedelta(days=due + 3),
                    opens_on=MONDAY + timedelta(days=opens),
                    due_on=MONDAY + timedelta(days=due),
                )
            )
    return refs


async def happen(
    sessions: Sessions, slack: LocalSlack, world: World, event: Event, ref: str, now: datetime
) -> None:
    """One person's action between ticks; a refusal (say, a second request) changes nothing."""
    thing = world.things[event.item]
    someone = world.people[event.person]
    if event.what == "leave":
        slack.add_user(someone.user_id, someone.user_id.lower(), tz=someone.zone, deleted=True)
        return
    owner = world.people[thing.owner].user_id if thing.owner is not None else someone.user_id
    try:
        async with transaction(sessions) as session:
            if event.what == "request":
                actor = Actor(TEAM, owner, is_admin=False)
                due = (MONDAY + timedelta(days=thing.due + 40)).isoformat()
                await propose_change(
                    session,
                    actor=actor,
                    ref=ref,
                    kind=ChangeKind.REDATE,
                    value=due,
                    reason="the vendor slipped",
                    today=now.date(),
                    now=now,
                )
            elif event.what == "done":
                await complete_item(session, ref=ref, actor=Actor(TEAM, owner), now=now, evidence=EVIDENCE)
            else:
                actor = Actor(TEAM, someone.user_id, is_admin=someone.role == Role.ADMIN)
                target = world.people[(event.person + 1) % len(world.people)].user_id
                await propose_change(
                    session,
                    actor=actor,
                    ref=ref,
                    kind=ChangeKind.REASSIGN,
                    value=target,
                    reason="more hands",
                    today=now.date(),
                    now=now,
                )
    except ReapError:
        pass


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[LocalSlack]:
    """One localslack for every example (each example counts only its own messages)."""
    with LocalSlack(team_id=TEAM) as fake:
        yield fake


async def reset(engine: AsyncEngine) -> None:
    """An empty database for the next example."""
    async with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            await conn.execute(table.delete())


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
@example(  # the case: a coordinator with items, an escalation and an approval request
    world=World(
        people=(
            Someone("U0P0", Role.COORDINATOR, 0, "America/New_York", paused=False),
            Someone("U0P1", Role.MEMBER, 0, "America/Los_Angeles", paused=False),
        ),
        things=(
            Thing(owner=0, department=0, due=0, status=ItemStatus.ON_TRACK),
            Thing(owner=1, department=0, due=-11, status=ItemStatus.AT_RISK),
            Thing(owner=1, department=0, due=10, status=ItemStatus.ON_TRACK),
            Thing(owner=1, department=0, due=20, status=ItemStatus.ON_TRACK),
        ),
        events=(Event(at=0, what="request", item=2, person=1), Event(at=0, what="done", item=3, person=1)),
        checkin=(0, 2),
        minute=30,
    )
)
async def test_no_person_receives_more_than_one_dm_per_local_day_from_the_tick(
    engine: AsyncEngine, sessions: Sessions, slack: LocalSlack, world: World
):
    await reset(engine)
    for who in world.people:
        slack.add_user(who.user_id, who.user_id.lower(), tz=who.zone)
    refs = await seed(sessions, world)
    clock = Clock(datetime(2027, 1, 4, tzinfo=UTC))
    app = create_app(settings_for("sqlite+aiosqlite://", slack), sessions=sessions, clock=clock)
    install(app)
    assert app.ticker is not None
    zones = {who.user_id: ZoneInfo(who.zone) for who in world.people}
    seen = {user: len(slack.dms_to(user)) for user in zones}
    per_day: Counter[tuple[str, date]] = Counter()
    try:
        for n, now in enumerate(instants(world.minute)):
            clock.now = now
            for event in world.events:
                if event.at == n:
                    await happen(sessions, slack, world, event, refs[event.item], now)
            report = await app.ticker(now)
            assert report.errors == [], report.errors
            for user, zone in zones.items():
                got = len(slack.dms_to(user))
                per_day[(user, now.astimezone(zone).date())] += got - seen[user]
                seen[user] = got
    finally:
        await app.close()
    doubled = {key: n for key, n in per_day.items() if n > 1}
    assert not doubled, f"more than one DM a local day: {doubled}"
