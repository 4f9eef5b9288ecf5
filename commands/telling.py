"""Telling one person something only they should see, wherever Slack lets us reach them."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger(__name__)


async def tell_privately(
    client: AsyncWebClient,
    *,
    user: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    response_url: str | None = None,
    channel: str | None = None,
) -> None:
    """Tell `user` privately: through their request's response_url, else in `channel`, else by DM.

    A response_url reaches them where they typed or pressed, in any channel, for half an hour;
    where it fails (expired, or the channel gone) and where a request has no place at all (an App
    Home press, the global shortcut), their DM with the bot still does.
    """
    if response_url:
        # The app's own client settings, so a city behind an outbound proxy reaches Slack here too.
        webhook = AsyncWebhookClient(response_url, timeout=client.timeout, ssl=client.ssl, proxy=client.proxy)
        try:
            sent = await webhook.send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Lost on the way (after slack_sdk's own retry): told twice is better than not at all.
            problem = type(exc).__name__
        else:
            if sent.status_code == 200:
                return
            problem = str(sent.status_code)
        log.info("could not tell %s through the response_url (%s); sent it to their DM", user, problem)
    elif channel:
        await client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
        return
    await client.chat_postMessage(channel=user, text=text, blocks=blocks)
