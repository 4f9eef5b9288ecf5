"""The request bodies Slack sends an app, built one way for the console, the tests and the benchmarks."""

from __future__ import annotations

import urllib.parse
from typing import Any


def slash_command(
    *,
    team_id: str,
    user_id: str,
    text: str,
    channel_id: str,
    response_url: str,
    trigger_id: str,
    command: str = "/reap",
    user_name: str | None = None,
    channel_name: str = "general",
    team_domain: str = "localslack",
    api_app_id: str = "A0REAPAPP",
) -> dict[str, str]:
    """The form fields Slack POSTs when `user_id` types `command text` in `channel_id`."""
    return {
        "token": "legacy",
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def form_body(fields: dict[str, str]) -> bytes:
    """Fields as the application/x-www-form-urlencoded body Slack sends."""
    return urllib.parse.urlencode(fields).encode()


def message_shortcut(
    *,
    team: dict[str, Any],
    user: dict[str, Any],
    channel: dict[str, Any],
    message: dict[str, Any],
    trigger_id: str,
    response_url: str,
    callback_id: str = "create_action_item",
    api_app_id: str = "A0REAPAPP",
) -> dict[str, Any]:
    """The payload Slack sends when `user` runs the message shortcut `callback_id` on `message`."""
    return {
        "type": "message_action",
        "token": "legacy",
        "callback_id": callback_id,
        "api_app_id": api_app_id,
        "team": team,
        "user": user,
        "channel": channel,
        "enterprise": None,
        "is_enterprise_install": False,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": message.get("ts"),
        "message": message,
    }
