"""The request bodies Slack sends an app, built one way for the console, the tests and the benchmarks."""

from __future__ import annotations

import urllib.parse


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
