"""The quarterly DEI meeting from Slack: decisions recorded at it, follow-ups that become items,
and the agenda that reports on them next time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlmodel import select

from commands.quarterly import AGENDA_FAILED
from domain.status import ItemStatus
from storage.engine import transaction
from storage.models import ActionItem, CheckInCycle, Decision
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, failing_statement, running_bot


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """OIT with a blocked item, one well overdue, one on track; meetings for FY2027-Q1 and Q2.

    The bot's clock reads 2026-11-30, after the FY2027-Q1 meeting (2026-10-22).
    """
    async with running_bot(database_url) as bot:
        for user in (OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(
                session, plan, title="Fiber permits for six Wi-Fi sites", status=ItemStatus.BLOCKED
            )
            await make_item(session, plan, title="Hire an equity data analyst", due=date(2026, 11, 10))
            await make_item(session, plan, title="Train managers", due=date(2027, 2, 1))
            session.add(
                CheckInCycle(team_id=bot.team_id, quarter="FY2027-Q1", meeting_date=date(2026, 10, 22))
            )
            session.add(
                CheckInCycle(team_id=bot.team_id, quarter="FY2027-Q2", meeting_date=date(2027, 1, 21))
            )
        yield bot


def text(response) -> str:  # type: ignore[no-untyped-def]
    """Everything a slash command answered, as one string."""
    body = response.json()
    return f"{body.get('text')} {body.get('blocks')}"


async def agenda_shown(bot: Bot, user: str, quarter: str) -> str:
    """`/reap agenda <quarter>`: answered at once, the agenda follows where it was asked."""
    answer = await bot.command(user, f"agenda {quarter}")
    assert f"Gathering the {quarter} DEI meeting agenda" in text(answer)
    shown = bot.slack.responses()[-1]
    assert shown["response_type"] == "ephemeral" and shown["replace_original"] is False
    return f"{shown.get('text')} {shown.get('blocks')}"


async def test_a_decision_with_an_owner_and_a_date_becomes_a_followup_item(bot: Bot):
    answer = await bot.command(
        COORDINATOR,
        f'decision "Ask Streets for a permit fast lane" item OIT-1 owner <@{OWNER}> due 2027-01-08',
    )
    assert "Recorded for the FY2027-Q1 DEI meeting: Ask Streets for a permit fast lane" in text(answer)
    assert "Follow-up *OIT-4*" in text(answer)
    async with bot.sessions() as session:
        decision = (await session.exec(select(Decision))).one()
        followup = (await session.exec(select(ActionItem).where(ActionItem.ref == "OIT-4"))).one()
        about = (await session.exec(select(ActionItem).where(ActionItem.ref == "OIT-1"))).one()
    assert (decision.quarter, decision.followup_item_id, decision.item_id) == (
        "FY2027-Q1",
        followup.id,
        about.id,
    )
    assert (followup.title, followup.owner_id, followup.due, followup.strategy_id) == (
        "Follow-up: Ask Streets for a permit fast lane",
        OWNER,
        date(2027, 1, 8),
        about.strategy_id,
    )


@pytest.mark.parametrize(
    ("user", "command", "problem"),
    [
        (COORDINATOR, "decision", "What was decided?"),
        (COORDINATOR, f'decision "x" owner <@{OWNER}>', "needs both an owner and a due date"),
        (OWNER, 'decision "Extend the pilot"', "You can't record a decision"),
        (COORDINATOR, f'decision "x" owner <@{OWNER}> due 2026-01-05', "is in the past"),
    ],
)
async def test_a_decision_that_cannot_be_recorded_changes_nothing(
    bot: Bot, user: str, command: str, problem: str
):
    answer = await bot.command(user, command)
    assert problem in text(answer)
    async with bot.sessions() as session:
        assert list(await session.exec(select(Decision))) == []
        assert len(list(await session.exec(select(ActionItem)))) == 3


async def test_the_next_agenda_lists_what_needs_a_decision_and_how_the_followup_went(bot: Bot):
    await bot.command(
        COORDINATOR, f'decision "Ask Streets for a permit fast lane" owner <@{OWNER}> due 2027-01-08'
    )
    await bot.command(COORDINATOR, 'decision "Keep the hiring freeze exemption request open"')
    await bot.command(OWNER, 'due OIT-3 2027-04-01 "training vendor moved"')
    agenda = await agenda_shown(bot, OTHER, "FY2027-Q2")
    assert "DEI meeting agenda: FY2027-Q2" in agenda
    assert "*OIT-1* Fiber permits for six Wi-Fi sites (OIT, <@U0OWNER>): blocked" in agenda
    assert "*OIT-2* Hire an equity data analyst (OIT, <@U0OWNER>): 20 days overdue" in agenda
    assert "*OIT-3* Train managers (OIT, <@U0OWNER>): change request #1: move the due date" in agenda
    assert "Ask Streets for a permit fast lane (FY2027-Q1) → *OIT-4*" in agenda
    assert ":large_yellow_circle: open" in agenda
    assert "Keep the hiring freeze exemption request open (FY2027-Q1) · :memo: recorded" in agenda
    await bot.command(OWNER, "done OIT-4 https://example.org/streets/fast-lane-memo")
    after = await agenda_shown(bot, OTHER, "FY2027-Q2")
    assert ":white_check_mark: done" in after


async def test_an_agenda_for_a_quarter_without_a_meeting_date_says_how_to_set_one(bot: Bot):
    answer = await bot.command(OTHER, "agenda FY2027-Q3")
    assert bot.slack.responses() == [], "refused at once, nothing follows"
    assert "FY2027-Q3 has no DEI meeting date" in text(answer)
    assert "/reap checkin schedule FY2027-Q3 &lt;date&gt;" in text(answer)  # shown as typed, escaped


async def test_an_agenda_that_fails_after_the_answer_says_so_where_it_was_asked(bot: Bot):
    """The person was told the agenda is coming: if gathering it fails, they hear that instead."""
    # The first read of the cycle refuses at once if there is no meeting; the second gathers the agenda.
    with failing_statement(bot, "FROM checkin_cycle", nth=2, problem="the disk is unreadable"):
        answer = await bot.command(OTHER, "agenda FY2027-Q2")
    assert "Gathering the FY2027-Q2 DEI meeting agenda" in text(answer)
    assert [r["text"] for r in bot.slack.responses()] == [AGENDA_FAILED.format(quarter="FY2027-Q2")]
