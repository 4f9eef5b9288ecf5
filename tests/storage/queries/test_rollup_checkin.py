"""Fair check-ins in the rollup: only people sent the prompt, and only once the cycle opened, can be
listed as not yet responded; before then the rollup says when the cycle opens."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.fiscal import FiscalQuarter
from reports.rollup import render_markdown
from storage.engine import Sessions, transaction
from storage.models import CheckInCycle, Notification
from storage.queries.rollup import build_rollup
from tests.factories import OTHER, OWNER, TEAM, make_item, make_plan

Q2 = FiscalQuarter(2027, 2)
OPENED = datetime(2026, 12, 7, 14, tzinfo=UTC)


async def rollup_md(sessions: Sessions) -> tuple[list[str], str]:
    """OIT's non-responders and the Markdown report, as of mid-December."""
    async with sessions() as session:
        rollup = await build_rollup(session, team_id=TEAM, quarter=Q2, as_of=date(2026, 12, 15))
    return rollup.departments[0].non_responders, render_markdown(rollup)


async def test_before_the_cycle_opens_nobody_is_a_non_responder_and_the_report_says_when_it_opens(
    sessions: Sessions,
):
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        await make_item(session, plan, owner=OWNER)
        await make_item(session, plan, owner=OTHER)
        session.add(
            CheckInCycle(
                team_id=TEAM, quarter=Q2.label, meeting_date=date(2027, 1, 21), opens_on=date(2026, 12, 28)
            )
        )
    waiting, markdown = await rollup_md(sessions)
    assert waiting == []
    assert "The FY2027-Q2 check-in opens on 2026-12-28; nobody has been asked yet." in markdown


async def test_once_open_only_owners_the_prompt_reached_can_be_waited_on(sessions: Sessions):
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        await make_item(session, plan, owner=OWNER)
        await make_item(session, plan, owner=OTHER)
        session.add(
            CheckInCycle(team_id=TEAM, quarter=Q2.label, meeting_date=date(2027, 1, 21), opened_at=OPENED)
        )
        for owner, state in ((OWNER, "sent"), (OTHER, "pending")):  # OTHER's prompt is still waiting
            session.add(
                Notification(
                    team_id=TEAM,
                    key=f"{TEAM}:checkin_prompt:{Q2.label}:{owner}",
                    kind="checkin_prompt",
                    recipient=owner,
                    payload={"quarter": Q2.label},
                    state=state,
                    send_after=OPENED,
                    created_at=OPENED,
                )
            )
    waiting, markdown = await rollup_md(sessions)
    assert waiting == [OWNER]
    assert "Response rate 0% (0 of 1 owners). Not yet responded: u0owner." in markdown
