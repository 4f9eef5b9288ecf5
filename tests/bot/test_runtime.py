"""Reminders wired into the process by bot.runtime, with and without the in-process ticker."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from bot.runtime import install, remind_once
from storage.engine import transaction
from storage.items import get_item
from tests.factories import COORDINATOR, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

MONDAY_9AM = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
async def cron_bot(database_url: str) -> AsyncIterator[Bot]:
    """A bot with REAP_TICKER=false (`reap remind` runs from cron) and two items due Monday.

    The plan asks for no evidence, so Done completes at once (evidence is tested in
    tests/commands/test_commitments_e2e.py).
    """
    async with running_bot(database_url, ticker=False) as bot:
        for user in (OWNER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        bot.clock.now = MONDAY_9AM
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            plan.plan.policy = {"evidence_required": False, "verification": False}
            await make_item(session, plan, title="Publish the scoring matrix", due=date(2026, 11, 2))
            await make_item(session, plan, title="Hire an equity data analyst", due=date(2026, 11, 2))
        yield bot


async def test_with_the_ticker_off_nothing_ticks_but_rebuilds_and_delivery_are_wired(cron_bot: Bot):
    app = cron_bot.app
    assert app.scheduler is None and app.starters == [] and "scheduler" not in app.health_checks
    assert app.reap.rebuild_message is not None and app.reap.deliver_now is not None
    install(app)
    assert app.starters == [], "installing twice changes nothing"


async def test_with_cron_reminding_a_done_press_in_the_digest_updates_that_item_and_keeps_the_others(
    cron_bot: Bot,
):
    out = io.StringIO()
    assert await remind_once(cron_bot.app.settings, at=MONDAY_9AM, dry_run=False, out=out) == 0, (
        out.getvalue()
    )
    (digest,) = cron_bot.slack.dms_to(OWNER)
    assert "OIT-1" in str(digest.blocks) and "OIT-2" in str(digest.blocks)
    message = {"ts": digest.ts, "text": digest.text, "blocks": digest.blocks}
    response = await cron_bot.interact(
        cron_bot.block_action(OWNER, "item_done", value="OIT-1", message=message, channel=digest.channel)
    )
    assert response.status_code == 200
    async with cron_bot.sessions() as session:
        assert (await get_item(session, team_id=cron_bot.team_id, ref="OIT-1")).status == "done"
    (updated,) = cron_bot.slack.dms_to(OWNER)
    assert updated.edits == 1
    text = str(updated.blocks)
    assert "OIT-2" in text and "Hire an equity data analyst" in text, "the other item stays in the digest"
    assert ":white_check_mark: done" in text, "the pressed item shows its new state inside the digest"
