"""Owner profiles kept fresh by the tick: the daily users.list pass (paged, resumable, within its
rate tier), lookups of people a plan import names, and a deactivated owner's items reported to the
coordinator the same day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from domain.status import ItemStatus
from localslack.server import Fault
from plans.planfile import import_plan, parse_plan_file
from reminders.digest import ORPHANED
from reminders.profiles import DEACTIVATED, ProfileConfig, first_window
from storage.engine import transaction
from storage.models import AuditEvent, Notification, Person, ProfileSync
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, parts_of, running_bot
from tests.reminders.support import plan_config

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
TUESDAY = date(2026, 12, 1)
WEDNESDAY = date(2026, 12, 2)
FAR = date(2027, 6, 30)  # nothing is owed about these items for months


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan (coordinator U0COORD; U0OWNER owns two open items and a
    done one, due far away), everyone a member of the emulated workspace."""
    async with running_bot(database_url) as bot:
        for user in (OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower(), tz="America/New_York")
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan, title="Translate the permit guide", due=FAR)
            await make_item(session, plan, title="Audit the hiring panel", due=FAR)
            await make_item(session, plan, title="Finished already", due=FAR, status=ItemStatus.DONE)
            await make_item(session, plan, title="Someone else's", owner=OTHER, due=FAR)
        yield bot


async def tick_at(bot: Bot, day: date, hour: int, minute: int = 0, *, zone: ZoneInfo = NY) -> None:
    """One tick of the bot's own ticker at `day` hour:minute in `zone`."""
    now = datetime.combine(day, time(hour, minute), tzinfo=zone)
    bot.clock.now = now
    assert bot.app.ticker is not None
    await bot.app.ticker(now)
    await bot.app.tasks.drain()


async def person(bot: Bot, user_id: str) -> Person:
    """The stored person."""
    async with bot.sessions() as session:
        return (await session.exec(select(Person).where(Person.user_id == user_id))).one()


def list_calls(bot: Bot) -> list[dict[str, str]]:
    """The parameters of every users.list call so far."""
    return [dict(call.params) for call in bot.slack.calls_to("users.list")]


async def test_the_daily_pass_refreshes_everyone_once_a_day_from_the_first_tick_after_midnight(bot: Bot):
    bot.slack.add_user(OWNER, "owner", real_name="Olu Owner", tz="America/Chicago")
    await tick_at(bot, TUESDAY, 0, 1)
    owner = await person(bot, OWNER)
    assert (owner.name, owner.tz, owner.active) == ("Olu Owner", "America/Chicago", True)
    assert owner.refreshed_at == datetime.combine(TUESDAY, time(0, 1), tzinfo=NY).astimezone(UTC)
    assert len(list_calls(bot)) == 1
    for hour in (9, 12, 17, 23):
        await tick_at(bot, TUESDAY, hour)
    assert len(list_calls(bot)) == 1, "once a day"
    await tick_at(bot, WEDNESDAY, 0, 1)
    assert len(list_calls(bot)) == 2, "and again the next day"


async def test_users_list_is_read_page_by_page_with_its_cursor_a_few_pages_a_tick(bot: Bot):
    for n in range(7):
        bot.slack.add_user(f"U0EXTRA{n}", f"extra{n}")  # members the bot has never heard of
    bot.slack.add_user(OTHER, "other", real_name="Oona Other", tz="America/Denver")
    parts_of(bot.app).profiles.config = ProfileConfig(page_size=3, pages_per_tick=2)
    await tick_at(bot, TUESDAY, 0, 1)
    calls = list_calls(bot)  # 11 members (the bot too): pages of 3, 3, 3, 2
    assert [c["limit"] for c in calls] == ["3", "3"]
    assert "cursor" not in calls[0] and calls[1]["cursor"]
    async with bot.sessions() as session:
        sync = await session.get(ProfileSync, bot.team_id)
    assert sync is not None and sync.day == TUESDAY and sync.cursor is not None, "resumes next tick"
    await tick_at(bot, TUESDAY, 0, 2)
    calls = list_calls(bot)
    assert len(calls) == 4 and calls[2]["cursor"] and calls[2]["cursor"] != calls[1]["cursor"]
    assert (await person(bot, OTHER)).tz == "America/Denver", "people on every page are refreshed"
    async with bot.sessions() as session:
        sync = await session.get(ProfileSync, bot.team_id)
        strangers = (
            await session.exec(select(Person).where(col(Person.user_id).startswith("U0EXTRA")))
        ).all()
    assert sync is not None and sync.cursor is None and sync.finished_at is not None
    assert strangers == [], "only people the bot knows are kept"
    await tick_at(bot, TUESDAY, 0, 3)
    assert len(list_calls(bot)) == 4, "the day's pass is done"


async def test_a_rate_limited_page_waits_out_retry_after_then_carries_on(bot: Bot):
    bot.slack.fail_next("users.list", Fault(status=429, retry_after=120))
    await tick_at(bot, TUESDAY, 0, 1)
    assert len(list_calls(bot)) == 1
    await tick_at(bot, TUESDAY, 0, 2)
    assert len(list_calls(bot)) == 1, "still inside Retry-After"
    await tick_at(bot, TUESDAY, 0, 4)
    assert len(list_calls(bot)) == 2
    async with bot.sessions() as session:
        sync = await session.get(ProfileSync, bot.team_id)
    assert sync is not None and sync.cursor is None and sync.last_error is None


async def test_a_user_deactivated_in_slack_is_marked_inactive_and_their_items_go_to_the_coordinator_that_day(
    bot: Bot,
):
    await tick_at(bot, TUESDAY, 8)
    bot.slack.add_user(OWNER, "owner", deleted=True)
    await tick_at(bot, TUESDAY, 10)
    assert (await person(bot, OWNER)).active, "today's pass was done before the deactivation"

    await tick_at(bot, WEDNESDAY, 0, 5)
    assert not (await person(bot, OWNER)).active
    async with bot.sessions() as session:
        events = (await session.exec(select(AuditEvent).where(AuditEvent.field == "active"))).all()
        owed = (await session.exec(select(Notification).where(Notification.kind == ORPHANED))).all()
    assert [(e.actor, e.old, e.new, e.note) for e in events] == [
        ("system", "true", "false", "deactivated in Slack (users.list)")
    ]
    assert sorted(r.payload["items"][0]["ref"] for r in owed) == ["OIT-1", "OIT-2"], "open items only"
    assert {(r.recipient, r.local_date, r.payload["reason"]) for r in owed} == {
        (COORDINATOR, WEDNESDAY, DEACTIVATED)
    }
    assert bot.slack.dms_to(COORDINATOR) == [], "not in the middle of the night"

    await tick_at(bot, WEDNESDAY, 9)
    told = bot.slack.dms_to(COORDINATOR)
    assert len(told) == 1
    assert "lost their owner" in told[0].text or "need a new owner" in told[0].text
    assert "OIT-1" in told[0].text and "OIT-2" in told[0].text and "OIT-3" not in told[0].text
    assert bot.slack.dms_to(OWNER) == []
    await tick_at(bot, WEDNESDAY, 10)
    assert len(bot.slack.dms_to(COORDINATOR)) == 1, "told once"


async def test_people_a_plan_import_names_are_looked_up_by_the_next_tick(bot: Bot):
    await tick_at(bot, TUESDAY, 8)  # today's pass is done before the import
    bot.slack.add_user("U0NEWLA", "newla", real_name="Lee Angeles", tz="America/Los_Angeles")
    bot.slack.add_user("U0NEWNY", "newny", real_name="Nia York", tz="America/New_York")
    text = (
        "version: 1\n"
        "people:\n"
        "  - {user_id: U0NEWLA}\n"
        "  - {user_id: U0NEWNY, name: Nia}\n"
        "  - {user_id: U0TYPO}\n"
        "departments:\n"
        "  - {key: PPR, name: Parks and Recreation}\n"
        "plans:\n"
        "  - key: PPR-REAP\n"
        "    department: PPR\n"
        "    title: Parks plan\n"
        "    start: 2026-07-01\n"
        "    end: 2027-06-30\n"
        "    strategies: [{key: only, name: The only strategy}]\n"
        "    items:\n"
        "      - {key: a, title: Shade at every playground, strategy: only, owner: U0NEWLA,\n"
        "         due: 2027-01-15}\n"
    )
    async with transaction(bot.sessions) as session:
        await import_plan(
            session,
            document=parse_plan_file(text, filename="ppr.yaml"),
            team_id=bot.team_id,
            now=bot.clock.now,
        )
    await tick_at(bot, TUESDAY, 8, 1)
    looked_up = sorted(str(call.params["user"]) for call in bot.slack.calls_to("users.info"))
    assert looked_up == ["U0NEWLA", "U0NEWNY", "U0TYPO"]
    new_la, new_ny, typo = [await person(bot, u) for u in ("U0NEWLA", "U0NEWNY", "U0TYPO")]
    assert (new_la.name, new_la.tz) == ("Lee Angeles", "America/Los_Angeles")
    assert (new_ny.name, new_ny.tz) == ("Nia York", "America/New_York")
    assert (typo.tz, typo.refreshed_at, typo.active) == (None, None, True), "the org's hour serves"
    await tick_at(bot, TUESDAY, 8, 2)
    assert len(bot.slack.calls_to("users.info")) == 3, "an unknown id is not asked about every tick"


async def test_someone_slack_cannot_describe_yet_is_nudged_at_the_org_hour_until_a_lookup_succeeds(bot: Bot):
    bot.slack.add_user("U0LA", "la", tz="America/Los_Angeles")
    async with transaction(bot.sessions) as session:
        plan = await make_plan(session, key="PPR", coordinator=None, people=("U0LA",))
        la = (await session.exec(select(Person).where(Person.user_id == "U0LA"))).one()
        la.tz, la.created_at = None, datetime.combine(TUESDAY, time(6), tzinfo=NY)
        await make_item(session, plan, title="Shade at every playground", owner="U0LA", due=WEDNESDAY)
    bot.slack.fail_next("users.info", Fault(status=503))
    bot.slack.fail_next("users.list", Fault(status=503))
    await tick_at(bot, TUESDAY, 9)
    assert len(bot.slack.dms_to("U0LA")) == 1, "nudged at the organisation's hour"

    await tick_at(bot, TUESDAY, 9, 30)  # the back-off is over: the pass goes on
    assert (await person(bot, "U0LA")).tz == "America/Los_Angeles"
    await tick_at(bot, WEDNESDAY, 9)
    await tick_at(bot, WEDNESDAY, 8, 59, zone=LA)
    assert len(bot.slack.dms_to("U0LA")) == 1, "not at 9:00 New York, nor before 9:00 in Los Angeles"
    await tick_at(bot, WEDNESDAY, 9, zone=LA)
    assert len(bot.slack.dms_to("U0LA")) == 2


def test_a_message_owed_outside_the_window_waits_for_the_next_morning_and_for_a_pause_to_end():
    plan = plan_config()

    def at(day: date, hour: int, zone: ZoneInfo = NY) -> datetime:
        return datetime.combine(day, time(hour), tzinfo=zone)

    assert first_window(at(TUESDAY, 2), NY, plan) == (TUESDAY, at(TUESDAY, 9))
    assert first_window(at(TUESDAY, 11), NY, plan) == (TUESDAY, at(TUESDAY, 11))
    assert first_window(at(TUESDAY, 19), NY, plan) == (WEDNESDAY, at(WEDNESDAY, 9))
    saturday, monday = date(2026, 12, 5), date(2026, 12, 7)
    assert first_window(at(saturday, 10), NY, plan) == (monday, at(monday, 9))
    # 02:00 in New York is 23:00 the evening before in Los Angeles: its window has closed.
    assert first_window(at(TUESDAY, 2), LA, plan) == (TUESDAY, at(TUESDAY, 9, LA))
    paused = first_window(at(TUESDAY, 11), NY, plan, paused_until=date(2026, 12, 3))
    assert paused == (date(2026, 12, 3), at(date(2026, 12, 3), 9))
