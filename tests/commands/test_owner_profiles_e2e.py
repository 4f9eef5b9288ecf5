"""Someone who becomes an owner or coordinator is looked up in Slack after the ack, so their first
nudge comes at their own hour even if they have never used the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from localslack.server import Fault
from storage.engine import transaction
from storage.models import Person
from tests.factories import COORDINATOR, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
LEE = "U0LEE"  # in Los Angeles; has never used the bot
TUESDAY = date(2026, 12, 1)
ADMIN = "U0ADMIN"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan and item OIT-1; Lee is a workspace member the bot has never met."""
    async with running_bot(database_url) as bot:
        for user in (OWNER, COORDINATOR, ADMIN):
            bot.slack.add_user(user, user.lower(), tz="America/New_York")
        bot.slack.add_user(LEE, "lee", real_name="Lee Angeles", tz="America/Los_Angeles")
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan, due=date(2027, 3, 31))
        bot.clock.now = datetime.combine(TUESDAY, time(7), tzinfo=NY)
        yield bot


async def lee(bot: Bot) -> Person | None:
    """Lee as the bot knows them, if it does."""
    async with bot.sessions() as session:
        return (await session.exec(select(Person).where(Person.user_id == LEE))).first()


def looked_up(bot: Bot) -> list[str]:
    """Whom users.info was asked about, in order."""
    return [str(call.params["user"]) for call in bot.slack.calls_to("users.info")]


async def tick_at(bot: Bot, hour: int, minute: int = 0, *, zone: ZoneInfo = NY) -> None:
    """One tick of the bot's own ticker on Tuesday at hour:minute in `zone`."""
    bot.clock.now = datetime.combine(TUESDAY, time(hour, minute), tzinfo=zone)
    assert bot.app.ticker is not None
    await bot.app.ticker(bot.clock.now)
    await bot.app.tasks.drain()


async def test_an_owner_in_los_angeles_who_never_used_the_bot_is_first_nudged_at_9_los_angeles_time(bot: Bot):
    added = await bot.command(
        COORDINATOR,
        f'add "Translate the permit guide" owner <@{LEE}> due 2026-12-01 strategy equity-projects',
    )
    assert added.json()["text"] == "Added OIT-2."
    known = await lee(bot)
    assert known is not None and (known.name, known.tz) == ("Lee Angeles", "America/Los_Angeles")
    assert LEE in looked_up(bot), "looked up after the ack, before any tick"

    await tick_at(bot, 9)  # 06:00 in Los Angeles
    await tick_at(bot, 8, 59, zone=LA)
    assert bot.slack.dms_to(LEE) == []
    await tick_at(bot, 9, zone=LA)
    nudges = bot.slack.dms_to(LEE)
    assert len(nudges) == 1 and "OIT-2" in nudges[0].text


async def test_a_new_owner_by_assignment_is_looked_up(bot: Bot):
    assigned = await bot.command(COORDINATOR, f'assign OIT-1 <@{LEE}> "Lee leads translation now"')
    assert f"now belongs to <@{LEE}>" in assigned.json()["text"]
    known = await lee(bot)
    assert known is not None and known.tz == "America/Los_Angeles" and known.refreshed_at is not None


async def test_a_new_owner_from_the_add_form_is_looked_up(bot: Bot):
    await bot.command(COORDINATOR, "add")
    view = list(bot.slack.views().values())[-1]
    strategy = view["blocks"][1]["element"]["options"][0]["value"]
    values = {
        "title": {"value": {"type": "plain_text_input", "value": "Shade at every playground"}},
        "strategy": {"value": {"type": "static_select", "selected_option": {"value": strategy}}},
        "owner": {"value": {"type": "users_select", "selected_user": LEE}},
        "due": {"value": {"type": "datepicker", "selected_date": "2027-05-01"}},
        "description": {"value": {"type": "plain_text_input", "value": None}},
    }
    await bot.interact(bot.view_submission(COORDINATOR, view, values))
    known = await lee(bot)
    assert known is not None and known.tz == "America/Los_Angeles"


async def test_a_new_coordinator_is_looked_up_when_given_the_role(bot: Bot):
    await bot.command(ADMIN, f"role <@{LEE}> coordinator OIT")
    known = await lee(bot)
    assert known is not None and (known.role, known.tz) == ("coordinator", "America/Los_Angeles")


async def test_an_owner_already_known_is_not_looked_up_again_and_a_failed_lookup_changes_nothing(bot: Bot):
    await bot.command(COORDINATOR, f'add "First" owner <@{OWNER}> strategy equity-projects')
    await bot.command(COORDINATOR, f'add "Second" owner <@{OWNER}> strategy equity-projects')
    assert looked_up(bot).count(OWNER) == 1, "fresh for a day after the first lookup"

    bot.slack.fail_next("users.info", Fault(error="internal_error"))
    added = await bot.command(COORDINATOR, f'add "Third" owner <@{LEE}> strategy equity-projects')
    assert added.json()["text"] == "Added OIT-4."
    known = await lee(bot)
    assert known is not None and (known.tz, known.refreshed_at) == (None, None), "the org's hour serves"
