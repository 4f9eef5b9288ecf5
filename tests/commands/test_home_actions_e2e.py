"""The Home tab to work from: buttons for the common actions, the person's measures with their
latest value, and the global shortcut "Add REAP action item"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlmodel import select

from messages import home as home_ui
from messages.blocks import ADD_MODAL
from messages.checkin import CHECKIN_OPEN
from storage.engine import transaction
from storage.models import CheckInCycle, Measure
from tests.commands.test_home_e2e import buttons, home
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

DEI = "C0DEI"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """OIT's plan with OIT-1 and OWNER's measure "Staff trained" (clock 2026-11-30, FY2027-Q2)."""
    async with running_bot(database_url, dei_channel=DEI) as bot:
        for user in (OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        bot.slack.add_channel(DEI, "dei-reap")
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan)
            session.add(
                Measure(
                    team_id=bot.team_id,
                    strategy_id=plan.strategies["workplace-equity"].id or 0,
                    key="staff-trained",
                    name="Staff <trained>",
                    unit="%",
                    baseline=35,
                    target=80,
                    target_date=date(2027, 6, 30),
                    baseline_quarter="FY2026-Q4",
                    owner_id=OWNER,
                )
            )
        yield bot


def ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [action for action, _ in buttons(blocks)]


async def test_an_owners_home_offers_add_and_shows_their_measures_with_the_latest_value(bot: Bot):
    await bot.command(OWNER, "measure staff-trained 52%")

    blocks = await home(bot, OWNER)

    assert ids(blocks)[0] == home_ui.ADD
    assert home_ui.START_CHECKIN not in ids(blocks) and home_ui.ROLLUP not in ids(blocks)
    text = str(blocks)
    assert "*Your measures* · 1 at FY2027-Q2" in text
    assert "*Staff &lt;trained&gt;* `staff-trained` · latest 52% (FY2027-Q2)" in text
    assert ("item_update", "OIT-1") in buttons(blocks)  # update one of mine


async def test_a_coordinator_starts_the_checkin_from_home_and_then_home_offers_to_answer_it(bot: Bot):
    blocks = await home(bot, COORDINATOR)
    assert (home_ui.START_CHECKIN, "FY2027-Q2") in buttons(blocks)
    assert (home_ui.ROLLUP, "FY2027-Q2") in buttons(blocks)

    await bot.interact(bot.block_action(COORDINATOR, home_ui.START_CHECKIN, value="FY2027-Q2"))

    async with bot.sessions() as session:
        [cycle] = await session.exec(select(CheckInCycle))
    assert (cycle.quarter, cycle.opened_by) == ("FY2027-Q2", COORDINATOR)
    [told] = bot.slack.dms_to(COORDINATOR)
    assert "The FY2027-Q2 check-in is open" in told.text
    view = bot.slack.home_view(COORDINATOR)
    assert view is not None and (CHECKIN_OPEN, "FY2027-Q2") in buttons(view["blocks"])
    assert home_ui.START_CHECKIN not in ids(view["blocks"])


async def test_an_owner_pressing_a_coordinators_button_is_told_why_and_nothing_happens(bot: Bot):
    await bot.interact(bot.block_action(OWNER, home_ui.ROLLUP, value="FY2027-Q2"))

    [told] = bot.slack.dms_to(OWNER)
    assert "Only department coordinators and REAP admins" in told.text
    assert bot.slack.messages(DEI) == []


async def test_a_coordinator_posts_the_rollup_from_home(bot: Bot):
    await bot.interact(bot.block_action(COORDINATOR, home_ui.ROLLUP, value="FY2027-Q2"))

    assert any("REAP rollup FY2027-Q2" in m.text for m in bot.slack.messages(DEI))


@pytest.mark.parametrize("how", ["shortcut", "home"])
async def test_the_global_shortcut_and_homes_add_button_open_the_add_form(bot: Bot, how: str):
    trigger = bot.slack.new_trigger_id()
    if how == "shortcut":
        payload = {
            "type": "shortcut",
            "callback_id": home_ui.ADD_SHORTCUT,
            "team": {"id": bot.team_id, "domain": "phila"},
            "user": {"id": OWNER, "username": "owner", "team_id": bot.team_id},
            "api_app_id": "A0REAPAPP",
            "trigger_id": trigger,
            "action_ts": "1.0",
        }
    else:
        payload = {**bot.block_action(OWNER, home_ui.ADD), "trigger_id": trigger}

    await bot.interact(payload)

    [view] = bot.slack.views().values()
    assert view["callback_id"] == ADD_MODAL
