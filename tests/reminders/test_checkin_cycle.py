"""A whole quarterly check-in on schedule: prompt, follow-ups, non-responders, automatic rollup."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.runtime import remind_once
from domain.calendar import build_calendar
from domain.checkin import checkin_window
from reminders.checkin import Schedule, plan_checkins_in
from reminders.planner import fold_in, plan_in, team_ids
from storage.engine import transaction
from storage.models import CheckInCycle, CheckInResponse, Notification
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, parts_of, running_bot

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


async def tick_at(bot: Bot, day: date, hour: int = 9, minute: int = 30, *, cron: bool = False) -> None:
    """One tick at `day` hour:minute New York time: the app's own ticker, or `reap remind --at`."""
    now = datetime.combine(day, time(hour, minute), tzinfo=NY)
    bot.clock.now = now
    if cron:
        out = io.StringIO()
        assert await remind_once(bot.app.settings, at=now, dry_run=False, out=out) == 0, out.getvalue()
    else:
        assert bot.app.ticker is not None
        await bot.app.ticker(now)
    await bot.app.tasks.drain()


@pytest.mark.parametrize("cron", [False, True], ids=["in-process ticker", "reap remind --at"])
async def test_a_cycle_runs_from_prompt_to_automatic_rollup(bot: Bot, cron: bool):
    calendar = build_calendar(["US-PA"], years=range(2026, 2028))
    window = checkin_window(MEETING, calendar)
    assert (window.opens_on, window.due_on) == (date(2027, 1, 6), date(2027, 1, 15))  # MLK Day is skipped
    async with bot.sessions() as session:
        cycle = (await session.exec(select(CheckInCycle))).one()
    schedule = Schedule.of(cycle, calendar)

    day = window.opens_on - timedelta(days=1)
    await tick_at(bot, day, cron=cron)
    assert checkin_dms(bot, OWNER) == [], "nothing before the window opens"

    day = window.opens_on
    await tick_at(bot, day, hour=8, cron=cron)
    assert checkin_dms(bot, OWNER) == [], "not before the reminder hour"
    await tick_at(bot, day, cron=cron)
    await tick_at(bot, day, hour=11, cron=cron)  # a later tick the same day sends nothing more
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
        await tick_at(bot, day, cron=cron)
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
        # The meeting's agenda goes out the same day (three business days ahead, MLK Day skipped).
        (rollup,) = [m for m in posted if "REAP rollup FY2027-Q2" in m.text and m.thread_ts is None]
        assert any(m.thread_ts == rollup.ts for m in posted)
        assert [m.text for m in posted if "DEI meeting agenda" in m.text] == ["DEI meeting agenda: FY2027-Q2"]
    assert len([f for f in bot.slack.files() if f["filename"] == "reap-FY2027-Q2.png"]) == 2

    await tick_at(bot, calendar.add_business_days(day, 1), cron=cron)
    async with bot.sessions() as session:
        cycle = (await session.exec(select(CheckInCycle))).one()
        responses = list(await session.exec(select(CheckInResponse)))
        rollups = list(await session.exec(select(Notification).where(Notification.kind == "rollup")))
    assert cycle.closed_at is not None
    assert [r.responder for r in responses] == [OWNER]
    assert len(rollups) == 2 and all(r.state == "sent" for r in rollups), "posted once per channel"


def buttons(bot: Bot, user: str) -> list[str]:
    """The action_ids of every button in the DMs `user` got."""
    return [
        element["action_id"]
        for m in bot.slack.dms_to(user)
        for block in m.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


async def test_a_checkin_owed_on_a_digest_day_rides_in_the_digest(bot: Bot):
    """One DM a day: the owner's due-today nudge and the check-in prompt arrive as one message."""
    opens_on = date(2027, 1, 6)
    async with transaction(bot.sessions) as session:
        plan = await make_plan(session, key="DIG", coordinator=None, people=())
        await make_item(session, plan, owner=OWNER, due=opens_on, title="Publish the language plan")

    await tick_at(bot, opens_on)
    await tick_at(bot, opens_on, hour=11)

    (message,) = [m for m in bot.slack.dms_to(OWNER)]
    assert (
        message.text.startswith("Your FY2027-Q2 REAP check-in · REAP: 1 action item")
        and "DIG-1" in message.text
    )
    text = json.dumps(message.blocks)
    assert "FY2027-Q2 REAP check-in is open" in text and "DIG-1" in text
    assert "checkin_open" in buttons(bot, OWNER) and "item_done" in buttons(bot, OWNER)
    assert len(checkin_dms(bot, OTHER)) == 1, "an owner with no digest gets the prompt on its own"
    async with bot.sessions() as session:
        prompt = (
            await session.exec(
                select(Notification).where(
                    Notification.key.startswith(f"{bot.team_id}:checkin_prompt:FY2027-Q2:{OWNER}")
                )
            )
        ).one()
    assert prompt.state == "skipped" and prompt.last_error and "carried by" in prompt.last_error

    # The button in the digest opens the same one-form check-in.
    await bot.interact(bot.block_action(OWNER, "checkin_open", value="FY2027-Q2"))
    assert list(bot.slack.views().values())[-1]["callback_id"] == "checkin_modal"


async def test_a_checkin_started_after_the_days_digest_waits_for_the_next_business_day(bot: Bot):
    """A coordinator opens the cycle mid-day: whoever already had a DM today hears tomorrow."""
    day = date(2026, 12, 1)  # a Tuesday
    async with transaction(bot.sessions) as session:
        plan = await make_plan(session, key="DIG", coordinator=None, people=())
        await make_item(session, plan, owner=OWNER, due=day)
    await tick_at(bot, day)
    assert len(bot.slack.dms_to(OWNER)) == 1, "the morning digest"

    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    await tick_at(bot, day, hour=14)
    assert len(bot.slack.dms_to(OWNER)) == 1, "no second DM the same day"
    assert len(checkin_dms(bot, OTHER)) == 1

    await tick_at(bot, day + timedelta(days=1))
    assert checkin_dms(bot, OWNER) == ["Your FY2027-Q2 REAP check-in"]


async def test_a_checkin_whose_digest_never_went_out_is_owed_again_the_next_day(bot: Bot):
    """The digest carrying a prompt is skipped (its day passed in an outage): the prompt is not lost."""
    opens_on = date(2027, 1, 6)
    async with transaction(bot.sessions) as session:
        plan = await make_plan(session, key="DIG", coordinator=None, people=())
        await make_item(session, plan, owner=OWNER, due=opens_on)
    now = datetime.combine(opens_on, time(9, 30), tzinfo=NY)
    parts = parts_of(bot.app)
    async with transaction(bot.sessions) as session:  # plan only: the outage begins before delivery
        for team_id in await team_ids(bot.sessions):
            config = await parts.plan_config(now)
            await plan_in(session, team_id=team_id, now=now, config=config)
            await plan_checkins_in(session, team_id=team_id, now=now, config=config)
            await fold_in(session, team_id=team_id, now=now, config=config, kinds=parts.riders)
    async with bot.sessions() as session:
        prompt = (await session.exec(select(Notification).where(Notification.kind == "checkin_prompt"))).all()
    assert [(p.recipient, p.state) for p in prompt if p.recipient == OWNER] == [(OWNER, "skipped")]

    # Back up the next morning: the first tick finds yesterday's digest stale and skips it, the
    # next one (a minute later) owes the prompt again.
    await tick_at(bot, calendar_day_after(opens_on))
    await tick_at(bot, calendar_day_after(opens_on), minute=31)

    assert checkin_dms(bot, OWNER) == ["Your FY2027-Q2 REAP check-in"]
    assert len(bot.slack.dms_to(OWNER)) == 1, "the stale digest itself is not replayed"


def calendar_day_after(day: date) -> date:
    """The next business day after `day` (no holidays in January's first weeks but the weekend)."""
    return build_calendar(["US-PA"], years=range(2026, 2028)).add_business_days(day, 1)
