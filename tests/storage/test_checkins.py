"""Measure readings: who may record one, and what a reading may hold; refused readings write nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func
from sqlmodel import select

from domain.errors import NotFinite, PermissionDenied, TextTooLong
from domain.status import Role
from storage.engine import Sessions, transaction
from storage.items import add_note, get_item
from storage.measures import record_reading
from storage.models import AuditEvent, Measure, MeasureReading
from storage.people import set_role
from storage.permissions import Actor
from tests.factories import COORDINATOR, NOW, OTHER, OWNER, TEAM, make_item, make_person, make_plan

OTHER_COORDINATOR = "U0PPRCOORD"
RETIRED_COORDINATOR = "U0RETIRED"
ADMIN = "U0ADMIN"
QUARTER = "FY2027-Q2"


@pytest.fixture
async def measure_key(sessions: Sessions) -> str:
    """OIT's measure `devices` owned by OWNER; PPR next door with its own coordinator; OIT-1 for notes."""
    async with transaction(sessions) as session:
        oit = await make_plan(session)
        await make_plan(session, key="PPR", coordinator=OTHER_COORDINATOR, people=())
        retired = await make_person(
            session,
            user_id=RETIRED_COORDINATOR,
            role=Role.COORDINATOR,
            department_id=oit.department.id,
        )
        retired.active = False
        await make_item(session, oit)
        session.add(
            Measure(
                team_id=TEAM,
                strategy_id=oit.strategies["digital-equity"].id or 0,
                key="devices",
                name="Devices distributed",
                baseline=0,
                target=4000,
                target_date=date(2027, 6, 30),
                owner_id=OWNER,
            )
        )
    return "devices"


async def recorded(sessions: Sessions) -> list[tuple[float, str]]:
    async with sessions() as session:
        rows = await session.exec(select(MeasureReading))
        return [(r.value, r.recorded_by) for r in rows]


async def audit_count(sessions: Sessions) -> int:
    async with sessions() as session:
        return int((await session.exec(select(func.count()).select_from(AuditEvent))).one())


@pytest.mark.parametrize(
    "actor",
    [Actor(TEAM, OWNER), Actor(TEAM, COORDINATOR), Actor(TEAM, ADMIN, is_admin=True)],
    ids=["measure-owner", "coordinator-of-its-department", "admin"],
)
async def test_the_owner_its_coordinators_and_admins_may_record_a_reading(
    sessions: Sessions, measure_key: str, actor: Actor
):
    async with transaction(sessions) as session:
        await record_reading(
            session, actor=actor, key=measure_key, quarter=QUARTER, value=12.5, note=None, now=NOW
        )
    assert await recorded(sessions) == [(12.5, actor.user_id)]


@pytest.mark.parametrize(
    "user_id",
    [OTHER_COORDINATOR, RETIRED_COORDINATOR, OTHER],
    ids=["coordinator-of-another-department", "inactive-coordinator", "member-not-owner"],
)
async def test_anyone_else_is_refused_and_nothing_is_recorded(
    sessions: Sessions, measure_key: str, user_id: str
):
    before = await audit_count(sessions)
    with pytest.raises(PermissionDenied, match="devices can be recorded by"):
        async with transaction(sessions) as session:
            await record_reading(
                session,
                actor=Actor(TEAM, user_id),
                key=measure_key,
                quarter=QUARTER,
                value=1,
                note=None,
                now=NOW,
            )
    assert await recorded(sessions) == []
    assert await audit_count(sessions) == before


async def test_a_coordinator_moved_to_another_department_loses_the_measure(
    sessions: Sessions, measure_key: str
):
    async with transaction(sessions) as session:
        await set_role(
            session,
            actor=Actor(TEAM, ADMIN, is_admin=True),
            user_id=COORDINATOR,
            role=Role.COORDINATOR,
            department_key="PPR",
            now=NOW,
        )
    with pytest.raises(PermissionDenied):
        async with transaction(sessions) as session:
            await record_reading(
                session,
                actor=Actor(TEAM, COORDINATOR),
                key=measure_key,
                quarter=QUARTER,
                value=1,
                note=None,
                now=NOW,
            )
    assert await recorded(sessions) == []


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=str)
async def test_a_reading_that_is_not_a_finite_number_is_refused_whoever_sends_it(
    sessions: Sessions, measure_key: str, value: float
):
    with pytest.raises(NotFinite, match="value of devices must be a finite number"):
        async with transaction(sessions) as session:
            await record_reading(
                session,
                actor=Actor.system(TEAM),
                key=measure_key,
                quarter=QUARTER,
                value=value,
                note=None,
                now=NOW,
            )
    assert await recorded(sessions) == []


async def test_storage_refuses_a_note_over_the_limit_instead_of_cutting_it(
    sessions: Sessions, measure_key: str
):
    before = await audit_count(sessions)
    with pytest.raises(TextTooLong, match="the limit is 2,000"):
        async with transaction(sessions) as session:
            await add_note(session, ref="OIT-1", text="n" * 2001, actor=Actor(TEAM, OWNER), now=NOW)
    async with sessions() as session:
        assert (await get_item(session, team_id=TEAM, ref="OIT-1")).last_note is None
    assert await audit_count(sessions) == before
