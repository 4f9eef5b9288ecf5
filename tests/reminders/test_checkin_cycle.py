"""A whole quarterly check-in on schedule: prompt, follow-ups, non-responders, automatic rollup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from commands.quarterly import checkin_window
from reminders.calendar import build_calendar
from reminders.checkin import Schedule
from storage.engine import transaction
from storage.models import CheckInCycle, CheckInResponse, Notification
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

NY = ZoneInfo("America/New_York")
DEI = "C0DEI"
MEETING = date(2027, 1, 21)


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A bot with two owners (items due far away, so only check-in messages arrive) and a scheduled cycle."""
    async with running_bot(database_url, dei_channel=DEI) as bot:
        for user in (OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower(), tz="America/New_York")
        bot.slack.add_channel(DEI, "dei-reap")
        bot.slack.add_channel("C0OIT", "oit-reap")
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan, owner=OWNER, due=date(2027, 6, 30))
            await make_item(session, plan, owner=OTHER, due=date(2027, 6, 30), title="Wi-Fi in libraries")
            session.add(CheckInCycle(team_id=bot.team_id, quarter="FY2027-Q2", meeting_date=MEETING))
        yield bot


def checkin_dms(bot: Bot, user: str) -> list[str]:
    return [m.text for m in bot.slack.dms_to(user) if "REAP check-in" in m.text]


async def tick_at(bot: Bot, day: date, hour: int = 9, minute: int = 30) -> None:
    now = datetime.combine(day, time(hour, minute), tzinfo=NY)
    bot.clock.now = now
    assert bot.app.ticker is not None
    await bot.app.ticker(now)
    await bot.app.tasks.drain()


async def test_a_cycle_runs_from_prompt_to_automatic_rollup(bot: Bot):
    calendar = build_calendar(["US-PA"], years=range(2026, 2028))
    window = checkin_window(MEETING, calendar)
    assert (window.opens_on, window.due_on) == (date(2027, 1, 6), date(2027, 1, 15))  # MLK Day is skipped
    async with bot.sessions() as session:
        cycle = (await session.exec(select(CheckInCycle))).one()
    schedule = Schedule.of(cycle, calendar)

    day = window.opens_on - timedelta(days=1)
    await tick_at(bot, day)
    assert checkin_dms(bot, OWNER) == [], "nothing before the window opens"

    day = window.opens_on
    await tick_at(bot, day, hour=8)
    assert checkin_dms(bot, OWNER) == [], "not before the reminder hour"
    await tick_at(bot, day)
    await tick_at(bot, day, hour=11)  # a later tick the same day sends nothing more
    assert len(checkin_dms(bot, OWNER)) == 1 and len(checkin_dms(bot, OTHER)) == 1

    # OWNER answers through the prompt's button and the one-form modal.
    await bot.interact(bot.block_action(OWNER, "checkin_open", value="FY2027-Q2"))
    view = list(bot.slack.views().values())[-1]
    values = {
        "status:OIT-1": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress:OIT-1": {"value": {"type": "number_input", "value": "30"}},
    }
    await bot.interact(bot.view_submission(OWNER, view, values))

    while day < window.due_on:
        day = calendar.add_business_days(day, 1)
        await tick_at(bot, day)
    assert len(checkin_dms(bot, OWNER)) == 1, "a responder gets no follow-up"
    other = checkin_dms(bot, OTHER)
    assert len(other) == 3, "one prompt and exactly two follow-ups"
    async with bot.sessions() as session:
        followups = list(
            await session.exec(select(Notification).where(Notification.kind == "checkin_followup"))
        )
    assert sorted((f.recipient, f.local_date) for f in followups) == [
        (OTHER, schedule.halfway),
        (OTHER, schedule.day_before),
    ]

    nonresponders = [m.text for m in bot.slack.dms_to(COORDINATOR) if "did not respond" in m.text]
    assert (
        len(nonresponders) == 1
        and f"<@{OTHER}>" in nonresponders[0]
        and f"<@{OWNER}>" not in nonresponders[0]
    )
    for channel in (DEI, "C0OIT"):
        posted = bot.slack.messages(channel)
        assert posted and "REAP rollup FY2027-Q2" in posted[0].text
        assert any(m.thread_ts == posted[0].ts for m in posted[1:])
    assert len([f for f in bot.slack.files() if f["filename"] == "reap-FY2027-Q2.png"]) == 2

    await tick_at(bot, calendar.add_business_days(day, 1))
    async with bot.sessions() as session:
        cycle = (await session.exec(select(CheckInCycle))).one()
        responses = list(await session.exec(select(CheckInResponse)))
        rollups = list(await session.exec(select(Notification).where(Notification.kind == "rollup")))
    assert cycle.closed_at is not None
    assert [r.responder for r in responses] == [OWNER]
    assert len(rollups) == 2 and all(r.state == "sent" for r in rollups), "posted once per channel"
