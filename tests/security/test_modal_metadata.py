"""A modal's private_metadata names where it was opened; it never decides where the bot writes.

The metadata travels through the person's Slack client and back. The bot updates a message only
if its own outbox says it sent that message to the person submitting, and otherwise confirms to
the submitter by DM; a response_url in the metadata is never posted to.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from messages.blocks import UPDATE_MODAL
from storage.engine import transaction
from storage.models import Notification, NotificationState
from tests.factories import OTHER, OWNER
from tests.harness import Bot
from tests.security import NO_EVIDENCE, seeded_bot

SENT = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan (OIT-1 belongs to OWNER)."""
    # Done completes at once here: these tests are about escaping, metadata and replays, not evidence.
    async with seeded_bot(database_url, policy=NO_EVIDENCE) as bot:
        yield bot


async def bot_message(bot: Bot, *, to: str, recorded_for: str | None) -> tuple[str, str]:
    """A DM the bot posted to `to`; recorded in its outbox as sent to `recorded_for` (or not at all)."""
    posted = await bot.app.client.chat_postMessage(channel=to, text="Your digest")
    channel, ts = str(posted["channel"]), str(posted["ts"])
    if recorded_for is not None:
        async with transaction(bot.sessions) as session:
            session.add(
                Notification(
                    team_id=bot.team_id,
                    key=f"digest:{recorded_for}:{ts}",
                    kind="digest",
                    recipient=recorded_for,
                    payload={},
                    send_after=SENT,
                    created_at=SENT,
                    state=NotificationState.SENT.value,
                    channel=channel,
                    ts=ts,
                    sent_at=SENT,
                )
            )
    bot.slack.reset()
    return channel, ts


async def submit_update(bot: Bot, metadata: dict[str, object]) -> None:
    """OWNER saves the Update modal for OIT-1 (on track, 60%) carrying `metadata`."""
    view = {"type": "modal", "callback_id": UPDATE_MODAL, "private_metadata": json.dumps(metadata)}
    values = {
        "status": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress": {"value": {"type": "number_input", "value": "60"}},
        # The committed date, as the form shows it: clearing it would be a change request.
        "due": {"value": {"type": "datepicker", "selected_date": "2026-12-15"}},
    }
    response = await bot.interact(bot.view_submission(OWNER, view, values))
    assert response.status_code == 200 and response.content in (b"", b"{}")


async def test_a_forged_response_url_is_never_posted_to(bot: Bot):
    forged = bot.slack.response_url()

    await submit_update(bot, {"ref": "OIT-1", "response_url": forged, "ephemeral": True})

    assert bot.slack.responses(forged) == [] and bot.slack.calls_to("webhook") == []
    assert "OIT-1" in str(bot.slack.dms_to(OWNER)[-1].blocks), "the submitter is told by DM instead"


async def test_a_message_the_bot_sent_someone_else_is_not_updated(bot: Bot):
    channel, ts = await bot_message(bot, to=OTHER, recorded_for=OTHER)

    await submit_update(bot, {"ref": "OIT-1", "channel": channel, "ts": ts})

    assert bot.slack.calls_to("chat.update") == []
    assert "OIT-1" in str(bot.slack.dms_to(OWNER)[-1].blocks)


async def test_a_bot_message_outside_its_outbox_is_not_updated(bot: Bot):
    channel, ts = await bot_message(bot, to=OTHER, recorded_for=None)

    await submit_update(bot, {"ref": "OIT-1", "channel": channel, "ts": ts, "ephemeral": False})

    assert bot.slack.calls_to("chat.update") == []


async def test_the_submitters_own_digest_is_updated_in_place(bot: Bot):
    channel, ts = await bot_message(bot, to=OWNER, recorded_for=OWNER)

    await submit_update(bot, {"ref": "OIT-1", "channel": channel, "ts": ts})

    [update] = bot.slack.calls_to("chat.update")
    assert (update.params["channel"], update.params["ts"]) == (channel, ts)
    assert bot.slack.calls_to("chat.postMessage") == []
