"""The quarterly cycle from Slack: scheduling and running check-ins, readings, and rollups into channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlmodel import select

from commands.quarterly import CLOSE_FAILED
from storage.checkins import close_and_owe
from storage.engine import transaction
from storage.items import get_item
from storage.models import (
    CheckInCycle,
    CheckInResponse,
    Measure,
    MeasureReading,
    Notification,
    QuarterSnapshot,
)
from storage.outbox import enqueue
from storage.permissions import Actor
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, failing_statement, running_bot

DEI = "C0DEI"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan, a measure owned by OWNER, and a DEI channel."""
    async with running_bot(database_url, dei_channel=DEI) as bot:
        for user in (OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        bot.slack.add_channel(DEI, "dei-reap")
        bot.slack.add_channel("C0OIT", "oit-reap")
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan)
            await make_item(session, plan, title="Hire an equity data analyst", due=date(2026, 11, 20))
            session.add(
                Measure(
                    team_id=bot.team_id,
                    strategy_id=plan.strategies["digital-equity"].id or 0,
                    key="devices",
                    name="Devices distributed in high-need tracts",
                    unit="devices",
                    baseline=0,
                    target=4000,
                    target_date=date(2027, 6, 30),
                    owner_id=OWNER,
                )
            )
        yield bot


async def test_schedule_start_status_and_close_a_checkin(bot: Bot):
    scheduled = await bot.command(COORDINATOR, "checkin schedule FY2027-Q2 2027-01-21")
    assert "DEI meeting" in scheduled.json()["text"]
    started = await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    assert "check-in is open" in started.json()["text"]
    status = await bot.command(COORDINATOR, "checkin status FY2027-Q2")
    assert f"waiting on <@{OWNER}>" in status.json()["text"]
    closed = await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    assert "closed" in closed.json()["text"]
    async with bot.sessions() as session:
        cycle = (await session.exec(select(CheckInCycle))).one()
    assert cycle.meeting_date == date(2027, 1, 21) and cycle.opened_at and cycle.closed_at
    assert bot.slack.messages(DEI), "closing posts the rollup"


async def test_a_member_cannot_start_a_checkin(bot: Bot):
    response = await bot.command(OWNER, "checkin start")
    assert "Only department coordinators" in response.json()["text"]
    async with bot.sessions() as session:
        assert (await session.exec(select(CheckInCycle))).first() is None


async def test_checkin_button_and_modal_update_several_items_at_once(bot: Bot):
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    await bot.interact(bot.block_action(OWNER, "checkin_open", value="FY2027-Q2"))
    view = list(bot.slack.views().values())[-1]
    assert view["callback_id"] == "checkin_modal"
    values = {
        "status:OIT-1": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress:OIT-1": {"value": {"type": "number_input", "value": "50"}},
        "note:OIT-1": {"value": {"type": "plain_text_input", "value": "Draft with DEI"}},
        "status:OIT-2": {"value": {"type": "static_select", "selected_option": {"value": "blocked"}}},
        "progress:OIT-2": {"value": {"type": "number_input", "value": "10"}},
        "note:OIT-2": {"value": {"type": "plain_text_input", "value": "Waiting on HR posting"}},
        "measure:devices": {"value": {"type": "number_input", "value": "1250"}},
    }
    response = await bot.interact(bot.view_submission(OWNER, view, values))
    assert response.status_code == 200
    async with bot.sessions() as session:
        first = await get_item(session, team_id=bot.team_id, ref="OIT-1")
        second = await get_item(session, team_id=bot.team_id, ref="OIT-2")
        responses = list(await session.exec(select(CheckInResponse)))
        reading = (await session.exec(select(MeasureReading))).one()
    assert (first.status, first.progress, first.last_note) == ("on_track", 50, "Draft with DEI")
    assert (second.status, second.last_note) == ("blocked", "Waiting on HR posting")
    assert len(responses) == 2
    assert (reading.quarter, reading.value) == ("FY2027-Q2", 1250)


async def test_measure_reading_by_its_owner(bot: Bot):
    response = await bot.command(OWNER, 'measure devices 900 Q2 "first distribution events"')
    assert "Recorded devices = 900 for FY2027-Q2" in response.json()["text"]
    refused = await bot.command(OTHER, "measure devices 1")
    assert "You can't" in refused.json()["text"]


async def test_rollup_from_a_coordinator_posts_summary_thread_and_chart(bot: Bot):
    response = await bot.command(COORDINATOR, "rollup FY2027-Q2")
    assert f"<#{DEI}>" in response.json()["text"]
    for channel in (DEI, "C0OIT"):
        messages = bot.slack.messages(channel)
        assert messages, f"nothing posted in {channel}"
        head = messages[0]
        assert len(head.blocks) <= 50
        assert any(m.thread_ts == head.ts for m in messages[1:])
    assert any(f["filename"].endswith(".png") for f in bot.slack.files())


async def test_rollup_is_refused_for_a_member(bot: Bot):
    response = await bot.command(OWNER, "rollup")
    assert "Only department coordinators and REAP admins" in response.json()["text"]
    assert not bot.slack.messages(DEI)


async def test_closing_twice_posts_the_rollup_once_and_tells_coordinators_who_did_not_respond(bot: Bot):
    """A person's close goes through the outbox like the scheduled one: once, with the non-responders."""
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    first = await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    second = await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    assert "closed" in first.json()["text"] and "closed" in second.json()["text"]
    for channel in (DEI, "C0OIT"):
        heads = [m for m in bot.slack.messages(channel) if m.thread_ts is None]
        assert len(heads) == 1, f"one rollup summary in {channel}"
    (notice,) = bot.slack.dms_to(COORDINATOR)
    assert f"<@{OWNER}>" in str(notice.blocks) or f"<@{OWNER}>" in notice.text
    async with bot.sessions() as session:
        rows = list(await session.exec(select(Notification).where(Notification.kind == "rollup")))
    assert {row.recipient for row in rows} == {DEI, "C0OIT"} and all(r.state == "sent" for r in rows)


async def test_a_person_closing_after_the_scheduled_close_posts_nothing_more(bot: Bot):
    """The tick's close and a coordinator's close share the outbox keys, so the rollup goes out once."""
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    async with transaction(bot.sessions) as session:
        rows = await close_and_owe(
            session,
            actor=Actor.system(bot.team_id),
            quarter="FY2027-Q2",
            now=bot.clock.now,
            dei_channel=DEI,
            start_month=7,
        )
        await enqueue(session, rows=rows)
    await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    heads = [m for m in bot.slack.messages(DEI) if m.thread_ts is None]
    assert len(heads) == 1


async def test_asking_for_the_same_rollup_twice_in_a_day_posts_it_once(bot: Bot):
    await bot.command(COORDINATOR, "rollup FY2027-Q2")
    again = await bot.command(COORDINATOR, "rollup FY2027-Q2")
    assert f"<#{DEI}>" in again.json()["text"]
    assert len([m for m in bot.slack.messages(DEI) if m.thread_ts is None]) == 1


async def test_a_closed_quarters_rollup_posts_as_it_was_frozen(bot: Bot):
    await bot.command(COORDINATOR, "checkin schedule FY2027-Q2 2027-01-21")
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    closing_post = bot.slack.messages(DEI)[0]
    await bot.command(OWNER, 'status OIT-1 blocked "waiting on HR"')
    bot.slack.add_channel("C0AGAIN", "again", member=True)
    await bot.command(COORDINATOR, "rollup FY2027-Q2 <#C0AGAIN>")
    again = bot.slack.messages("C0AGAIN")[0]
    assert "Frozen on 2026-11-30 by" in str(again.blocks)
    assert again.blocks == closing_post.blocks, "the same record, whatever happened since"


async def test_a_closed_quarter_is_amended_beside_its_record_and_an_open_one_is_not(bot: Bot):
    from storage.snapshots import frozen_quarter

    await bot.command(COORDINATOR, "checkin schedule FY2027-Q2 2027-01-21")
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    refused = await bot.command(COORDINATOR, 'amend FY2027-Q3 OIT-1 "done" "late"')
    assert "FY2027-Q3 is not closed" in refused.json()["text"]
    member = await bot.command(OWNER, 'amend FY2027-Q2 OIT-1 "done on Dec 28" "reported late"')
    assert "You can't amend FY2027-Q2" in member.json()["text"]
    answer = await bot.command(COORDINATOR, 'amend FY2027-Q2 oit-1 "done on Dec 28" "the owner was on leave"')
    assert "Amended FY2027-Q2: item OIT-1: done on Dec 28." in answer.json()["text"]
    async with bot.sessions() as session:
        frozen = await frozen_quarter(session, team_id=bot.team_id, quarter="FY2027-Q2")
    assert frozen is not None
    assert [(a.subject, a.new, a.reason) for a in frozen.amendments] == [
        ("item OIT-1", "done on Dec 28", "the owner was on leave")
    ]


async def test_a_close_answers_at_once_and_tells_the_closer_once_the_quarter_is_frozen(bot: Bot):
    """Freezing a large plan's quarter takes longer than Slack waits, so it follows the answer."""
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    closing = await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    assert closing.json()["text"].startswith("Closing the FY2027-Q2 check-in")
    (told,) = [r for r in bot.slack.responses() if "FY2027-Q2 check-in is closed" in r.get("text", "")]
    assert told["response_type"] == "ephemeral" and told["replace_original"] is False
    async with bot.sessions() as session:
        cycle = (await session.exec(select(CheckInCycle))).one()
        frozen = list(await session.exec(select(QuarterSnapshot)))
    assert cycle.closed_at is not None
    assert [snapshot.quarter for snapshot in frozen] == ["FY2027-Q2"]
    assert bot.slack.messages(DEI), "the rollup is posted"


async def test_a_close_refused_is_refused_at_once_and_changes_nothing(bot: Bot):
    refused = await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    assert "has not been opened" in refused.json()["text"]
    member = await bot.command(OWNER, "checkin close FY2027-Q2")
    assert "Only department coordinators" in member.json()["text"]
    async with bot.sessions() as session:
        assert list(await session.exec(select(QuarterSnapshot))) == []
    assert bot.slack.responses() == [] and not bot.slack.messages(DEI)


async def test_a_close_that_fails_after_the_answer_tells_the_closer_and_closes_nothing(bot: Bot):
    """The closer was told it is closing: if freezing fails, they hear it may not have, and it did not."""
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    with failing_statement(bot, "INSERT INTO quarter_snapshot", problem="the disk is full"):
        closing = await bot.command(COORDINATOR, "checkin close FY2027-Q2")

    assert closing.json()["text"].startswith("Closing the FY2027-Q2 check-in")
    assert [r["text"] for r in bot.slack.responses()] == [CLOSE_FAILED.format(quarter="FY2027-Q2")]
    async with bot.sessions() as session:
        cycle = (await session.exec(select(CheckInCycle))).one()
        frozen = list(await session.exec(select(QuarterSnapshot)))
    assert cycle.closed_at is None and frozen == [], "closed and frozen together, or not at all"
    assert not bot.slack.messages(DEI)
    again = await bot.command(COORDINATOR, "checkin close FY2027-Q2")
    assert again.status_code == 200
    assert any("FY2027-Q2 check-in is closed" in r.get("text", "") for r in bot.slack.responses())
