"""Storage functions write the row and its audit trail together, and refuse what the actor may not do."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func
from sqlalchemy.exc import StatementError
from sqlmodel import select

from domain.errors import InvalidChange, NotFound, PermissionDenied
from domain.status import ItemStatus
from storage.engine import Sessions, is_sqlite, reading, transaction
from storage.items import (
    add_note,
    complete_item,
    create_item,
    department_by_key,
    drop_item,
    get_item,
    reassign_item,
    redate_item,
    set_progress,
    set_status,
    snooze_item,
    update_item,
)
from storage.models import ActionItem, ActionItemCreate, ActionItemUpdate, AuditEvent
from storage.permissions import Actor
from storage.types import NaiveDatetimeError
from tests.factories import COORDINATOR, NOW, OTHER, OWNER, TEAM, PlanFixture, make_item, make_plan

LATER = NOW + timedelta(hours=3)


@pytest.fixture
async def plan(sessions: Sessions) -> PlanFixture:
    """The OIT plan with one coordinator and two members, committed."""
    async with transaction(sessions) as session:
        return await make_plan(session)


EVIDENCE = "https://www.phila.gov/oit/equity-matrix"


async def audit_rows(sessions: Sessions, ref: str) -> list[AuditEvent]:
    async with sessions() as session:
        item = await get_item(session, team_id=TEAM, ref=ref)
        rows = await session.exec(
            select(AuditEvent).where(AuditEvent.item_id == item.id).order_by(AuditEvent.id)
        )
        return list(rows)


async def test_create_gives_sequential_refs_per_department_and_audits(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        first = await make_item(session, plan)
        second = await make_item(session, plan, title="Hire an equity data analyst")
        other = await make_plan(session, key="PPR", coordinator="U0PPRC", people=())
        third = await make_item(session, other)
    assert (first.ref, second.ref, third.ref) == ("OIT-1", "OIT-2", "PPR-1")
    events = await audit_rows(sessions, "OIT-2")
    assert [(e.action, e.actor, e.new) for e in events] == [
        ("create", "system", "Hire an equity data analyst")
    ]


async def test_fifty_concurrent_creations_get_fifty_distinct_refs(sessions: Sessions, plan: PlanFixture):
    strategy_id = plan.strategies["digital-equity"].id
    assert strategy_id is not None

    async def create(n: int) -> str:
        async with transaction(sessions) as session:
            item = await create_item(
                session,
                data=ActionItemCreate(title=f"Deploy public Wi-Fi site {n}", strategy_id=strategy_id),
                actor=Actor(TEAM, COORDINATOR),
                now=NOW,
            )
            return item.ref

    refs = await asyncio.gather(*(create(n) for n in range(50)))
    assert sorted(refs, key=lambda r: int(r.split("-")[1])) == [f"OIT-{n}" for n in range(1, 51)]
    async with sessions() as session:
        count = (await session.exec(select(func.count()).select_from(ActionItem))).one()
    assert count == 50


async def test_status_change_writes_row_and_audit_with_note(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    async with transaction(sessions) as session:
        await set_status(
            session,
            ref="oit-1",
            status=ItemStatus.AT_RISK,
            actor=Actor(TEAM, OWNER),
            now=LATER,
            note="vendor delay",
        )
    async with sessions() as session:
        item = await get_item(session, team_id=TEAM, ref="OIT-1")
    assert (item.status, item.last_note, item.updated_at) == ("at_risk", "vendor delay", LATER)
    last = (await audit_rows(sessions, "OIT-1"))[-1]
    assert (last.action, last.field, last.old, last.new, last.note, last.actor, last.at) == (
        "status",
        "status",
        "not_started",
        "at_risk",
        "vendor delay",
        OWNER,
        LATER,
    )


async def test_completing_twice_completes_once(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    for _ in range(2):
        async with transaction(sessions) as session:
            await complete_item(session, ref="OIT-1", actor=Actor(TEAM, OWNER), now=LATER, evidence=EVIDENCE)
    async with sessions() as session:
        item = await get_item(session, team_id=TEAM, ref="OIT-1")
    assert (item.status, item.progress, item.completed_at, item.evidence_url) == (
        "done",
        100,
        LATER,
        EVIDENCE,
    )
    fields = [e.field for e in await audit_rows(sessions, "OIT-1")]
    assert fields == [None, "evidence_url", "status", "progress"], "the evidence is audited too, once"


async def test_drop_keeps_the_item_and_its_history(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    async with transaction(sessions) as session:
        await drop_item(
            session, ref="OIT-1", actor=Actor(TEAM, COORDINATOR), now=LATER, note="merged into OIT-2"
        )
    async with sessions() as session:
        item = await get_item(session, team_id=TEAM, ref="OIT-1")
    assert item.status == "dropped"
    assert [e.action for e in await audit_rows(sessions, "OIT-1")] == ["create", "status"]


async def test_reassign_redate_progress_note_and_update_each_audit_old_and_new(
    sessions: Sessions, plan: PlanFixture
):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    coordinator = Actor(TEAM, COORDINATOR)
    async with transaction(sessions) as session:
        await reassign_item(session, ref="OIT-1", owner_id=OTHER, actor=coordinator, now=LATER)
        await redate_item(
            session, ref="OIT-1", due=date(2027, 1, 29), actor=coordinator, now=LATER, note="DEI asked"
        )
        await set_progress(session, ref="OIT-1", percent=40, actor=coordinator, now=LATER)
        await add_note(session, ref="OIT-1", text="Draft matrix shared", actor=coordinator, now=LATER)
        await update_item(
            session,
            ref="OIT-1",
            changes=ActionItemUpdate(
                title="Develop equity scoring matrix", strategy_id=plan.strategies["digital-equity"].id
            ),
            actor=coordinator,
            now=LATER,
        )
    changes = [(e.action, e.field, e.old, e.new) for e in await audit_rows(sessions, "OIT-1")][1:]
    strategy_ids = (str(plan.strategies["equity-projects"].id), str(plan.strategies["digital-equity"].id))
    assert changes == [
        ("reassign", "owner_id", OWNER, OTHER),
        ("redate", "due", "2026-12-15", "2027-01-29"),
        ("update", "progress", "0", "40"),
        ("note", None, None, None),
        ("update", "strategy_id", *strategy_ids),
        ("update", "title", "Develop an equity scoring matrix with DEI", "Develop equity scoring matrix"),
    ]


async def test_redating_ends_a_snooze(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    owner = Actor(TEAM, OWNER)
    async with transaction(sessions) as session:
        await snooze_item(session, ref="OIT-1", until=date(2026, 12, 1), actor=owner, now=LATER)
    async with transaction(sessions) as session:
        # Earlier than committed, so the owner may (later would be a request).
        item = await redate_item(session, ref="OIT-1", due=date(2026, 12, 10), actor=owner, now=LATER)
    assert item.snoozed_until is None


async def test_someone_elses_item_is_refused_and_unchanged(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    with pytest.raises(PermissionDenied) as refused:
        async with transaction(sessions) as session:
            await set_status(
                session, ref="OIT-1", status=ItemStatus.DONE, actor=Actor(TEAM, OTHER), now=LATER
            )
    assert f"<@{OWNER}> (the owner)" in str(refused.value)
    assert f"<@{COORDINATOR}>" in str(refused.value)
    async with sessions() as session:
        assert (await get_item(session, team_id=TEAM, ref="OIT-1")).status == "not_started"
    assert len(await audit_rows(sessions, "OIT-1")) == 1


async def test_an_admin_may_change_anything(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    async with transaction(sessions) as session:
        item = await set_status(
            session,
            ref="OIT-1",
            status=ItemStatus.BLOCKED,
            actor=Actor(TEAM, "U0ADMIN", is_admin=True),
            now=LATER,
        )
    assert item.status == "blocked"


async def test_a_change_starts_from_the_row_as_locked_not_from_an_earlier_read_in_its_transaction(
    database_url: str, sessions: Sessions, plan: PlanFixture
):
    """Another transaction commits between this one's plain read and its locked change."""
    if is_sqlite(database_url):
        pytest.skip("SQLite's writer holds the whole database, so nothing commits in between")
    async with transaction(sessions) as session:
        await make_item(session, plan)
    owner = Actor(TEAM, OWNER)

    async with transaction(sessions) as session:
        # Held, as a form holds what it read: the session's identity map keeps it while it is.
        seen = await get_item(session, team_id=TEAM, ref="OIT-1")
        assert seen.progress == 0
        async with transaction(sessions) as other:
            await set_progress(other, ref="OIT-1", percent=30, actor=owner, now=NOW)
        await set_progress(session, ref="OIT-1", percent=60, actor=owner, now=LATER)
        await set_progress(session, ref="OIT-1", percent=70, actor=owner, now=LATER)

    progress = [(e.old, e.new) for e in await audit_rows(sessions, "OIT-1") if e.field == "progress"]
    assert progress == [("0", "30"), ("30", "60"), ("60", "70")], "each change's old value is the row's"


async def test_items_are_scoped_to_their_workspace(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    with pytest.raises(NotFound):
        async with sessions() as session:
            await get_item(session, team_id="T0ELSEWHERE", ref="OIT-1")


async def test_a_department_is_found_by_its_key_in_any_case_within_its_workspace_only(
    sessions: Sessions, plan: PlanFixture
):
    async with reading(sessions) as session:
        assert (await department_by_key(session, team_id=TEAM, key=" oit ")).id == plan.department.id
        with pytest.raises(NotFound, match="OIT") as elsewhere:
            await department_by_key(session, team_id="T0ELSEWHERE", key="oit")
        with pytest.raises(NotFound, match="PARKS"):
            await department_by_key(session, team_id=TEAM, key="parks")
    assert "department" in str(elsewhere.value)


@pytest.mark.parametrize("percent", [-1, 101])
async def test_progress_out_of_range_is_refused(sessions: Sessions, plan: PlanFixture, percent: int):
    async with transaction(sessions) as session:
        await make_item(session, plan)
    with pytest.raises(InvalidChange):
        async with transaction(sessions) as session:
            await set_progress(session, ref="OIT-1", percent=percent, actor=Actor(TEAM, OWNER), now=LATER)


async def test_snoozing_a_done_item_is_refused(sessions: Sessions, plan: PlanFixture):
    async with transaction(sessions) as session:
        await make_item(session, plan, status=ItemStatus.DONE)
    with pytest.raises(InvalidChange):
        async with transaction(sessions) as session:
            await snooze_item(
                session, ref="OIT-1", until=date(2027, 1, 1), actor=Actor(TEAM, OWNER), now=LATER
            )


@pytest.mark.parametrize(
    "offset",
    [timedelta(hours=-8), timedelta(hours=5, minutes=30), timedelta(hours=13, minutes=45), timedelta(0)],
)
async def test_instants_read_back_identical_in_utc(sessions: Sessions, plan: PlanFixture, offset: timedelta):
    moment = datetime(2026, 3, 8, 1, 30, 15, 123456, tzinfo=timezone(offset))
    async with transaction(sessions) as session:
        await make_item(session, plan, now=moment)
    async with sessions() as session:
        item = await get_item(session, team_id=TEAM, ref="OIT-1")
    assert item.created_at == moment
    assert item.created_at.tzinfo == UTC


async def test_naive_datetimes_are_refused_at_the_boundary(sessions: Sessions, plan: PlanFixture):
    with pytest.raises(StatementError) as refused:
        async with transaction(sessions) as session:
            await make_item(session, plan, now=datetime(2026, 1, 1, 9, 0))  # noqa: DTZ001
    assert isinstance(refused.value.orig, NaiveDatetimeError)


async def test_reads_do_not_wait_for_a_writer_and_writers_queue_fairly(sessions: Sessions, plan: PlanFixture):
    """A read during an open write transaction returns the committed state at once."""
    async with transaction(sessions) as session:
        await make_item(session, plan)
    async with transaction(sessions) as writer:
        await set_progress(writer, ref="OIT-1", percent=70, actor=Actor(TEAM, OWNER), now=LATER)
        await writer.flush()  # the write is now in the database, uncommitted, holding the write lock
        async with reading(sessions) as reader:
            seen = await get_item(reader, team_id=TEAM, ref="OIT-1")
            assert seen.progress == 0, "the reader sees the last committed state, not the open write"
    results = await asyncio.gather(
        *(_bump(sessions, percent) for percent in range(10, 90, 10)), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, Exception)]


async def _bump(sessions: Sessions, percent: int) -> None:
    async with transaction(sessions) as session:
        await set_progress(session, ref="OIT-1", percent=percent, actor=Actor(TEAM, OWNER), now=LATER)
