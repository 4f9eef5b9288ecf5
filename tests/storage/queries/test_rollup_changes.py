"""What changed in the quarter, told properly: titles, the reasons given (the approved ones for
re-dated and dropped items), and at-risk or off-track items whether or not they are overdue."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.commitments import ChangeKind
from domain.fiscal import FiscalQuarter
from domain.status import ItemStatus
from reports.rollup import render_markdown
from storage.changes import decide_request, propose_change
from storage.engine import Sessions, transaction
from storage.items import set_status
from storage.permissions import Actor
from storage.queries.rollup import build_rollup
from tests.factories import COORDINATOR, OWNER, TEAM, make_item, make_plan

Q2 = FiscalQuarter(2027, 2)
EARLY = datetime(2026, 10, 5, 14, tzinfo=UTC)
LATER = datetime(2026, 11, 9, 15, tzinfo=UTC)


async def test_changes_name_each_item_and_carry_the_approved_reason(sessions: Sessions):
    owner, boss = Actor(TEAM, OWNER), Actor(TEAM, COORDINATOR)
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        await make_item(session, plan, title="Translate the permit guide", due=date(2026, 12, 15), now=EARLY)
        await make_item(session, plan, title="Pilot hotspot lending", due=date(2027, 2, 1), now=EARLY)
        await make_item(session, plan, title="Retire the old intake form", due=date(2027, 3, 1), now=EARLY)
    async with transaction(sessions) as session:
        moved = await propose_change(
            session,
            actor=owner,
            ref="OIT-1",
            kind=ChangeKind.REDATE,
            value="2027-02-15",
            reason="the vendor needs the Spanish glossary first",
            today=LATER.date(),
            now=LATER,
        )
        dropped = await propose_change(
            session,
            actor=owner,
            ref="OIT-3",
            kind=ChangeKind.DROP,
            value=None,
            reason="merged into the new portal",
            today=LATER.date(),
            now=LATER,
        )
        await set_status(
            session,
            ref="OIT-2",
            status=ItemStatus.AT_RISK,
            actor=owner,
            now=LATER,
            note="two libraries lack storage",
        )
    async with transaction(sessions) as session:
        assert moved.request and dropped.request
        await decide_request(
            session, actor=boss, request_id=moved.request.id or 0, approve=True, note=None, now=LATER
        )
        await decide_request(
            session, actor=boss, request_id=dropped.request.id or 0, approve=True, note=None, now=LATER
        )
    async with sessions() as session:
        rollup = await build_rollup(session, team_id=TEAM, quarter=Q2, as_of=date(2026, 11, 30))
    markdown = render_markdown(rollup)
    assert (
        "- Re-dated OIT-1 Translate the permit guide: 2026-12-15 → 2027-02-15 — “approved request #1:"
        " the vendor needs the Spanish glossary first”" in markdown
    )
    assert (
        "- OIT-3 Retire the old intake form: not started → dropped"
        " — “approved request #2: merged into the new portal”" in markdown
    )
    assert "- At risk: OIT-2 Pilot hotspot lending — “two libraries lack storage”" in markdown
