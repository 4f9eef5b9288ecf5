"""Commitments that cannot quietly move: change requests, approvals, evidence and verification, from Slack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlmodel import select

from domain.status import Role
from storage.engine import transaction
from storage.items import get_item
from storage.models import ActionItem, AuditEvent, ChangeRequest
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_person, make_plan
from tests.harness import Bot, running_bot

ADMIN = "U0ADMIN"
DEI = "U0DANA"
PPR_COORDINATOR = "U0PPRC"
EVIDENCE = "https://www.phila.gov/oit/equity-matrix"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """OIT-1 (due 2026-12-15) and OIT-2 owned by OWNER; OIT's and PPR's coordinators; a DEI coordinator."""
    async with running_bot(database_url) as bot:
        for user in (ADMIN, DEI, PPR_COORDINATOR, OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_plan(session, key="PPR", coordinator=PPR_COORDINATOR, people=())
            await make_person(session, user_id=DEI, role=Role.DEI)
            await make_item(session, plan)
            await make_item(session, plan, title="Hire an equity data analyst", due=date(2027, 2, 1))
        yield bot


async def item(bot: Bot, ref: str = "OIT-1") -> ActionItem:
    """The item as stored now."""
    async with bot.sessions() as session:
        return await get_item(session, team_id=bot.team_id, ref=ref)


async def requests(bot: Bot) -> list[ChangeRequest]:
    """Every change request, oldest first."""
    async with bot.sessions() as session:
        return list(await session.exec(select(ChangeRequest).order_by(ChangeRequest.id)))  # type: ignore[arg-type]


async def actions(bot: Bot, ref: str = "OIT-1") -> list[tuple[str, str | None]]:
    """The item's audit trail as (action, field)."""
    found = await item(bot, ref)
    async with bot.sessions() as session:
        rows = await session.exec(
            select(AuditEvent).where(AuditEvent.item_id == found.id).order_by(AuditEvent.id)
        )  # type: ignore[arg-type]
        return [(e.action, e.field) for e in rows]


def text(response) -> str:  # type: ignore[no-untyped-def]
    """Everything a slash command answered, as one string."""
    body = response.json()
    return f"{body.get('text')} {body.get('blocks')}"


async def test_an_owner_moving_a_due_date_later_files_a_request_and_the_item_keeps_its_date(bot: Bot):
    answer = await bot.command(OWNER, 'due OIT-1 2027-03-01 "vendor slipped to February"')
    assert (
        "Request #1 to move the due date from 2026-12-15 to 2027-03-01 on *OIT-1* is with the coordinators"
        in text(answer)
    )
    assert ":hourglass_flowing_sand: Request #1" in text(answer)
    assert (await item(bot)).due == date(2026, 12, 15)
    (request,) = await requests(bot)
    assert (request.kind, request.state, request.reason) == (
        "redate",
        "pending",
        "vendor slipped to February",
    )
    assert ("request", "redate") in await actions(bot)


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("due OIT-1 2027-03-01", "To move the due date, give a reason"),
        ("status OIT-1 dropped", "To drop the item, give a reason"),
        (f"assign OIT-1 <@{OTHER}>", "To reassign the item, give a reason"),
        ('due OIT-1 2026-01-05 "typo"', "2026-01-05 is in the past"),
    ],
)
async def test_a_change_without_its_reason_or_into_the_past_is_refused_and_nothing_changes(
    bot: Bot, command: str, problem: str
):
    answer = await bot.command(OWNER, command)
    assert problem in text(answer)
    assert await requests(bot) == []
    stored = await item(bot)
    assert (stored.due, stored.status, stored.owner_id) == (date(2026, 12, 15), "not_started", OWNER)


async def test_an_earlier_due_date_is_the_owners_to_set_at_once(bot: Bot):
    answer = await bot.command(OWNER, "due OIT-1 2026-12-10")
    assert "OIT-1 is now due" in text(answer)
    assert (await item(bot)).due == date(2026, 12, 10)
    assert await requests(bot) == []


async def test_a_coordinators_own_change_applies_at_once_with_its_reason_logged(bot: Bot):
    await bot.command(COORDINATOR, 'due OIT-1 2027-03-01 "board moved the launch"')
    assert (await item(bot)).due == date(2027, 3, 1)
    async with bot.sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "redate"))).one()
    assert (event.actor, event.note) == (COORDINATOR, "board moved the launch")
    assert await requests(bot) == []


async def test_a_second_pending_request_on_the_same_item_is_refused(bot: Bot):
    await bot.command(OWNER, 'due OIT-1 2027-03-01 "vendor slipped"')
    answer = await bot.command(OWNER, 'status OIT-1 dropped "no longer needed"')
    assert "OIT-1 already has a request waiting for a coordinator (#1" in text(answer)
    assert len(await requests(bot)) == 1


async def test_two_requests_racing_leave_exactly_one_pending(bot: Bot):
    answers = await asyncio.gather(
        bot.command(OWNER, 'due OIT-1 2027-03-01 "vendor slipped"'),
        bot.command(OWNER, 'status OIT-1 dropped "no longer needed"'),
    )
    assert all(a.status_code == 200 for a in answers)
    assert [r.state for r in await requests(bot)] == ["pending"]


@pytest.mark.parametrize(
    ("decider", "allowed"),
    [
        (OWNER, False),  # their own request
        (OTHER, False),  # a member
        (PPR_COORDINATOR, False),  # another department's coordinator
        (COORDINATOR, True),
        (DEI, True),
        (ADMIN, True),
    ],
)
async def test_who_may_approve_a_request(bot: Bot, decider: str, allowed: bool):
    await bot.command(OWNER, 'due OIT-1 2027-03-01 "vendor slipped"')
    answer = await bot.command(decider, 'approve #1 "agreed"')
    (request,) = await requests(bot)
    if allowed:
        assert "Approved request #1 on OIT-1" in text(answer)
        assert (request.state, request.decided_by, (await item(bot)).due) == (
            "approved",
            decider,
            date(2027, 3, 1),
        )
        told = bot.slack.dms_to(OWNER)[-1].text
        assert (
            "Your request #1 to move the due date from 2026-12-15 to 2027-03-01 on *OIT-1*"
            f" was approved by <@{decider}>." in told
        )
    else:
        assert "You can't" in text(answer) or "is your own" in text(answer)
        assert (request.state, (await item(bot)).due) == ("pending", date(2026, 12, 15))


async def test_a_decline_needs_a_reason_and_the_requester_reads_it(bot: Bot):
    await bot.command(OWNER, 'status OIT-1 dropped "merged into OIT-2"')
    refused = await bot.command(COORDINATOR, "decline #1")
    assert "Say why" in text(refused)
    await bot.command(COORDINATOR, 'decline #1 "keep it: the council asked for it"')
    (request,) = await requests(bot)
    assert (request.state, (await item(bot)).status) == ("declined", "not_started")
    told = bot.slack.dms_to(OWNER)[-1].text
    assert "was declined by" in told and "keep it: the council asked for it" in told
    assert ("decline", "drop") in await actions(bot)


async def test_the_requests_list_has_buttons_that_approve_and_decline_through_a_form(bot: Bot):
    await bot.command(
        OWNER, 'assign OIT-1 <@OTHER_PLACEHOLDER> "handing over"'.replace("OTHER_PLACEHOLDER", OTHER)
    )
    await bot.command(OWNER, 'due OIT-2 2027-04-01 "needs HR"')
    listed = await bot.command(COORDINATOR, "requests OIT")
    assert "*#1* <@U0OWNER> asks to reassign from <@U0OWNER> to <@U0OTHER> on *OIT-1*" in text(listed)
    await bot.interact(bot.block_action(COORDINATOR, "request_approve", value="1"))
    assert (await item(bot)).owner_id == OTHER
    await bot.interact(bot.block_action(COORDINATOR, "request_decline", value="2"))
    view = list(bot.slack.views().values())[-1]
    assert view["callback_id"] == "request_decline_modal"
    empty = await bot.interact(bot.view_submission(COORDINATOR, view, {}))
    assert "give a reason" in empty.text
    reason = {"reason": {"value": {"type": "plain_text_input", "value": "April is too late for the budget"}}}
    done = await bot.interact(bot.view_submission(COORDINATOR, view, reason))
    assert done.status_code == 200
    assert [r.state for r in await requests(bot)] == ["approved", "declined"]
    assert (await item(bot, "OIT-2")).due == date(2027, 2, 1)


async def test_done_needs_evidence_then_awaits_a_coordinators_verification(bot: Bot):
    refused = await bot.command(OWNER, "done OIT-1")
    assert "OIT-1 needs evidence of completion" in text(refused)
    assert (await item(bot)).status == "not_started"
    bad = await bot.command(OWNER, "done OIT-1 javascript:alert(1)")
    assert "needs evidence of completion" in text(bad) or "must be a link" in text(bad)
    finished = await bot.command(OWNER, f'done OIT-1 <{EVIDENCE}> "launched"')
    assert "awaiting verification" in text(finished)
    assert ((await item(bot)).evidence_url, (await item(bot)).verified_at) == (EVIDENCE, None)
    waiting = await bot.command(COORDINATOR, "requests")
    assert "awaiting verification" in text(waiting)
    own = await bot.command(OWNER, "verify OIT-1")
    assert "You can't verify OIT-1" in text(own)
    await bot.interact(bot.block_action(COORDINATOR, "item_verify", value="OIT-1"))
    assert (await item(bot)).verified_by == COORDINATOR


async def test_reopening_a_done_item_takes_a_real_status_progress_and_reason(bot: Bot):
    await bot.command(OWNER, f"done OIT-1 {EVIDENCE}")
    refused = await bot.command(OWNER, "status OIT-1 on-track")
    assert "To reopen it, say where it really stands" in text(refused)
    missing = await bot.command(OWNER, "reopen OIT-1 at-risk 80%")
    assert "Say why it is reopened" in text(missing)
    await bot.command(OWNER, 'reopen OIT-1 at-risk 80% "the site is not live yet"')
    stored = await item(bot)
    assert (stored.status, stored.progress, stored.evidence_url, stored.completed_at) == (
        "at_risk",
        80,
        None,
        None,
    )
    assert stored.last_note == "the site is not live yet"


async def test_an_open_item_past_its_date_shows_overdue_whatever_was_typed(bot: Bot):
    await bot.command(OWNER, "status OIT-1 on-track")
    bot.clock.now = bot.clock.now.replace(month=12, day=30)
    shown = await bot.command(OWNER, "show OIT-1")
    assert ":red_circle: *overdue* (marked on track)" in text(shown)


async def test_an_export_shows_the_committed_date_while_a_request_waits_and_the_new_one_after(bot: Bot):
    from plans.planfile import export_plan

    async def exported_due() -> str:
        async with bot.sessions() as session:
            csv_text = await export_plan(session, team_id=bot.team_id, fmt="csv")
        row = next(line for line in csv_text.splitlines() if line.startswith("OIT-1,"))
        return row.split(",")[6]

    await bot.command(OWNER, 'due OIT-1 2027-03-01 "vendor slipped"')
    assert await exported_due() == "2026-12-15"
    await bot.command(COORDINATOR, "approve #1")
    assert await exported_due() == "2027-03-01"


async def test_a_coordinator_writes_the_public_update_and_a_member_cannot(bot: Bot):
    refused = await bot.command(OWNER, 'public OIT-1 "Done soon"')
    assert "You can't publish an update on OIT-1" in text(refused)
    answer = await bot.command(COORDINATOR, 'public OIT-1 es "La matriz está en revisión"')
    assert "The public Spanish update of OIT-1 is set" in text(answer)
    stored = await item(bot)
    assert (stored.public_update, stored.public_update_es) == (None, "La matriz está en revisión")
