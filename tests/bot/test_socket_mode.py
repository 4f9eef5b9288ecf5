"""`reap socket`: the same app answers over Socket Mode, envelopes in and acks out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from sqlmodel import SQLModel

from bot.app import create_app
from bot.localslack import LocalSlack
from storage.engine import create_engine, session_factory
from tests.harness import SECRET, TEAM, TOKEN


@dataclass
class SocketServer:
    """A WebSocket endpoint speaking Slack's Socket Mode: hello, then envelopes; collects acks."""

    envelopes: list[dict[str, Any]]
    acks: list[dict[str, Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        for envelope in self.envelopes:
            await ws.send_str(json.dumps(envelope))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.acks.append(json.loads(message.data))
                if len(self.acks) >= len(self.envelopes):
                    self.done.set()
        return ws


def envelope(envelope_id: str, kind: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "envelope_id": envelope_id,
        "type": kind,
        "accepts_response_payload": kind != "events_api",
        "payload": payload,
        **extra,
    }


@pytest.fixture
async def socket_world(tmp_path: Path) -> AsyncIterator[tuple[LocalSlack, SocketServer, Any]]:
    """localslack, a Socket Mode server sending one command and an event twice (a retry), and the app."""
    home = {
        "type": "event_callback",
        "team_id": TEAM,
        "event_id": "EvSock1",
        "event": {"type": "app_home_opened", "user": "U0OWNER", "tab": "home"},
    }
    server = SocketServer(
        envelopes=[
            envelope(
                "e1",
                "slash_commands",
                {
                    "team_id": TEAM,
                    "user_id": "U0OWNER",
                    "command": "/reap",
                    "text": "help done",
                    "channel_id": "C1",
                    "trigger_id": "t1",
                    "response_url": "http://127.0.0.1:9/none",
                },
            ),
            envelope("e2", "events_api", home),
            envelope("e3", "events_api", home, retry_attempt=1, retry_reason="timeout"),
        ]
    )
    app = web.Application()
    app.router.add_get("/link", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    slack = LocalSlack(team_id=TEAM).start()
    slack.add_user("U0OWNER", "owner")
    slack.socket_url = f"ws://127.0.0.1:{port}/link"
    url = f"sqlite+aiosqlite:///{tmp_path}/reap.db"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    from bot.settings import Settings

    settings = Settings(
        database_url=url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,  # type: ignore[call-arg]
        slack_app_token="xapp-1-test",
        slack_api_url=slack.base_url,
        ticker=False,
    )
    reap = create_app(settings, sessions=session_factory(engine))
    try:
        yield slack, server, reap
    finally:
        await reap.close()
        await engine.dispose()
        slack.stop()
        await runner.cleanup()


async def test_commands_and_events_arrive_over_socket_mode_and_retries_are_processed_once(socket_world):
    slack, server, reap = socket_world
    handler = AsyncSocketModeHandler(reap.bolt, reap.settings.secret("slack_app_token"))
    await reap.start()
    await handler.connect_async()
    try:
        await asyncio.wait_for(server.done.wait(), timeout=20)
        await reap.tasks.drain()
    finally:
        await handler.close_async()
    acks = {ack["envelope_id"]: ack for ack in server.acks}
    assert set(acks) == {"e1", "e2", "e3"}
    assert "/reap done <ref>" in json.dumps(acks["e1"].get("payload"))
    assert len(slack.calls_to("views.publish")) == 1, "the retried event is handled once"
