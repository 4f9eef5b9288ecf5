"""Workflow Builder steps run as the person the workflow runs for, with exactly the rights /reap
gives them: they complete with what REAP Tracker said, or fail with why and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlmodel import select

from commands import workflows as wf
from domain.status import ItemStatus
from storage.engine import transaction
from storage.models import ActionItem, AuditEvent, CheckInCycle
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

DEI, NEWS = "C0DEI", "C0NEWS"
ELSEWHERE = "T0ELSEWHERE"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """OIT's plan: OIT-1 (due 2026-12-15) and OIT-2 (due 2026-11-20, overdue: the clock reads
    2026-11-30), both OWNER's; and another workspace's PPR-1."""
    async with running_bot(database_url, dei_channel=DEI) as bot:
        for user in (OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        bot.slack.add_channel(DEI, "dei-reap")
        bot.slack.add_channel(NEWS, "equity-news")
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan)
            await make_item(session, plan, title="Hire an <equity> data analyst", due=date(2026, 11, 20))
            elsewhere = await make_plan(session, team_id=ELSEWHERE, key="PPR")
            await make_item(session, elsewhere, title="Another city's item")
        yield bot


async def item(bot: Bot, ref: str, team_id: str = "T0REAP") -> ActionItem:
    async with bot.sessions() as session:
        query = select(ActionItem).where(ActionItem.team_id == team_id, ActionItem.ref == ref)
        return (await session.exec(query)).one()


async def audit_count(bot: Bot) -> int:
    async with bot.sessions() as session:
        return len(list(await session.exec(select(AuditEvent))))


async def test_an_owner_updates_their_item_from_a_workflow(bot: Bot):
    inputs = {"ref": "oit-1", "status": "at-risk", "note": "Vendor slipped a month"}
    result = await bot.step(wf.UPDATE_ITEM, inputs, user=OWNER)

    assert result == {"outputs": {"message": "OIT-1 is now at risk."}}
    changed = await item(bot, "OIT-1")
    assert changed.status == ItemStatus.AT_RISK.value and changed.last_note == "Vendor slipped a month"


@pytest.mark.parametrize(
    ("user", "inputs", "why"),
    [
        (OTHER, {"ref": "OIT-1", "status": "done"}, "can't change the status of OIT-1"),
        (OWNER, {"ref": "PPR-1", "status": "blocked"}, "I can't find item PPR-1."),
        (OWNER, {"ref": "OIT-1 on-track", "status": "blocked"}, "should be one word"),
        (OWNER, {"ref": "OIT-1", "status": "sideways"}, "sideways"),
        (OWNER, {"ref": "OIT-1", "status": "blocked", "note": "x" * 5000}, "note"),
        (None, {"ref": "OIT-1", "status": "blocked"}, wf.NO_PERSON),
    ],
    ids=["not-theirs", "another-workspace", "two-words", "no-such-status", "note-too-long", "no-person"],
)
async def test_an_update_step_that_may_not_or_cannot_act_fails_with_why_and_changes_nothing(
    bot: Bot, user: str | None, inputs: dict[str, str], why: str
):
    before = await audit_count(bot)

    result = await bot.step(wf.UPDATE_ITEM, inputs, user=user)

    assert result is not None and set(result) == {"error"}
    assert why.lower() in result["error"].lower(), result["error"]
    assert (await item(bot, "OIT-1")).status == ItemStatus.NOT_STARTED.value
    assert (await item(bot, "PPR-1", ELSEWHERE)).status == ItemStatus.NOT_STARTED.value
    assert await audit_count(bot) == before


async def test_a_coordinator_starts_the_checkin_and_an_owner_cannot(bot: Bot):
    refused = await bot.step(wf.START_CHECKIN, {"quarter": "FY2027-Q2"}, user=OWNER)
    assert refused is not None and "Only department coordinators and REAP admins" in refused["error"]
    async with bot.sessions() as session:
        assert list(await session.exec(select(CheckInCycle))) == []

    result = await bot.step(wf.START_CHECKIN, {"quarter": "FY2027-Q2"}, user=COORDINATOR)

    assert result is not None and "The FY2027-Q2 check-in is open" in result["outputs"]["message"]
    async with bot.sessions() as session:
        [cycle] = await session.exec(select(CheckInCycle))
    assert (cycle.team_id, cycle.quarter, cycle.opened_by) == ("T0REAP", "FY2027-Q2", COORDINATOR)


async def test_a_checkin_step_with_a_quarter_it_cannot_read_fails(bot: Bot):
    result = await bot.step(wf.START_CHECKIN, {"quarter": "someday"}, user=COORDINATOR)
    assert result is not None and "someday" in result["error"]
    async with bot.sessions() as session:
        assert list(await session.exec(select(CheckInCycle))) == []


async def test_a_coordinator_posts_the_rollup_into_the_channel_the_workflow_names(bot: Bot):
    inputs = {"quarter": "FY2027-Q2", "department": "oit", "channel": NEWS}
    refused = await bot.step(wf.POST_ROLLUP, inputs, user=OWNER)
    assert refused is not None and "Only department coordinators" in refused["error"]
    assert bot.slack.messages(NEWS) == []

    result = await bot.step(wf.POST_ROLLUP, inputs, user=COORDINATOR)

    assert result is not None and f"Posting the FY2027-Q2 rollup to <#{NEWS}>" in result["outputs"]["message"]
    [head, *_] = [m for m in bot.slack.messages(NEWS) if m.subtype != "file_share"]
    assert "REAP rollup FY2027-Q2" in head.text
    assert bot.slack.messages(DEI) == []


async def test_a_rollup_step_with_a_department_that_does_not_exist_posts_nothing(bot: Bot):
    result = await bot.step(wf.POST_ROLLUP, {"department": "PPR"}, user=COORDINATOR)
    assert result == {"error": "I can't find department PPR."}
    assert bot.slack.messages(DEI) == [] and bot.slack.messages(NEWS) == []


async def test_the_overdue_step_outputs_the_list_and_its_count(bot: Bot):
    result = await bot.step(wf.LIST_OVERDUE, {"department": "OIT"}, user=OTHER)

    assert result is not None
    outputs = result["outputs"]
    assert outputs["overdue_count"] == 1
    assert outputs["overdue_list"] == (
        "1 overdue REAP item in OIT:\n"
        "\u2022 *OIT-2* Hire an &lt;equity&gt; data analyst \u00b7 <@U0OWNER> \u00b7 10 days late"
    )
    everywhere = await bot.step(wf.LIST_OVERDUE, {}, user=OTHER)
    assert everywhere is not None and everywhere["outputs"]["overdue_count"] == 1
    assert "PPR-1" not in everywhere["outputs"]["overdue_list"]


async def test_the_overdue_step_for_an_unknown_department_fails(bot: Bot):
    result = await bot.step(wf.LIST_OVERDUE, {"department": "PPR"}, user=OTHER)
    assert result == {"error": "I can't find department PPR."}
