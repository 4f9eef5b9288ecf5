"""Planning a tick: one digest per owner per local day with the right items, stored once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.cadence import Cadence
from domain.status import ItemStatus
from reminders.planner import plan_in, plan_tick, team_ids
from storage.engine import Sessions, transaction
from storage.models import Plan
from tests.factories import COORDINATOR, OTHER, OWNER, TEAM, PlanFixture, make_person, make_plan
from tests.reminders.support import (
    DUE,
    MONDAY_9AM,
    TUESDAY_9AM,
    add_items,
    item_refs,
    outbox_rows,
    plan_config,
    plan_fixture,  # noqa: F401  (fixture)
    run_plan,
)


@pytest.fixture
async def monday(sessions: Sessions, plan: PlanFixture) -> PlanFixture:
    """Items around Monday 2026-11-02: four owed to U0OWNER, one escalated, three owed nothing."""
    await add_items(
        sessions,
        plan,
        today={"due": DUE("2026-11-02")},  # OIT-1 due today
        tomorrow={"due": DUE("2026-11-03")},  # OIT-2 due next business day
        week={"due": DUE("2026-11-09")},  # OIT-3 first nudge, seven days ahead
        late={"due": DUE("2026-10-28")},  # OIT-4 three business days overdue
        later={"due": DUE("2026-11-20")},  # OIT-5 nothing yet
        done={"due": DUE("2026-11-02"), "status": ItemStatus.DONE},  # OIT-6 done
        snoozed={"due": DUE("2026-11-02"), "snoozed_until": DUE("2026-11-05")},  # OIT-7
        stale={"due": DUE("2026-10-26"), "owner": OTHER},  # OIT-8 five business days late
    )
    return plan


async def test_monday_at_nine_plans_one_digest_per_person_escalations_in_the_coordinators(
    sessions: Sessions, monday
):
    report = await run_plan(sessions, MONDAY_9AM)
    rows = {row.key: row for row in await outbox_rows(sessions)}
    assert set(rows) == {
        f"{TEAM}:digest:{OWNER}:2026-11-02",
        f"{TEAM}:digest:{COORDINATOR}:2026-11-02",
    }
    digest = rows[f"{TEAM}:digest:{OWNER}:2026-11-02"]
    assert item_refs(digest) == {
        "OIT-1": "due_today",
        "OIT-2": "due_tomorrow",
        "OIT-3": "due_soon",
        "OIT-4": "overdue",
    }
    assert (digest.kind, digest.recipient, digest.local_date, digest.state) == (
        "digest",
        OWNER,
        date(2026, 11, 2),
        "pending",
    )
    assert digest.send_after == MONDAY_9AM and digest.payload["zone"] == "America/New_York"
    coordinators = rows[f"{TEAM}:digest:{COORDINATOR}:2026-11-02"]
    assert item_refs(coordinators) == {"OIT-8": "escalation"}
    assert (report.local_dates, report.inserted, report.conflicts) == ((date(2026, 11, 2),), 2, 0)


async def test_planning_again_at_the_same_instant_inserts_nothing(sessions: Sessions, monday):
    await run_plan(sessions, MONDAY_9AM)
    again = await run_plan(sessions, MONDAY_9AM + timedelta(minutes=1))
    assert (again.planned, again.existing, again.inserted) == (2, 2, 0)
    assert len(await outbox_rows(sessions)) == 2


async def test_the_next_business_day_plans_what_that_day_owes(sessions: Sessions, monday):
    await run_plan(sessions, MONDAY_9AM)
    tuesday = await run_plan(sessions, TUESDAY_9AM)
    new = [row for row in await outbox_rows(sessions) if row.local_date == date(2026, 11, 3)]
    assert [(row.kind, row.recipient, item_refs(row)) for row in new] == [
        ("digest", OTHER, {"OIT-8": "overdue"}),
        ("digest", OWNER, {"OIT-2": "due_today"}),
    ]
    assert tuesday.inserted == 2


async def test_before_the_reminder_hour_and_on_weekends_nothing_is_planned(sessions: Sessions, monday):
    early = await run_plan(sessions, MONDAY_9AM - timedelta(minutes=1))
    saturday = await run_plan(sessions, datetime(2026, 11, 7, 15, 0, tzinfo=UTC))
    evening = await run_plan(sessions, datetime(2026, 11, 2, 23, 0, tzinfo=UTC))  # 18:00 New York
    assert early.local_dates == saturday.local_dates == evening.local_dates == ()
    assert await outbox_rows(sessions) == []


async def test_a_late_tick_the_same_day_catches_up_once_and_never_replays_missed_days(
    sessions: Sessions, monday
):
    """Down Monday morning and all of Tuesday: Monday 15:00 plans Monday; Wednesday plans Wednesday."""
    await add_items(sessions, monday, wednesday={"due": DUE("2026-11-04")})  # OIT-9
    await run_plan(sessions, datetime(2026, 11, 2, 20, 0, tzinfo=UTC))
    await run_plan(sessions, datetime(2026, 11, 4, 15, 30, tzinfo=UTC))
    owner_rows = [row for row in await outbox_rows(sessions) if row.recipient == OWNER]
    assert [row.local_date for row in owner_rows] == [date(2026, 11, 2), date(2026, 11, 4)]
    assert item_refs(owner_rows[1]) == {"OIT-9": "due_today"}, "Tuesday's nudge is not replayed"


@pytest.mark.parametrize(
    ("zone", "instant", "local_date"),
    [
        pytest.param("Asia/Kolkata", "2026-11-02T03:30", "2026-11-02", id="kolkata-09:00-is-03:30-utc"),
        pytest.param(
            "Pacific/Kiritimati", "2026-11-01T19:00", "2026-11-02", id="kiritimati-utc+14-a-day-ahead"
        ),
        pytest.param("Pacific/Honolulu", "2026-11-02T19:00", "2026-11-02", id="honolulu-utc-10"),
    ],
)
async def test_owners_in_other_zones_get_their_digest_at_nine_their_time(
    sessions: Sessions,
    plan: PlanFixture,
    zone: str,
    instant: str,
    local_date: str,
):
    async with transaction(sessions) as session:
        await make_person(session, user_id="U0FAR", tz=zone, department_id=plan.department.id)
    await add_items(sessions, plan, far={"due": DUE(local_date), "owner": "U0FAR"})
    at = datetime.fromisoformat(instant).replace(tzinfo=UTC)
    await run_plan(sessions, at - timedelta(minutes=1))
    assert await outbox_rows(sessions) == [], "a minute before nine their time nothing is owed"
    await run_plan(sessions, at)
    rows = await outbox_rows(sessions)
    assert [(row.recipient, row.local_date, row.payload["zone"]) for row in rows] == [
        ("U0FAR", DUE(local_date), zone)
    ]


async def test_a_plan_cadence_overrides_the_default_for_its_own_items(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        other = await make_plan(session, key="DEI", coordinator=None, people=())
        stored = await session.get(Plan, other.plan.id)
        assert stored is not None
        stored.cadence = {"first_days_before": 14}
    await add_items(sessions, plan, oit={"due": DUE("2026-11-16")})
    await add_items(sessions, other, dei={"due": DUE("2026-11-16")})
    await run_plan(sessions, MONDAY_9AM)
    (row,) = await outbox_rows(sessions)
    assert item_refs(row) == {"DEI-1": "due_soon"}, "only the DEI plan nudges two weeks ahead"


async def test_an_owner_who_left_is_reported_to_the_coordinator_once(sessions: Sessions, plan: PlanFixture):
    await add_items(sessions, plan, gone={"due": DUE("2026-11-02"), "owner": OTHER})
    async with transaction(sessions) as session:
        from storage.people import find_person

        left = await find_person(session, team_id=TEAM, user_id=OTHER)
        assert left is not None
        left.active = False
    first = await run_plan(sessions, MONDAY_9AM)
    await run_plan(sessions, datetime(2026, 11, 5, 14, 0, tzinfo=UTC))  # overdue again on Thursday
    rows = await outbox_rows(sessions)
    assert [(row.kind, row.recipient, row.key) for row in rows] == [
        (
            "orphaned",
            COORDINATOR,
            f"{TEAM}:orphaned:{COORDINATOR}:{rows[0].payload['items'][0]['id']}:{OTHER}",
        )
    ]
    assert first.orphans == 1 and rows[0].payload["owner"] == OTHER


async def test_a_paused_owner_gets_no_digest_but_escalation_continues(sessions: Sessions, monday):
    async with transaction(sessions) as session:
        from storage.people import find_person

        for user in (OWNER, OTHER):
            found = await find_person(session, team_id=TEAM, user_id=user)
            assert found is not None
            found.paused_until = date(2026, 11, 30)
    await run_plan(sessions, MONDAY_9AM)
    assert [(row.kind, row.recipient) for row in await outbox_rows(sessions)] == [("digest", COORDINATOR)]


async def test_only_owed_items_are_fetched_never_the_whole_plan(sessions: Sessions, plan: PlanFixture):
    far = {f"f{i}": {"due": DUE("2027-03-01") + timedelta(days=i % 20)} for i in range(150)}
    await add_items(sessions, plan, today={"due": DUE("2026-11-02")}, **far)
    report = await run_plan(sessions, MONDAY_9AM)
    assert (report.candidates, report.inserted) == (1, 1)


async def test_each_of_hundreds_of_owners_is_planned_by_their_own_zone_and_pause(
    sessions: Sessions, plan: PlanFixture
):
    """More owners than one lookup batch: every one is read with their own zone and pause."""
    owners = {f"U0MANY{i:03d}": i % 3 for i in range(600)}
    async with transaction(sessions) as session:
        for user_id, group in owners.items():
            person = await make_person(
                session,
                user_id=user_id,
                tz="America/Los_Angeles" if group == 1 else "America/New_York",
                department_id=plan.department.id,
            )
            if group == 0:
                person.paused_until = DUE("2026-11-10")
    await add_items(sessions, plan, **{u: {"due": DUE("2026-11-02"), "owner": u} for u in owners})

    report = await run_plan(sessions, MONDAY_9AM)

    # Paused owners wait; Pacific owners' nine o'clock is three hours away; the rest are owed now.
    expected = sorted(u for u, group in owners.items() if group == 2)
    assert sorted(row.recipient for row in await outbox_rows(sessions)) == expected
    assert (report.candidates, report.inserted) == (600, 200)


async def test_outside_every_window_a_tick_never_touches_the_items(
    sessions: Sessions, engine: AsyncEngine, monday
):
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        report = await run_plan(sessions, datetime(2026, 11, 2, 4, 0, tzinfo=UTC))  # Sunday 23:00
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert report.local_dates == () and report.planned == 0
    queries = [s for s in statements if not s.startswith("BEGIN")]
    assert len(queries) == 1 and "person" in queries[0], "one query for the zones in use, nothing else"


async def test_a_default_cadence_from_settings_applies_to_plans_without_their_own(sessions: Sessions, monday):
    await run_plan(sessions, MONDAY_9AM, cadence=Cadence(first_days_before=0, business_days_before=0))
    digest = next(row for row in await outbox_rows(sessions) if row.recipient == OWNER)
    assert item_refs(digest) == {"OIT-1": "due_today", "OIT-4": "overdue"}


async def test_plan_in_enqueues_in_the_callers_transaction_which_can_roll_back(sessions: Sessions, monday):
    async with sessions() as session:
        report = await plan_in(session, team_id=TEAM, now=MONDAY_9AM, config=plan_config())
        await session.rollback()
    assert report.inserted == 2
    assert await outbox_rows(sessions) == []


async def test_ticks_serve_every_workspace_with_a_department(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_plan(session, team_id="T0SECOND", key="OIT", coordinator=None, people=())
    assert await team_ids(sessions) == [TEAM, "T0SECOND"]
    report = await plan_tick(sessions, team_id="T0SECOND", now=MONDAY_9AM, config=plan_config())
    assert report.planned == 0
