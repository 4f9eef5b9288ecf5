"""The App Home: what waits for a coordinator's decision (with its buttons); overdue over the typed status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlmodel import select

from domain.status import ItemStatus, Role
from storage.engine import transaction
from storage.models import ChangeRequest
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_person, make_plan
from tests.harness import Bot, running_bot

DEI = "U0DANA"
PPR_COORDINATOR = "U0PPRC"
EVIDENCE = "https://www.phila.gov/oit/equity-matrix"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """OIT-1 (due 2026-12-15), OIT-2 and OIT-3 (typed on track, due 2026-11-01) owned by OWNER; OIT's and
    PPR's coordinators and a DEI coordinator. The clock reads 2026-11-30."""
    async with running_bot(database_url) as bot:
        for user in (DEI, PPR_COORDINATOR, OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_plan(session, key="PPR", coordinator=PPR_COORDINATOR, people=())
            await make_person(session, user_id=DEI, role=Role.DEI)
            await make_item(session, plan)
            await make_item(session, plan, title="Hire an equity data analyst", due=date(2027, 2, 1))
            await make_item(
                session, plan, title="Map Wi-Fi gaps", due=date(2026, 11, 1), status=ItemStatus.ON_TRACK
            )
        yield bot


async def home(bot: Bot, user: str) -> list[dict[str, Any]]:
    """The blocks of the Home tab `user` sees when they open it."""
    await bot.event(
        {"type": "app_home_opened", "user": user, "channel": "D0X", "tab": "home"},
        event_id=f"Ev{user}{len(bot.slack.calls_to('views.publish'))}",
    )
    view = bot.slack.home_view(user)
    assert view is not None
    ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(ids) == len(set(ids)) and len(view["blocks"]) <= 100
    return list(view["blocks"])


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(action_id, value) of every button, in order."""
    return [
        (e["action_id"], e.get("value", ""))
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["type"] == "button"
    ]


async def test_a_coordinators_home_shows_pending_requests_and_verifications_with_their_buttons(bot: Bot):
    await bot.command(OWNER, 'due OIT-2 2027-04-01 "needs HR first"')
    await bot.command(OWNER, f'done OIT-1 {EVIDENCE} "launched"')
    blocks = await home(bot, COORDINATOR)
    text = str(blocks)
    assert "Waiting for you: 1 change request · 1 completion to verify" in text
    assert "*#1* <@U0OWNER> asks to move the due date from 2027-02-01 to 2027-04-01 on *OIT-2*" in text
    assert "needs HR first" in text
    assert f"<{EVIDENCE}|evidence> · awaiting verification" in text
    assert ("request_approve", "1") in buttons(blocks) and ("request_decline", "1") in buttons(blocks)
    assert ("item_verify", "OIT-1") in buttons(blocks)

    # The Home's own button decides the request.
    await bot.interact(bot.block_action(COORDINATOR, "request_approve", value="1"))
    async with bot.sessions() as session:
        (request,) = await session.exec(select(ChangeRequest))
    assert (request.state, request.decided_by) == ("approved", COORDINATOR)
    assert "Waiting for you: 0 change requests · 1 completion to verify" in str(await home(bot, COORDINATOR))


async def test_requests_show_only_to_those_who_may_decide_them(bot: Bot):
    await bot.command(OWNER, 'due OIT-2 2027-04-01 "needs HR first"')
    assert "asks to move the due date" in str(await home(bot, DEI))  # the DEI coordinator: every department
    elsewhere = str(await home(bot, PPR_COORDINATOR))
    assert "Waiting for you: 0 change requests · 0 completions to verify" in elsewhere
    assert "asks to move the due date" not in elsewhere
    owner = await home(bot, OWNER)
    assert "Waiting for you" not in str(owner) and "request_approve" not in str(owner)
    # The owner's own card says its request is with the coordinators.
    assert ":hourglass_flowing_sand: Request #1 to move the due date" in str(owner)


async def test_an_open_item_past_its_date_shows_overdue_on_home_whatever_status_was_typed(bot: Bot):
    owner = str(await home(bot, OWNER))
    assert "*OIT-3* Map Wi-Fi gaps\\n:red_circle: *overdue* (marked on track)" in owner
    summary = next(
        b["text"]["text"] for b in await home(bot, COORDINATOR) if "OIT department" in str(b.get("text"))
    )
    # OIT-3 is counted overdue, not on track; the words are there, not only the colour.
    assert "Equity projects: :red_circle: 1 overdue, :white_circle: 2 not started" in summary
