"""Hostile requests: forged, stale, replayed, foreign or unauthorised; all refused, logged, harmless.

Each case runs against the real HTTP server with the OIT plan (OIT-1 belongs to OWNER) and checks
the answer, that no row changed (row counts, audit events, items, people) and that nothing reached
a channel or DM. Refusals at the door (signature, workspace) must leave a log line; that permission
refusals do too is asserted separately, as an expected failure until the handlers log them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

import httpx
import pytest
import pytest_asyncio

from bot import server as front_door
from messages.blocks import DONE, SNOOZE, UPDATE, UPDATE_MODAL
from tests.factories import COORDINATOR, OTHER, OWNER
from tests.harness import SECRET, Bot, sign
from tests.security import (
    FORM,
    JSON,
    MESSAGE_METHODS,
    seeded_bot,
    snapshot,
    throwaway_database,
    visible_calls,
)

FOREIGN_TEAM = "T0OTHER"
WINDOW = front_door.SIGNATURE_WINDOW_SECONDS
Refusal = Literal["signature", "workspace", "permission"]


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan that has learned its own workspace (T0REAP) from auth.test."""
    async with seeded_bot(database_url) as bot:
        await bot.app.learn_identity()
        assert bot.app.identity.team_id == bot.team_id
        yield bot


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def shared_bot(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Bot]:
    """One bot per backend for the whole table (every case is refused and checks its own snapshot)."""
    async with (
        throwaway_database(request.param, tmp_path_factory.mktemp("hostile")) as url,
        seeded_bot(url) as bot,
    ):
        await bot.app.learn_identity()
        assert bot.app.identity.team_id == bot.team_id
        yield bot


def command_body(bot: Bot, user: str, text: str, *, team: str | None = None) -> bytes:
    """The form body of `/reap <text>` from `user` (in `team`, by default the bot's own)."""
    return urllib.parse.urlencode(
        {
            "token": "legacy",
            "team_id": team or bot.team_id,
            "channel_id": "C0GENERAL",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/reap",
            "text": text,
            "api_app_id": "A0REAPAPP",
            "response_url": bot.slack.response_url(),
            "trigger_id": bot.slack.new_trigger_id(),
        }
    ).encode()


def foreign(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as if it came from another workspace where the app is also installed."""
    return {
        **payload,
        "team": {"id": FOREIGN_TEAM, "domain": "elsewhere"},
        "user": {**payload["user"], "team_id": FOREIGN_TEAM},
    }


def form_payload(payload: dict[str, Any]) -> bytes:
    """An interactivity body as Slack sends it."""
    return ("payload=" + urllib.parse.quote(json.dumps(payload))).encode()


def signed_with_timestamp(body: bytes, timestamp: str) -> dict[str, str]:
    """Headers carrying `timestamp` verbatim, with the signature a holder of the secret would compute."""
    digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    """`headers` less one of them."""
    return {k: v for k, v in headers.items() if k != name}


def update_values() -> dict[str, Any]:
    """A complete, valid Update modal: on track, 60%, with a note."""
    return {
        "status": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress": {"value": {"type": "number_input", "value": "60"}},
        "note": {"value": {"type": "plain_text_input", "value": "taken over"}},
    }


def update_modal(bot: Bot, user: str) -> dict[str, Any]:
    """`user` submitting the Update modal for OIT-1 with valid values."""
    view = {"type": "modal", "callback_id": UPDATE_MODAL, "private_metadata": json.dumps({"ref": "OIT-1"})}
    return bot.view_submission(user, view, update_values())


async def done_command(bot: Bot, headers: Callable[[bytes], dict[str, str]]) -> httpx.Response:
    """OWNER's `/reap done OIT-1` (a real change, were it accepted) with the given headers."""
    body = command_body(bot, OWNER, "done OIT-1")
    return await bot.post(body, content_type=FORM, headers=headers(body))


async def altered_after_signing(bot: Bot) -> httpx.Response:
    """OWNER's `/reap done OIT-1`, signed, then changed to OIT-2 (one byte) on the way."""
    body = command_body(bot, OWNER, "done OIT-1")
    headers = sign(body)
    tampered = body.replace(b"OIT-1", b"OIT-2")
    assert len(tampered) == len(body) and sum(a != b for a, b in zip(body, tampered, strict=True)) == 1
    return await bot.post(tampered, content_type=FORM, headers=headers)


async def respaced_json(bot: Bot) -> httpx.Response:
    """An App Home event signed compactly, sent re-serialized with other spacing (same JSON value)."""
    event = {
        "token": "legacy",
        "team_id": bot.team_id,
        "type": "event_callback",
        "event_id": "Ev0RESPACED",
        "event": {"type": "app_home_opened", "user": OWNER, "tab": "home"},
    }
    signed = json.dumps(event, separators=(",", ":")).encode()
    respaced = json.dumps(event, indent=2).encode()
    assert json.loads(respaced) == json.loads(signed)
    return await bot.post(respaced, content_type=JSON, headers=sign(signed))


async def ssl_check_unsigned(bot: Bot) -> httpx.Response:
    """Slack's ssl_check probe without a signature (Bolt once skipped verification for it)."""
    return await bot.post(b"ssl_check=1&token=legacy", content_type=FORM, headers={})


async def foreign_command(bot: Bot) -> httpx.Response:
    """`/reap done OIT-1` from OWNER's id, but in another workspace."""
    return await bot.post(command_body(bot, OWNER, "done OIT-1", team=FOREIGN_TEAM), content_type=FORM)


async def foreign_button(bot: Bot) -> httpx.Response:
    """Done on OIT-1 pressed by OWNER's id in another workspace."""
    return await bot.interact(foreign(bot.block_action(OWNER, DONE, value="OIT-1")))


async def foreign_modal(bot: Bot) -> httpx.Response:
    """A valid Update modal for OIT-1 from OWNER's id in another workspace."""
    return await bot.interact(foreign(update_modal(bot, OWNER)))


async def foreign_event(bot: Bot) -> httpx.Response:
    """An App Home event from another workspace."""
    event = {"type": "app_home_opened", "user": OWNER, "tab": "home"}
    body = json.dumps(
        {"team_id": FOREIGN_TEAM, "type": "event_callback", "event_id": "Ev0FOREIGN", "event": event}
    ).encode()
    return await bot.post(body, content_type=JSON)


async def button(
    bot: Bot, action_id: str, *, value: str | None = None, selected: str | None = None
) -> httpx.Response:
    """OTHER pressing a control on OIT-1, which belongs to OWNER."""
    return await bot.interact(bot.block_action(OTHER, action_id, value=value, selected=selected))


@dataclass(frozen=True)
class Hostile:
    """One hostile request, the status that refuses it, and which check refuses it."""

    send: Callable[[Bot], Awaitable[httpx.Response]]
    status: int
    refusal: Refusal
    evidence: str  # what the log line about it must mention: who or what was refused


def now() -> int:
    """The current Unix time, as Slack stamps requests."""
    return int(time.time())


def at_the_door(send: Callable[[Bot], Awaitable[httpx.Response]]) -> Hostile:
    """A request the signature check refuses with 401."""
    return Hostile(send, 401, "signature", "refused")


def headers_for(make: Callable[[bytes], dict[str, str]]) -> Hostile:
    """OWNER's `/reap done OIT-1` with headers made by `make`, refused at the door."""
    return at_the_door(lambda b: done_command(b, make))


def from_abroad(send: Callable[[Bot], Awaitable[httpx.Response]]) -> Hostile:
    """A request the workspace check refuses with 403."""
    return Hostile(send, 403, "workspace", FOREIGN_TEAM)


def not_allowed(user: str, send: Callable[[Bot], Awaitable[httpx.Response]]) -> Hostile:
    """A well-formed request from `user` that the permission checks refuse (the person is told)."""
    return Hostile(send, 200, "permission", user)


def v1_signature(body: bytes) -> dict[str, str]:
    """A correct HMAC presented under another scheme's prefix."""
    headers = sign(body)
    return {**headers, "X-Slack-Signature": headers["X-Slack-Signature"].replace("v0=", "v1=")}


HOSTILE = {
    "forged signature": headers_for(lambda body: sign(body, secret="guessed")),
    "signed with an empty secret": headers_for(lambda body: sign(body, secret="")),
    "timestamp 301 s old": headers_for(lambda body: sign(body, timestamp=now() - WINDOW - 1)),
    "timestamp 301 s in the future": headers_for(lambda body: sign(body, timestamp=now() + WINDOW + 1)),
    "valid request replayed six minutes later": headers_for(lambda body: sign(body, timestamp=now() - 360)),
    "timestamp that is not a whole number": headers_for(
        lambda body: signed_with_timestamp(body, f"{now()}.0")
    ),
    "negative timestamp": headers_for(lambda body: signed_with_timestamp(body, f"-{now()}")),
    "signature of another scheme (v1=)": headers_for(v1_signature),
    "no signature header": headers_for(lambda body: without(sign(body), "X-Slack-Signature")),
    "no timestamp header": headers_for(lambda body: without(sign(body), "X-Slack-Request-Timestamp")),
    "no headers at all": headers_for(lambda body: {}),
    "body altered by one byte after signing": at_the_door(altered_after_signing),
    "JSON re-serialized with different spacing": at_the_door(respaced_json),
    "ssl_check=1 without a signature": at_the_door(ssl_check_unsigned),
    "slash command from another workspace": from_abroad(foreign_command),
    "button press from another workspace": from_abroad(foreign_button),
    "modal submission from another workspace": from_abroad(foreign_modal),
    "event from another workspace": from_abroad(foreign_event),
    "Done button naming someone else's item": not_allowed(OTHER, lambda b: button(b, DONE, value="OIT-1")),
    "Snooze menu naming someone else's item": not_allowed(
        OTHER, lambda b: button(b, SNOOZE, selected="OIT-1|1w")
    ),
    "Update button naming someone else's item": not_allowed(
        OTHER, lambda b: button(b, UPDATE, value="OIT-1")
    ),
    "Update modal naming someone else's item": not_allowed(
        OTHER, lambda b: b.interact(update_modal(b, OTHER))
    ),
    "rollup by a member": not_allowed(OWNER, lambda b: b.command(OWNER, "rollup FY2027-Q2")),
    "rollup of a department by a member": not_allowed(
        OTHER, lambda b: b.command(OTHER, "rollup FY2027-Q2 OIT")
    ),
    "role by a member, promoting themself": not_allowed(
        OWNER, lambda b: b.command(OWNER, f"role <@{OWNER}> coordinator OIT")
    ),
    "role by a coordinator who is not an admin": not_allowed(
        COORDINATOR, lambda b: b.command(COORDINATOR, f"role <@{OTHER}> coordinator OIT")
    ),
}

PERMISSION_CASES = [name for name, case in HOSTILE.items() if case.refusal == "permission"]


def refusal_logged(caplog: pytest.LogCaptureFixture, case: str) -> bool:
    """Whether one of our loggers said, at INFO or above, what was refused."""
    evidence = HOSTILE[case].evidence
    return any(
        record.levelno >= logging.INFO
        and record.name.startswith(("bot.", "commands.", "storage."))
        and evidence in record.getMessage()
        for record in caplog.records
    )


def told_they_cannot(bot: Bot, response: httpx.Response, *, replies: int, ephemerals: int) -> bool:
    """Whether the person was just told, in the ack, a response_url reply or an ephemeral, that they can't."""
    said = [
        response.text,
        *map(str, bot.slack.responses()[replies:]),
        *map(str, bot.slack.ephemerals()[ephemerals:]),
    ]
    return any("can't" in text or "can\\u2019t" in text for text in said)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", list(HOSTILE))
async def test_a_hostile_request_is_refused_and_changes_nothing(
    shared_bot: Bot, caplog: pytest.LogCaptureFixture, case: str
):
    bot, hostile = shared_bot, HOSTILE[case]
    before, calls = await snapshot(bot), len(bot.slack.calls)
    replies, ephemerals = len(bot.slack.responses()), len(bot.slack.ephemerals())
    caplog.set_level(logging.INFO)

    response = await hostile.send(bot)
    await bot.app.tasks.drain()

    assert response.status_code == hostile.status, response.text
    assert await snapshot(bot) == before
    assert visible_calls(bot, since=calls, methods=MESSAGE_METHODS) == [], "nothing reaches a channel or DM"
    if hostile.refusal == "permission":
        told = told_they_cannot(bot, response, replies=replies, ephemerals=ephemerals)
        assert told, "the person is told why, and who may"
        seen = {c.method for c in visible_calls(bot, since=calls)}
        assert seen <= {"webhook", "chat.postEphemeral"}, f"only the refusal is sent: {seen}"
    else:
        assert bot.slack.calls[calls:] == [], "a request refused at the door costs no Slack call"
        assert refusal_logged(caplog, case), [r.getMessage() for r in caplog.records]


async def test_every_refused_change_leaves_a_log_line_naming_who_tried(
    bot: Bot, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    unlogged = []
    for case in PERMISSION_CASES:
        caplog.clear()
        await HOSTILE[case].send(bot)
        await bot.app.tasks.drain()
        if not refusal_logged(caplog, case):
            unlogged.append(case)

    assert unlogged == []


async def test_a_valid_request_replayed_after_five_minutes_is_refused(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
):
    body = command_body(bot, OWNER, 'note OIT-1 "replay me"')
    headers = sign(body)
    first = await bot.post(body, content_type=FORM, headers=headers)
    await bot.app.tasks.drain()
    assert first.status_code == 200 and "Noted on OIT-1" in first.text
    before = await snapshot(bot)

    # The same bytes and headers, captured and sent again once the five-minute window has passed.
    later = time.time() + WINDOW + 60
    monkeypatch.setattr(front_door, "time", SimpleNamespace(time=lambda: later))
    replayed = await bot.post(body, content_type=FORM, headers=headers)
    await bot.app.tasks.drain()

    assert replayed.status_code == 401
    assert await snapshot(bot) == before


async def test_a_payload_naming_another_workspace_only_through_its_user_is_refused(bot: Bot):
    payload = {
        **bot.block_action(OTHER, DONE, value="OIT-1"),
        "team": None,
        "user": {"id": OTHER, "team_id": FOREIGN_TEAM},
    }
    before = await snapshot(bot)

    response = await bot.interact(payload)

    assert response.status_code == 403
    assert await snapshot(bot) == before
