"""Before each DEI meeting the agenda is posted once: to the DEI channel and each department's
channel, and as a note in every coordinator's one daily digest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from domain.status import ItemStatus
from storage.engine import transaction
from storage.models import CheckInCycle
from tests.factories import COORDINATOR, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

NY = ZoneInfo("America/New_York")
DEI = "C0DEI"
# The FY2027-Q3 meeting on Thursday 22 April 2027: three business days before is Monday the 19th.
MEETING = date(2027, 4, 22)


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A DEI channel, OIT's report channel, a blocked item, and the FY2027-Q3 meeting."""
    async with running_bot(database_url, dei_channel=DEI) as bot:
        for user in (OWNER, COORDINATOR):
            bot.slack.add_user(user, user.lower(), tz="America/New_York")
        bot.slack.add_channel(DEI, "dei-reap", member=True)
        bot.slack.add_channel("C0OIT", "oit-reap", member=True)
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(
                session, plan, title="Fiber permits", due=date(2027, 9, 30), status=ItemStatus.BLOCKED
            )
            session.add(CheckInCycle(team_id=bot.team_id, quarter="FY2027-Q3", meeting_date=MEETING))
        yield bot


async def tick_at(bot: Bot, day: date, hour: int = 9, minute: int = 30) -> None:
    """One tick of the app's own ticker at `day` hour:minute New York time."""
    now = datetime.combine(day, time(hour, minute), tzinfo=NY)
    bot.clock.now = now
    assert bot.app.ticker is not None
    await bot.app.ticker(now)
    await bot.app.tasks.drain()


def agenda_posts(bot: Bot, channel: str) -> list[str]:
    """The agenda messages posted in a channel."""
    return [str(m.blocks) for m in bot.slack.messages(channel) if "DEI meeting agenda" in m.text]


async def test_the_agenda_goes_out_three_business_days_before_the_meeting_once(bot: Bot):
    await tick_at(bot, date(2027, 4, 16))  # Friday: four business days ahead
    assert agenda_posts(bot, DEI) == []
    await tick_at(bot, date(2027, 4, 19))
    await tick_at(bot, date(2027, 4, 19), hour=11)
    await tick_at(bot, date(2027, 4, 20))
    (dei,) = agenda_posts(bot, DEI)
    (oit,) = agenda_posts(bot, "C0OIT")
    assert "*OIT-1* Fiber permits (OIT, <@U0OWNER>): blocked" in dei and dei == oit
    notes = [m.text for m in bot.slack.dms_to(COORDINATOR) if "DEI meeting is on" in m.text]
    assert len(notes) == 1, "the coordinator hears of it once, in that day's digest"
    assert "1 item(s) need a decision" in notes[0]
