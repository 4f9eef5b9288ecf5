"""`reap socket`: the same app answers over Socket Mode, envelopes in and acks out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import WSMsgType, web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from sqlmodel import SQLModel

from bot.app import create_app
from bot.server import create_health_asgi
from bot.socketmode import SocketModeDead, SocketWatchdog, quiet_for, serve_socket_mode
from localslack.server import Fault, LocalSlack
from storage.engine import create_engine, session_factory
from tests.harness import SECRET, TEAM, TOKEN, cli_env, free_port


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


async def serve_websocket(handle: Any) -> tuple[web.AppRunner, str]:
    """Serve `handle` as a WebSocket endpoint on a free loopback port; the runner and its ws:// URL."""
    app = web.Application()
    app.router.add_get("/link", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"ws://127.0.0.1:{runner.addresses[0][1]}/link"


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
    runner, socket_url = await serve_websocket(server.handle)
    slack = LocalSlack(team_id=TEAM).start()
    slack.add_user("U0OWNER", "owner")
    slack.socket_url = socket_url
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


@pytest.mark.parametrize(
    ("last_pong", "quiet_since", "expected"),
    [(95.0, 0.0, 5.0), (None, 90.0, 10.0), (100.0, 0.0, 0.0)],
    ids=["since-last-pong", "no-pong-yet", "just-ponged"],
)
def test_quiet_time_counts_from_the_last_pong_or_from_when_we_last_looked(
    last_pong: float | None, quiet_since: float, expected: float
):
    assert quiet_for(last_pong, now=100.0, quiet_since=quiet_since) == expected


@dataclass
class DeafThenHealthy:
    """A Socket Mode server whose first connection never answers a ping (half-open), and whose
    later connections say hello, send one event and collect its ack."""

    event: dict[str, Any]
    connections: int = 0
    acks: list[dict[str, Any]] = field(default_factory=list)
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        self.connections += 1
        first = self.connections == 1
        ws = web.WebSocketResponse(autoping=not first)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        if not first:
            await ws.send_str(json.dumps(envelope(f"e{self.connections}", "events_api", self.event)))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.acks.append(json.loads(message.data))
                self.acked.set()
        return ws


async def test_the_watchdog_reconnects_a_deaf_session_that_the_sdk_gave_up_on(socket_world):
    """The zombie from the trackers: pongs stop, the SDK's own monitor is gone, nothing reconnects."""
    slack, _, reap = socket_world
    server = DeafThenHealthy(
        event={
            "type": "event_callback",
            "team_id": TEAM,
            "event_id": "EvSock9",
            "event": {"type": "app_home_opened", "user": "U0OWNER", "tab": "home"},
        }
    )
    runner, slack.socket_url = await serve_websocket(server.handle)
    handler = AsyncSocketModeHandler(reap.bolt, reap.settings.secret("slack_app_token"), ping_interval=0.2)
    client = handler.client
    client.default_auto_reconnect_enabled = client.auto_reconnect_enabled = False
    watchdog = SocketWatchdog(client, interval=0.1, reconnect_timeout=5)
    await reap.start()
    task = asyncio.create_task(serve_socket_mode(handler, watchdog))
    try:
        for _ in range(100):  # wait for the first session, then take the SDK's monitor away
            if client.current_session_monitor is not None:
                break
            await asyncio.sleep(0.05)
        client.current_session_monitor.cancel()
        await asyncio.wait_for(server.acked.wait(), timeout=20)
        await reap.tasks.drain()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.cleanup()
    assert watchdog.reconnects >= 1 and server.connections >= 2
    assert len(slack.calls_to("apps.connections.open")) >= 2, "each reconnect asks for a fresh URL"
    assert [ack["envelope_id"] for ack in server.acks][:1] == ["e2"]
    assert len(slack.calls_to("views.publish")) == 1, "the event on the new session was handled"


async def test_the_watchdog_gives_up_when_reconnecting_keeps_failing(socket_world):
    """With Slack's Socket Mode unreachable the watchdog raises, so `reap socket` exits 1."""
    slack, _, reap = socket_world
    handler = AsyncSocketModeHandler(reap.bolt, reap.settings.secret("slack_app_token"), ping_interval=0.05)
    client = handler.client
    client.last_ping_pong_time = None
    slack.fail_next("apps.connections.open", Fault(error="internal_error"), times=100)
    watchdog = SocketWatchdog(client, interval=0.05, reconnect_timeout=1, max_failures=3)
    try:
        with pytest.raises(SocketModeDead, match="3 reconnects in a row failed"):
            await asyncio.wait_for(watchdog.run(), timeout=20)
    finally:
        await handler.close_async()
    assert watchdog.reconnects == 0


async def test_an_app_without_socket_mode_is_one_clear_error_not_an_endless_retry(socket_world):
    """apps.connections.open refused: `reap socket` stops with Slack's reason instead of looping."""
    slack, _, reap = socket_world
    slack.socket_url = None
    handler = AsyncSocketModeHandler(reap.bolt, reap.settings.secret("slack_app_token"))
    watchdog = SocketWatchdog(handler.client)
    with pytest.raises(SocketModeDead, match=r"refused apps.connections.open \(socket_mode_not_enabled\)"):
        await asyncio.wait_for(serve_socket_mode(handler, watchdog, connect_timeout=5), timeout=20)
    assert len(slack.calls_to("apps.connections.open")) == 1


async def test_the_watchdogs_health_turns_bad_when_pongs_stop(socket_world):
    """/healthz of `reap socket --health-port`: ok while pongs come back, the quiet time when not."""
    _, _, reap = socket_world
    handler = AsyncSocketModeHandler(reap.bolt, reap.settings.secret("slack_app_token"), ping_interval=10)
    now = [1_000.0]
    watchdog = SocketWatchdog(handler.client, clock=lambda: now[0])
    try:
        handler.client.last_ping_pong_time = 995.0
        assert await watchdog.health() is None
        now[0] = 1_070.0
        assert await watchdog.health() == "no pong for 75 s"

        reap.health_checks["socket_mode"] = watchdog.health
        transport = httpx.ASGITransport(app=create_health_asgi(reap))
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as probe:
            health = await probe.get("/healthz")
            events = await probe.post("/slack/events", content=b"{}")
    finally:
        await handler.close_async()
    assert health.status_code == 503
    report = health.json()
    assert (report["database"], report["socket_mode"], report["ok"]) == ("ok", "no pong for 75 s", False)
    assert events.status_code in (404, 405), "Socket Mode serves no Slack endpoint over HTTP"


async def test_reap_socket_answers_health_probes_while_connected(tmp_path: Path):
    """`reap socket --health-port` as an operator runs it: connected, and saying so over HTTP."""
    server = SocketServer(envelopes=[])
    runner, socket_url = await serve_websocket(server.handle)
    with LocalSlack(team_id=TEAM) as slack:
        slack.socket_url = socket_url
        env = cli_env(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/reap.db",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_APP_TOKEN="xapp-1-probe",
            SLACK_API_URL=slack.base_url,
            REAP_TICKER="false",
        )
        upgrade = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "db", "upgrade", env=env, stdout=asyncio.subprocess.DEVNULL
        )
        assert await upgrade.wait() == 0
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot.cli", "socket", "--health-port", str(port)),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            report = None
            async with httpx.AsyncClient(timeout=1) as probe:
                for _ in range(300):
                    with contextlib.suppress(httpx.TransportError):
                        answer = await probe.get(f"http://127.0.0.1:{port}/healthz")
                        if answer.status_code == 200:
                            report = answer.json()
                            break
                    await asyncio.sleep(0.1)
            assert report == {
                "database": "ok",
                "schema": "ok",
                "slack": "ok",
                "socket_mode": "ok",
                "ok": True,
            }
            assert len(slack.calls_to("apps.connections.open")) == 1
        finally:
            process.terminate()
            output, _ = await process.communicate()
            await runner.cleanup()
    assert "Traceback" not in output.decode(), output.decode()
