"""One DM a day for everybody: a coordinator's own items, escalations, requests to decide, completions
to verify, check-in notices and hand-overs ride in one daily digest, each section with its buttons;
only the answer to a person's own action (their request decided) comes at once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from domain.cadence import Cadence
from domain.status import Role
from localslack.server import MESSAGE_BLOCK_LIMIT, Message, block_problems
from plans.planfile import import_plan, parse_plan_file
from storage.engine import transaction
from storage.models import ChangeRequest, Notification
from tests.factories import COORDINATOR, OTHER, OWNER, PlanFixture, make_item, make_person, make_plan
from tests.harness import Bot, parts_of, running_bot

NY = ZoneInfo("America/New_York")
DEI = "U0DANA"
MONDAY = date(2026, 11, 30)
TUESDAY = date(2026, 12, 1)
EVIDENCE = "https://www.phila.gov/oit/equity-matrix"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """The OIT plan (coordinator U0COORD, members U0OWNER and U0OTHER) and a citywide DEI coordinator."""
    async with running_bot(database_url) as bot:
        for user in (OWNER, OTHER, COORDINATOR, DEI):
            bot.slack.add_user(user, user.lower(), tz="America/New_York")
        async with transaction(bot.sessions) as session:
            await make_plan(session)
            await make_person(session, user_id=DEI, role=Role.DEI)
        bot.clock.now = at(MONDAY, 8)
        yield bot


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """`day` at hour:minute in New York."""
    return datetime.combine(day, time(hour, minute), tzinfo=NY)


async def tick_at(bot: Bot, day: date, hour: int = 9, minute: int = 30) -> None:
    """The app's own ticker at `day` hour:minute New York time."""
    bot.clock.now = at(day, hour, minute)
    assert bot.app.ticker is not None
    report = await bot.app.ticker(bot.clock.now)
    assert report.errors == []
    await bot.app.tasks.drain()


async def plan_of(bot: Bot) -> PlanFixture:
    """The OIT plan as the factories made it (read back)."""
    from storage.models import Department, Plan, Strategy

    async with bot.sessions() as session:
        department = (await session.exec(select(Department).where(Department.key == "OIT"))).one()
        plan = (await session.exec(select(Plan).where(Plan.department_id == department.id))).one()
        strategies = (await session.exec(select(Strategy).where(Strategy.plan_id == plan.id))).all()
    return PlanFixture(department=department, plan=plan, strategies={s.key: s for s in strategies})


def buttons(message: Message) -> list[str]:
    """The action_ids of every button in a message."""
    return [
        element["action_id"]
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def block_ids(message: Message) -> list[str]:
    """The block ids of a message, in order."""
    return [str(block.get("block_id")) for block in message.blocks if block.get("block_id")]


async def escalation_due(bot: Bot) -> date:
    """A due date whose open item escalates to its coordinators on MONDAY."""
    calendar = await parts_of(bot.app).calendar(at(MONDAY, 9))
    return calendar.add_business_days(MONDAY, -Cadence().escalate_after)


async def test_a_coordinator_with_items_escalations_and_an_approval_request_on_one_day_gets_exactly_one_dm(
    bot: Bot,
):
    plan = await plan_of(bot)
    async with transaction(bot.sessions) as session:
        await make_item(
            session, plan, title="Publish the language access plan", owner=COORDINATOR, due=MONDAY
        )
        await make_item(session, plan, title="Audit the kiosks", owner=OTHER, due=await escalation_due(bot))
        await make_item(session, plan, title="Hire an equity analyst", owner=OWNER, due=date(2027, 1, 15))
        await make_item(session, plan, title="Translate the permit guide", owner=OWNER, due=date(2027, 2, 1))
    await bot.command(OWNER, 'due OIT-3 2027-03-01 "the vendor slipped"')
    await bot.command(OWNER, f"done OIT-4 {EVIDENCE}")
    assert bot.slack.dms_to(COORDINATOR) == [], "filing a request tells the coordinator nothing yet"

    for hour in (9, 11, 14, 17):
        await tick_at(bot, MONDAY, hour)

    (message,) = bot.slack.dms_to(COORDINATOR)
    ids = block_ids(message)
    assert "item:OIT-1" in ids, "their own item due today, with its card"
    assert "item:OIT-2" in ids, "their department's well overdue item"
    assert "request:1" in ids and "verify:OIT-4" in ids
    assert {"item_done", "request_approve", "request_decline", "item_verify"} <= set(buttons(message))
    assert block_problems(message.blocks, MESSAGE_BLOCK_LIMIT) == []
    assert "1 request waits for your decision and 1 completion to verify" in message.text
    (dana,) = bot.slack.dms_to(DEI)
    assert "request_approve" in buttons(dana), "the citywide DEI coordinator decides every department's"
    assert bot.slack.dms_to(OWNER) == [], "nothing of OWNER's is due; their own request is not news to them"

    # Approving from the digest: the requester hears at once, since it answers their own request.
    await bot.interact(bot.block_action(COORDINATOR, "request_approve", value="1"))
    (told,) = bot.slack.dms_to(OWNER)
    assert "Your request #1" in told.text and "approved" in told.text

    await tick_at(bot, TUESDAY)
    await tick_at(bot, TUESDAY, 15)
    assert len(bot.slack.dms_to(COORDINATOR)) == 1, "decided and shown: nothing new on Tuesday"
    assert len(bot.slack.dms_to(OWNER)) == 1


async def test_a_request_nobody_answers_comes_back_once_a_week(bot: Bot):
    plan = await plan_of(bot)
    async with transaction(bot.sessions) as session:
        await make_item(session, plan, title="Hire an equity analyst", owner=OWNER, due=date(2027, 1, 15))
    await bot.command(OWNER, 'due OIT-1 2027-03-01 "the vendor slipped"')

    calendar = await parts_of(bot.app).calendar(at(MONDAY, 9))
    day = MONDAY
    while day <= date(2026, 12, 15):
        if calendar.is_business_day(day):
            await tick_at(bot, day)
        day += timedelta(days=1)

    asked = [m for m in bot.slack.dms_to(COORDINATOR) if "request_approve" in buttons(m)]
    assert len(asked) == len(bot.slack.dms_to(COORDINATOR)) == 3, "filed, then a week later, then again"
    assert "(some for over a week)" not in asked[0].text and "(some for over a week)" in asked[1].text
    async with bot.sessions() as session:
        request = (await session.exec(select(ChangeRequest))).one()
    assert request.resurfaced_on == date(2026, 12, 14)


async def test_someone_given_an_item_hears_of_it_with_its_card_and_the_previous_owner_is_told(bot: Bot):
    plan = await plan_of(bot)
    async with transaction(bot.sessions) as session:
        await make_item(session, plan, title="Hire an equity analyst", owner=OWNER, due=date(2027, 1, 15))
    await tick_at(bot, MONDAY, 9)
    bot.clock.now = at(MONDAY, 10)
    await bot.command(COORDINATOR, f'assign OIT-1 <@{OTHER}> "Maria is on leave"')
    assert bot.slack.dms_to(OTHER) == [], "told through the digest, not at once"

    await tick_at(bot, MONDAY, 10, 1)

    (given,) = bot.slack.dms_to(OTHER)
    assert given.text == "REAP: You now own OIT-1"
    assert f"given to you by <@{COORDINATOR}>" in json.dumps(given.blocks)
    assert "item:OIT-1" in block_ids(given) and "item_done" in buttons(given)
    (taken,) = bot.slack.dms_to(OWNER)
    assert "OIT-1" in taken.text and f"now belongs to <@{OTHER}>" in json.dumps(taken.blocks)
    assert bot.slack.dms_to(COORDINATOR) == [], "whoever made the change saw it in their reply"


async def test_a_hand_over_after_the_days_digest_waits_for_the_next_one(bot: Bot):
    plan = await plan_of(bot)
    async with transaction(bot.sessions) as session:
        await make_item(session, plan, title="Publish the plan", owner=OTHER, due=MONDAY)
        await make_item(session, plan, title="Hire an equity analyst", owner=OWNER, due=date(2027, 1, 15))
    await tick_at(bot, MONDAY)
    assert len(bot.slack.dms_to(OTHER)) == 1, "the morning digest"

    bot.clock.now = at(MONDAY, 11)
    await bot.command(COORDINATOR, f'assign OIT-2 <@{OTHER}> "more hands"')
    await tick_at(bot, MONDAY, 11, 1)
    await tick_at(bot, MONDAY, 16)
    assert len(bot.slack.dms_to(OTHER)) == 1, "no second DM the same day"

    await tick_at(bot, TUESDAY)
    assert len(bot.slack.dms_to(OTHER)) == 2
    tuesday = bot.slack.dms_to(OTHER)[1]
    assert "You now own OIT-2" in tuesday.text and "item:OIT-2" in block_ids(tuesday)


async def test_an_approved_hand_over_tells_the_requester_at_once_and_the_new_owner_in_their_digest(bot: Bot):
    plan = await plan_of(bot)
    async with transaction(bot.sessions) as session:
        await make_item(session, plan, title="Hire an equity analyst", owner=OWNER, due=date(2027, 1, 15))
    bot.clock.now = at(MONDAY, 8)
    await bot.command(OWNER, f'assign OIT-1 <@{OTHER}> "going on leave"')
    await bot.command(COORDINATOR, "approve 1")
    (decided,) = bot.slack.dms_to(OWNER)
    assert "Your request #1" in decided.text and "approved" in decided.text

    await tick_at(bot, MONDAY)
    assert len(bot.slack.dms_to(OWNER)) == 1, "the decision already told them the item has gone"
    (given,) = bot.slack.dms_to(OTHER)
    assert given.text == "REAP: You now own OIT-1"
    async with bot.sessions() as session:
        notices = (await session.exec(select(Notification).where(Notification.kind == "assigned"))).all()
    assert sorted((n.recipient, n.state) for n in notices) == [(OTHER, "skipped"), (OWNER, "skipped")]
    assert {n.last_error for n in notices if n.recipient == OWNER} == {"told by the decision on request #1"}


async def test_an_item_added_for_someone_else_is_announced_but_not_ones_own(bot: Bot):
    await plan_of(bot)
    bot.clock.now = at(MONDAY, 8)
    await bot.command(
        COORDINATOR,
        f'add "Translate the permit guide" owner <@{OTHER}> due 2027-03-31 strategy equity-projects',
    )
    await bot.command(COORDINATOR, 'add "Write the annual report" due 2027-03-31 strategy equity-projects')

    await tick_at(bot, MONDAY)

    (given,) = bot.slack.dms_to(OTHER)
    assert given.text == "REAP: You now own OIT-1" and "item_done" in buttons(given)
    assert bot.slack.dms_to(COORDINATOR) == []


PLAN = """\
version: 1
people:
  - {{user_id: {owner}}}
departments:
  - {{key: PPR, name: Parks and Recreation}}
plans:
  - key: PPR-REAP
    department: PPR
    title: Parks plan
    start: 2026-07-01
    end: 2027-06-30
    strategies: [{{key: only, name: The only strategy}}]
    items:
      - {{key: shade, title: Shade at every playground, strategy: only, owner: {owner}, due: 2027-01-15}}
"""


async def test_a_plan_import_that_changes_an_owner_tells_both_and_its_new_items_tell_nobody(bot: Bot):
    async def load(owner: str) -> None:
        document = parse_plan_file(PLAN.format(owner=owner), filename="ppr.yaml")
        async with transaction(bot.sessions) as session:
            await import_plan(session, document=document, team_id=bot.team_id, now=bot.clock.now)

    await load(OWNER)
    await tick_at(bot, MONDAY)
    assert bot.slack.dms_to(OWNER) == [], "a plan written down is not a hand-over"

    bot.clock.now = at(MONDAY, 12)
    await load(OTHER)
    await tick_at(bot, MONDAY, 12, 1)
    (given,) = bot.slack.dms_to(OTHER)
    assert given.text == "REAP: You now own PPR-1" and "given to you by the plan file" in json.dumps(
        given.blocks
    )
    (taken,) = bot.slack.dms_to(OWNER)
    assert f"now belongs to <@{OTHER}>" in json.dumps(taken.blocks)


async def test_a_checkin_closed_by_hand_answers_the_closer_at_once_and_rides_the_others_digest(bot: Bot):
    plan = await plan_of(bot)
    async with transaction(bot.sessions) as session:
        await make_item(session, plan, title="Hire an equity analyst", owner=OWNER, due=date(2027, 1, 15))
        await make_person(
            session, user_id="U0COORD2", role=Role.COORDINATOR, department_id=plan.department.id
        )
    bot.slack.add_user("U0COORD2", "coord2", tz="America/New_York")
    bot.slack.add_channel("C0OIT", "oit-reap")
    bot.clock.now = at(MONDAY, 8)
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    await bot.command(COORDINATOR, "checkin close FY2027-Q2")

    (closer,) = bot.slack.dms_to(COORDINATOR)
    assert "did not respond" in closer.text and f"<@{OWNER}>" in closer.text
    assert bot.slack.dms_to("U0COORD2") == [], "the other coordinator's copy rides their digest"

    await tick_at(bot, MONDAY)
    (other,) = bot.slack.dms_to("U0COORD2")
    assert "did not respond" in other.text
    assert len(bot.slack.dms_to(COORDINATOR)) == 1


async def test_what_is_owed_to_someone_on_pause_waits_for_their_first_day_back(bot: Bot):
    plan = await plan_of(bot)
    async with transaction(bot.sessions) as session:
        await make_item(session, plan, title="Hire an equity analyst", owner=OWNER, due=date(2027, 1, 15))
    await bot.command(OTHER, "pause 2026-12-01")
    bot.clock.now = at(MONDAY, 8)
    await bot.command(COORDINATOR, f'assign OIT-1 <@{OTHER}> "more hands"')

    await tick_at(bot, MONDAY)
    await tick_at(bot, MONDAY, 15)
    assert bot.slack.dms_to(OTHER) == []

    await tick_at(bot, TUESDAY)
    (given,) = bot.slack.dms_to(OTHER)
    assert given.text == "REAP: You now own OIT-1"
