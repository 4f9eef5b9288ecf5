"""A rollup reaches its channel whole (the bot joins public channels first) or not at all, and
whoever asked hears why in plain words, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlmodel import select

from localslack.server import Fault
from reminders.tick import deliver_due
from storage.checkins import close_and_owe
from storage.engine import transaction
from storage.models import CheckInCycle, Department, Notification
from storage.outbox import enqueue
from storage.permissions import Actor
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, parts_of, running_bot

DEI = "C0DEI"
PUBLIC, PRIVATE, MISSING = "C0NEWS", "C0HREQUITY", "C0MISSING"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A bot with the OIT plan, a coordinator, and channels it has not been invited to."""
    async with running_bot(database_url, dei_channel=DEI) as bot:
        for user in (OWNER, OTHER, COORDINATOR, "U0ADMIN"):
            bot.slack.add_user(user, user.lower())
        bot.slack.add_channel(DEI, "dei-reap")
        bot.slack.add_channel(PUBLIC, "equity-news")
        bot.slack.add_channel(PRIVATE, "hr-equity", private=True)
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan)
            await make_item(session, plan, title="Hire an equity data analyst", due=date(2026, 11, 20))
        yield bot


def link(channel: str) -> str:
    """How Slack sends a #channel picked in the composer."""
    return f"<#{channel}|{channel.lower()}>"


async def rows_of(bot: Bot, kind: str) -> list[Notification]:
    async with bot.sessions() as session:
        return list(await session.exec(select(Notification).where(Notification.kind == kind)))


def failure_dms(bot: Bot, user: str) -> list[str]:
    return [m.text + str(m.blocks) for m in bot.slack.dms_to(user) if "rollup" in m.text]


async def test_a_rollup_into_a_channel_slack_does_not_know_is_reported_to_whoever_asked(bot: Bot):
    response = await bot.command(COORDINATOR, f"rollup FY2027-Q2 {link(MISSING)}")
    assert f"<#{MISSING}>" in response.json()["text"]

    [notice] = bot.slack.dms_to(COORDINATOR)
    assert MISSING in notice.text and "FY2027-Q2" in notice.text
    assert "the channel was not found" in notice.text
    assert "channel_not_found" not in notice.text + str(notice.blocks)
    assert not bot.slack.files()
    assert [m for m in bot.slack.messages() if m.channel != bot.slack.dm_channel(COORDINATOR)] == []
    [rollup] = await rows_of(bot, "rollup")
    assert (rollup.state, rollup.last_error) == ("failed", "channel_not_found")

    # Delivery running again (the next tick, another instance) tells nobody twice.
    await deliver_due(parts_of(bot.app), bot.clock())
    await deliver_due(parts_of(bot.app), bot.clock())
    assert len(bot.slack.dms_to(COORDINATOR)) == 1
    [told] = await rows_of(bot, "rollup_failed")
    assert (told.recipient, told.state) == (COORDINATOR, "sent")


async def test_a_rollup_into_a_public_channel_the_bot_is_not_in_joins_then_posts_and_uploads(bot: Bot):
    assert not bot.slack.is_member(PUBLIC)

    await bot.command(COORDINATOR, f"rollup FY2027-Q2 {link(PUBLIC)}")

    assert bot.slack.is_member(PUBLIC)
    methods = [c.method for c in bot.slack.calls if c.method != "upload"]
    assert methods.index("conversations.join") < methods.index("chat.postMessage")
    head, *thread = [m for m in bot.slack.messages(PUBLIC) if m.subtype != "file_share"]
    assert "REAP rollup FY2027-Q2" in head.text and all(m.thread_ts == head.ts for m in thread)
    [chart] = bot.slack.files()
    assert chart["channels"] == [PUBLIC] and chart["thread_ts"] == head.ts
    assert chart["alt_txt"].startswith("Chart of the REAP rollup FY2027-Q2")
    assert "items by status for each strategy" in chart["alt_txt"]
    assert bot.slack.dms_to(COORDINATOR) == []


async def test_a_rollup_into_a_private_channel_the_bot_is_not_in_posts_nothing_and_says_to_invite_it(
    bot: Bot,
):
    await bot.command(COORDINATOR, f"rollup FY2027-Q2 {link(PRIVATE)}")

    assert bot.slack.messages(PRIVATE) == [] and bot.slack.files() == []
    [notice] = failure_dms(bot, COORDINATOR)
    assert f"<#{PRIVATE}>" in notice and "/invite @REAP Tracker" in notice
    assert "Nothing was posted there" in notice

    # Invited, the same person asks again the same day: now it goes out, whole.
    bot.slack.invite(PRIVATE)
    await bot.command(COORDINATOR, f"rollup FY2027-Q2 {link(PRIVATE)}")
    heads = [m for m in bot.slack.messages(PRIVATE) if m.thread_ts is None and m.subtype != "file_share"]
    assert len(heads) == 1 and [f["channels"] for f in bot.slack.files()] == [[PRIVATE]]
    assert len(failure_dms(bot, COORDINATOR)) == 1

    # And asking a third time that day posts nothing more.
    await bot.command(COORDINATOR, f"rollup FY2027-Q2 {link(PRIVATE)}")
    assert len([m for m in bot.slack.messages(PRIVATE) if m.thread_ts is None]) == 1


async def test_a_chart_slack_refuses_after_the_summary_is_reported_too(bot: Bot):
    bot.slack.fail_next("files.completeUploadExternal", Fault(error="file_uploads_disabled"))

    await bot.command(COORDINATOR, f"rollup FY2027-Q2 {link(PUBLIC)}")

    assert [m for m in bot.slack.messages(PUBLIC) if m.thread_ts is None]
    [notice] = failure_dms(bot, COORDINATOR)
    assert "summary is in" in notice and "chart could not be added" in notice
    assert "turned file uploads off" in notice
    [rollup] = await rows_of(bot, "rollup")
    assert rollup.state == "sent"


async def test_a_scheduled_rollup_that_fails_tells_the_channels_coordinators_or_the_admins(bot: Bot):
    async with transaction(bot.sessions) as session:
        oit = (await session.exec(select(Department).where(Department.key == "OIT"))).one()
        oit.report_channel = PRIVATE
        session.add(CheckInCycle(team_id=bot.team_id, quarter="FY2027-Q2", meeting_date=date(2027, 1, 21)))
    async with transaction(bot.sessions) as session:
        system = Actor.system(bot.team_id)
        cycle = (await session.exec(select(CheckInCycle))).one()
        cycle.opened_at = bot.clock()
        rows = await close_and_owe(
            session, actor=system, quarter="FY2027-Q2", now=bot.clock(), dei_channel=MISSING, start_month=7
        )
        await enqueue(session, rows=rows)

    await deliver_due(parts_of(bot.app), bot.clock())
    # Nobody asked for a scheduled rollup: its failure rides each reader's digest, owed this tick.
    assert bot.app.ticker is not None
    await bot.app.ticker(bot.clock())

    [coordinator_notice] = failure_dms(bot, COORDINATOR)
    assert f"<#{PRIVATE}>" in coordinator_notice and "/invite @REAP Tracker" in coordinator_notice
    assert "scheduled rollup" in coordinator_notice
    [admin_notice] = failure_dms(bot, "U0ADMIN")
    assert MISSING in admin_notice and "the channel was not found" in admin_notice
    assert bot.slack.messages(PRIVATE) == []
