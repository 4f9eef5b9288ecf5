"""The front door: signatures checked on raw bytes, with an overlap window for secret rotation."""

from __future__ import annotations

import urllib.parse

import pytest

from bot.server import parse_slack_body
from tests.harness import SECRET, running_bot, sign


async def test_during_a_rotation_both_the_new_and_the_previous_secret_verify(database_url: str):
    async with running_bot(
        database_url, slack_signing_secret="brand-new-secret", slack_signing_secret_previous=SECRET
    ) as bot:
        body = urllib.parse.urlencode(
            {
                "team_id": bot.team_id,
                "user_id": "U0X",
                "command": "/reap",
                "text": "help",
                "trigger_id": "t",
                "response_url": bot.slack.response_url(),
            }
        ).encode()
        form = "application/x-www-form-urlencoded"
        assert (await bot.post(body, content_type=form, headers=sign(body))).status_code == 200
        new = sign(body, secret="brand-new-secret")
        assert (await bot.post(body, content_type=form, headers=new)).status_code == 200
        other = sign(body, secret="someone-else")
        assert (await bot.post(body, content_type=form, headers=other)).status_code == 401


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            "command=%2Freap&text=payload+map",
            "application/x-www-form-urlencoded",
            {"command": "/reap", "text": "payload map"},
        ),
        ('payload={"type":"block_actions"}', "application/x-www-form-urlencoded", {"type": "block_actions"}),
        ('{"type":"event_callback"}', "application/json", {"type": "event_callback"}),
        ("{not json", "application/x-www-form-urlencoded", {"{not json": ""}),
        ("{not json", "application/json", None),
        ("[1, 2]", "application/json", None),
        ("payload=%7Bbroken", "application/x-www-form-urlencoded", None),
    ],
)
def test_bodies_are_parsed_by_the_fields_present(body: str, content_type: str, expected: object):
    assert parse_slack_body(body, content_type) == expected
