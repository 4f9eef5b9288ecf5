"""Replay inside the signature window: a signed request sent again acts once, whatever it is.

The signature proves who sent a body, not that it is new; for five minutes the same bytes verify
again. Each slash command and interaction carries a fresh trigger_id, so a second delivery of one
is answered with an empty 200 and changes nothing and tells no one.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func
from sqlmodel import select

from messages.blocks import ADD_MODAL, DONE
from storage.models import ActionItem, AuditEvent
from tests.factories import OWNER
from tests.harness import Bot, sign
from tests.security import FORM, NO_EVIDENCE, VISIBLE_METHODS, seeded_bot, visible_calls


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan, everyone already seen once."""
    # Done completes at once here: these tests are about escaping, metadata and replays, not evidence.
    async with seeded_bot(database_url, policy=NO_EVIDENCE) as bot:
        yield bot


async def count(bot: Bot, model: type) -> int:
    async with bot.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def twice(bot: Bot, body: bytes) -> tuple[int, int, str]:
    """Post the same signed bytes twice (one signature, as a replayer would); both statuses and the
    second answer's body."""
    headers = sign(body)
    first = await bot.post(body, content_type=FORM, headers=headers)
    await bot.app.tasks.drain()
    calls = len(bot.slack.calls)
    second = await bot.post(body, content_type=FORM, headers=headers)
    await bot.app.tasks.drain()
    assert visible_calls(bot, since=calls, methods=VISIBLE_METHODS) == [], "the replay told no one"
    return first.status_code, second.status_code, second.text


def interaction(payload: dict[str, object]) -> bytes:
    return ("payload=" + urllib.parse.quote(json.dumps(payload))).encode()


async def test_a_replayed_slash_command_adds_one_item(bot: Bot):
    items = await count(bot, ActionItem)
    body = urllib.parse.urlencode(
        {
            "team_id": bot.team_id,
            "channel_id": "C0GENERAL",
            "user_id": OWNER,
            "command": "/reap",
            "text": 'add "Map the Wi-Fi gaps" strategy workplace-equity',
            "response_url": bot.slack.response_url(),
            "trigger_id": bot.slack.new_trigger_id(),
        }
    ).encode()

    first, second, answer = await twice(bot, body)

    assert (first, second, answer) == (200, 200, "")
    assert await count(bot, ActionItem) == items + 1


async def test_a_replayed_add_form_submission_writes_once(bot: Bot):
    items = await count(bot, ActionItem)
    values = {
        "title": {"value": {"type": "plain_text_input", "value": "Publish the language access plan"}},
        "strategy": {"value": {"type": "static_select", "selected_option": {"value": "1"}}},
        "owner": {"value": {"type": "users_select", "selected_user": OWNER}},
    }
    view = {"type": "modal", "callback_id": ADD_MODAL, "private_metadata": "{}"}

    first, second, _ = await twice(bot, interaction(bot.view_submission(OWNER, view, values)))

    assert (first, second) == (200, 200)
    assert await count(bot, ActionItem) == items + 1
    assert len(bot.slack.calls_to("chat.postMessage")) == 1, "one confirmation DM"


async def test_a_replayed_button_press_acts_once(bot: Bot):
    first, second, _ = await twice(bot, interaction(bot.block_action(OWNER, DONE, value="OIT-1")))

    assert (first, second) == (200, 200)
    async with bot.sessions() as session:
        events = list(await session.exec(select(AuditEvent).where(AuditEvent.field == "status")))
    assert len(events) == 1
    assert len(bot.slack.calls_to("webhook")) == 1, "the card was refreshed once"


async def test_a_fresh_press_of_the_same_button_is_not_a_replay(bot: Bot):
    for _ in range(2):
        await bot.interact(bot.block_action(OWNER, DONE, value="OIT-2"))

    assert len(bot.slack.calls_to("webhook")) == 2, "each press has its own trigger and is answered"
