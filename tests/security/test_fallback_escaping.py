"""Every text that reaches Slack is escaped, the notification fallback `text` as much as the blocks.

A title comes from whoever typed it (the Add form, a slash command, a plan file). Slack reads
`<!channel>` and `<https://…|…>` in a message's top-level text as a ping and a link, and that text
is what notifications and some clients show, so it must say `&lt;!channel&gt;` there too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from messages.blocks import ADD_MODAL, DONE, SNOOZE, UPDATE, UPDATE_MODAL
from tests.factories import OWNER
from tests.harness import Bot
from tests.security import NO_EVIDENCE, seeded_bot

HOSTILE = "<!channel> <https://evil|click>"
RAW = ("<!channel>", "<https://evil")


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan (OIT-1 and OIT-2); the hostile item will be OIT-3."""
    # Done completes at once here: these tests are about escaping, metadata and replays, not evidence.
    async with seeded_bot(database_url, policy=NO_EVIDENCE) as bot:
        yield bot


def texts(value: Any) -> list[str]:
    """Every top-level `text` in a Slack call or answer (and in each message of a list of them)."""
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    found = value.get("text") if isinstance(value, dict) else None
    return [found] if isinstance(found, str) else []


async def test_a_hostile_title_is_escaped_in_every_fallback_text(bot: Bot):
    values = {
        "title": {"value": {"type": "plain_text_input", "value": HOSTILE}},
        "strategy": {"value": {"type": "static_select", "selected_option": {"value": "1"}}},
        "owner": {"value": {"type": "users_select", "selected_user": OWNER}},
    }
    add_view = {"type": "modal", "callback_id": ADD_MODAL, "private_metadata": "{}"}
    answers = [await bot.interact(bot.view_submission(OWNER, add_view, values))]
    answers.append(await bot.command(OWNER, f'add "{HOSTILE}" strategy workplace-equity'))
    answers += [await bot.command(OWNER, text) for text in ("show OIT-3", "list mine", "done OIT-404")]
    # A channel message carrying the card: a button on it updates it with chat.update.
    posted = await bot.app.client.chat_postMessage(channel="C0GENERAL", text="OIT-3", blocks=[])
    message = dict(posted["message"])
    answers.append(
        await bot.interact(
            bot.block_action(OWNER, SNOOZE, selected="OIT-3|1w", message=message, channel="C0GENERAL")
        )
    )
    # From an ephemeral list: Update opens the modal, whose save is confirmed by DM; Done replaces it.
    await bot.interact(bot.block_action(OWNER, UPDATE, value="OIT-3"))
    [view] = [v for v in bot.slack.views().values() if v["callback_id"] == UPDATE_MODAL]
    progress = {
        "status": {"value": {"selected_option": {"value": "on_track"}}},
        "progress": {"value": {"value": "5"}},
    }
    answers.append(await bot.interact(bot.view_submission(OWNER, view, progress)))
    answers.append(await bot.interact(bot.block_action(OWNER, DONE, value="OIT-3")))

    seen = [t for call in bot.slack.calls for t in texts(call.params)]
    seen += [t for answer in answers if answer.content.startswith(b"{") for t in texts(answer.json())]
    assert bot.slack.calls_to("chat.update") and bot.slack.calls_to("webhook"), "both paths were exercised"
    assert any("&lt;!channel&gt;" in t for t in seen), "the title did reach Slack, escaped"
    assert [t for t in seen if any(raw in t for raw in RAW)] == []
