"""Telling one person privately: through the request's response_url, in its channel, or by DM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from commands.telling import tell_privately
from localslack.server import Fault, LocalSlack
from tests.factories import OWNER, TEAM
from tests.harness import TOKEN

pytestmark = pytest.mark.asyncio

CHANNEL = "C0GENERAL"


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    """localslack with OWNER and #general, the bot a member."""
    with LocalSlack(team_id=TEAM) as fake:
        fake.add_user(OWNER, "owner")
        fake.add_channel(CHANNEL, "general", member=True)
        yield fake


@pytest.fixture
def client(slack: LocalSlack) -> AsyncWebClient:
    """The bot's Web API client, pointed at localslack."""
    return AsyncWebClient(token=TOKEN, base_url=slack.base_url, timeout=5, retry_handlers=[])


async def test_with_a_response_url_they_are_told_there_and_nowhere_else(
    slack: LocalSlack, client: AsyncWebClient
):
    url = slack.response_url()

    await tell_privately(client, user=OWNER, text="Saved.", response_url=url, channel=CHANNEL)

    assert [(r["text"], r["response_type"], r["replace_original"]) for r in slack.responses(url)] == [
        ("Saved.", "ephemeral", False)
    ]
    assert slack.ephemerals() == [] and slack.dms_to(OWNER) == []


async def test_without_a_response_url_they_are_told_in_the_channel_only_they_see(
    slack: LocalSlack, client: AsyncWebClient
):
    await tell_privately(client, user=OWNER, text="Saved.", channel=CHANNEL)

    assert [(e["channel"], e["user"], e["text"]) for e in slack.ephemerals()] == [(CHANNEL, OWNER, "Saved.")]
    assert slack.responses() == [] and slack.dms_to(OWNER) == []


async def test_with_no_place_to_answer_they_are_told_by_dm(slack: LocalSlack, client: AsyncWebClient):
    """An App Home press or the global shortcut comes with neither response_url nor channel."""
    await tell_privately(client, user=OWNER, text="Saved.", blocks=[{"type": "divider"}])

    assert [(m.text, m.blocks) for m in slack.dms_to(OWNER)] == [("Saved.", [{"type": "divider"}])]


async def test_a_response_url_slack_no_longer_serves_falls_back_to_their_dm(
    slack: LocalSlack, client: AsyncWebClient
):
    """Past its half hour Slack answers a response_url 404: the person still hears, by DM."""
    expired = f"{slack.root_url}/webhook/expired"

    await tell_privately(client, user=OWNER, text="Closed.", response_url=expired, channel=CHANNEL)

    assert [m.text for m in slack.dms_to(OWNER)] == ["Closed."]
    assert slack.responses() == [] and slack.ephemerals() == []


async def test_a_response_url_lost_on_the_network_twice_falls_back_to_their_dm(
    slack: LocalSlack, client: AsyncWebClient
):
    """slack_sdk retries a dropped connection once; dropped again, the person still hears, by DM."""
    url = slack.response_url()
    slack.fail_next("webhook", Fault(drop=True), times=2)

    await tell_privately(client, user=OWNER, text="Closed.", response_url=url)

    assert [m.text for m in slack.dms_to(OWNER)] == ["Closed."]
    assert slack.responses(url) == []
