"""A past quarter with no frozen record is rebuilt from the audit trail as it stood on its last day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.fiscal import FiscalQuarter
from domain.rollup import ItemLine, Rollup
from domain.status import ItemStatus
from storage.engine import Sessions, transaction
from storage.items import complete_item, reassign_item, redate_item, set_progress, set_status
from storage.permissions import Actor
from storage.queries.rollup import build_rollup
from tests.factories import COORDINATOR, OTHER, TEAM, make_item, make_plan

Q1 = FiscalQuarter(2027, 1)  # July-September 2026
IN_Q1 = datetime(2026, 8, 3, 14, tzinfo=UTC)
AFTER = datetime(2026, 11, 5, 14, tzinfo=UTC)
BOSS = Actor(TEAM, COORDINATOR)


async def q1(sessions: Sessions, *, as_of: date) -> Rollup:
    """The FY2027-Q1 rollup asked for on `as_of`."""
    async with sessions() as session:
        return await build_rollup(session, team_id=TEAM, quarter=Q1, as_of=as_of)


def lines(rollup: Rollup) -> dict[str, ItemLine]:
    """Every item line the rollup lists (overdue, blocked, stale, orphaned, completed), by ref."""
    found: dict[str, ItemLine] = {}
    for d in rollup.departments:
        for s in d.strategies:
            for line in [*s.overdue, *s.blocked]:
                found[line.ref] = line
        for line in [*d.stale, *d.orphaned, *d.completed]:
            found[line.ref] = line
    return found


async def test_changes_after_the_quarter_ended_are_undone_in_its_report(sessions: Sessions):
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        await make_item(session, plan, title="Finished in November", due=date(2026, 9, 15), now=IN_Q1)
        await make_item(session, plan, title="Re-dated in November", due=date(2026, 9, 20), now=IN_Q1)
        await make_item(session, plan, title="Handed over in November", due=date(2026, 12, 1), now=IN_Q1)
        await make_item(session, plan, title="Blocked in November", due=date(2026, 12, 1), now=IN_Q1)
        await make_item(
            session,
            plan,
            title="Added in October",
            due=date(2026, 12, 1),
            now=datetime(2026, 10, 9, tzinfo=UTC),
        )
        await set_progress(session, ref="OIT-1", percent=40, actor=BOSS, now=IN_Q1)
    async with transaction(sessions) as session:
        await complete_item(session, ref="OIT-1", actor=BOSS, now=AFTER, evidence="https://example.org/done")
        await redate_item(session, ref="OIT-2", due=date(2027, 3, 1), actor=BOSS, now=AFTER, note="moved")
        await reassign_item(session, ref="OIT-3", owner_id=OTHER, actor=BOSS, now=AFTER, note="handover")
        await set_status(session, ref="OIT-4", status=ItemStatus.BLOCKED, actor=BOSS, now=AFTER)

    live = await q1(sessions, as_of=date(2026, 9, 30))
    past = await q1(sessions, as_of=date(2026, 11, 30))
    assert live.basis == "as of 2026-09-30, while the quarter is open"
    assert past.basis == "reconstructed from the history as of 2026-09-30"
    assert past.total == 4, "the item added in October was not in the plan yet"
    assert past.counts[ItemStatus.DONE.value] == 0 and past.counts[ItemStatus.BLOCKED.value] == 0
    found = lines(past)
    # Both were open and past their September dates on September 30th.
    assert (found["OIT-1"].days_overdue, found["OIT-1"].progress, found["OIT-1"].status) == (
        15,
        40,
        "not_started",
    )
    assert (found["OIT-2"].due, found["OIT-2"].days_overdue) == (date(2026, 9, 20), 10)
    assert "OIT-4" not in {line.ref for d in past.departments for s in d.strategies for line in s.blocked}
