"""End-to-end harness: the real app under uvicorn on loopback, localslack as Slack, signed requests."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import os
import re
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event
from sqlmodel import SQLModel

from bot.app import ReapApp, create_app
from bot.server import create_asgi
from bot.settings import Settings
from bot.signing import signed_headers
from localslack import payloads
from localslack.server import LocalSlack
from reminders.tick import ReminderParts
from storage.engine import Sessions, create_engine, session_factory

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-test-token"
TEAM = "T0REAP"


ROOT = Path(__file__).resolve().parents[1]


def cli_env(**values: str) -> dict[str, str]:
    """The environment for a `reap` subprocess: ours minus every REAP_/SLACK_/DATABASE_URL
    setting (so nothing leaks in from the developer's shell), plus PYTHONPATH and `values`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REAP_", "SLACK_", "DATABASE_URL"))}
    return {**base, "PYTHONPATH": str(ROOT), **values}


def free_port() -> int:
    """A TCP port on loopback that nothing is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(body: bytes, *, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    """Slack's signature headers for exactly these bytes."""
    return signed_headers(body, secret=secret, timestamp=int(time.time()) if timestamp is None else timestamp)


def signed_command(slack: LocalSlack, text: str, *, user: str = "U0OWNER") -> tuple[bytes, dict[str, str]]:
    """The body and signed headers of `/reap <text>` from `user` in TEAM, for a bot served over HTTP."""
    fields = payloads.slash_command(
        team_id=TEAM,
        user_id=user,
        text=text,
        channel_id="C1",
        response_url=slack.response_url(),
        trigger_id=slack.new_trigger_id(),
    )
    body = payloads.form_body(fields)
    return body, {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}


@dataclass
class Clock:
    """A settable clock the app reads instead of the real one."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 30, 15, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Bot:
    """A running REAP server and the Slack around it."""

    slack: LocalSlack
    app: ReapApp
    url: str
    http: httpx.AsyncClient
    sessions: Sessions
    clock: Clock
    team_id: str = TEAM
    # Set for a workspace served through an Enterprise Grid org's installation.
    enterprise_id: str | None = None

    def as_workspace(self, team_id: str, *, enterprise_id: str | None = None) -> Bot:
        """The same bot and Slack, with requests sent from another workspace (or an org's)."""
        return dataclasses.replace(self, team_id=team_id, enterprise_id=enterprise_id)

    def _org(self) -> dict[str, Any]:
        if self.enterprise_id is None:
            return {}
        return {"enterprise_id": self.enterprise_id, "is_enterprise_install": True}

    async def install(self, target: str, *, cookie: bool = True) -> httpx.Response:
        """Install the app into a workspace or org as its admin would: open /slack/install, follow
        Slack's authorize page (localslack approves for `target`), and land on the redirect."""
        self.slack.installing = target
        page = await self.http.get(f"{self.url}/slack/install")
        link = re.search(r'href="([^"]*/oauth/v2/authorize[^"]*)"', page.text)
        assert page.status_code == 200 and link is not None, page.text
        approved = await self.http.get(html.unescape(link.group(1)), follow_redirects=False)
        assert approved.status_code == 302, approved.text
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(approved.headers["location"]).query)["state"][0]
        headers = {"Cookie": f"slack-app-oauth-state={state}"} if cookie else {}
        return await self.http.get(approved.headers["location"], headers=headers)

    async def post(
        self, body: bytes, *, content_type: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST raw bytes to /slack/events, signed unless headers are given."""
        sent = {"Content-Type": content_type, **(headers if headers is not None else sign(body))}
        return await self.http.post(f"{self.url}/slack/events", content=body, headers=sent)

    async def command(self, user: str, text: str, *, channel: str = "C0GENERAL") -> httpx.Response:
        """Send `/reap <text>` as `user`, exactly as Slack would, and wait for follow-ups."""
        fields: dict[str, str] = payloads.slash_command(
            team_id=self.team_id,
            team_domain="phila",
            channel_id=channel,
            user_id=user,
            text=text,
            response_url=self.slack.response_url(),
            trigger_id=self.slack.new_trigger_id(),
        )
        if self.enterprise_id is not None:
            fields |= {"enterprise_id": self.enterprise_id, "is_enterprise_install": "true"}
        response = await self.post(
            payloads.form_body(fields), content_type="application/x-www-form-urlencoded"
        )
        await self.app.tasks.drain()
        return response

    async def interact(self, payload: dict[str, Any]) -> httpx.Response:
        """Send an interactivity payload (button, modal, shortcut) and wait for follow-ups."""
        body = ("payload=" + urllib.parse.quote(json.dumps(payload))).encode()
        response = await self.post(body, content_type="application/x-www-form-urlencoded")
        await self.app.tasks.drain()
        return response

    async def event(
        self, event: dict[str, Any], *, event_id: str, retry: int | None = None
    ) -> httpx.Response:
        """Send an Events API callback (optionally marked as Slack's retry)."""
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": self.team_id,
                "api_app_id": "A0REAPAPP",
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(time.time()),
                "event": event,
                **self._org(),
            }
        ).encode()
        headers = sign(body)
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        response = await self.post(body, content_type="application/json", headers=headers)
        await self.app.tasks.drain()
        return response

    async def step(
        self, callback_id: str, inputs: dict[str, Any], *, user: str | None = None
    ) -> dict[str, Any] | None:
        """Run one of our Workflow Builder steps as Slack does: localslack's signed function_executed
        event (as `user`, the workflow's user_context, when given); returns how the step ended,
        {"outputs": ...} or {"error": ...}, as localslack recorded it (None if it never ended)."""
        if user is not None:
            inputs = {"user_context": {"id": user, "secret": "c2VjcmV0"}, **inputs}
        event = self.slack.function_executed(
            callback_id, inputs, team_id=self.team_id, enterprise_id=self.enterprise_id
        )
        response = await self.event(event, event_id=f"Ev{event['function_execution_id']}")
        assert response.status_code == 200, response.text
        return self.slack.function_result(event["function_execution_id"])

    def block_action(
        self,
        user: str,
        action_id: str,
        *,
        value: str | None = None,
        selected: str | None = None,
        message: dict[str, Any] | None = None,
        channel: str | None = None,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """A block_actions payload for pressing a control on a message."""
        action: dict[str, Any] = {"action_id": action_id, "block_id": "b", "type": "button", "action_ts": "1"}
        if value is not None:
            action["value"] = value
        if selected is not None:
            action["type"] = "static_select"
            action["selected_option"] = {"text": {"type": "plain_text", "text": selected}, "value": selected}
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "team": {"id": self.team_id, "domain": "phila"},
            "api_app_id": "A0REAPAPP",
            "trigger_id": self.slack.new_trigger_id(),
            "response_url": self.slack.response_url(),
            "actions": [action],
            "state": {"values": {}},
        }
        if self.enterprise_id is not None:
            payload |= {"enterprise": {"id": self.enterprise_id}, "is_enterprise_install": True}
        if message is not None:
            payload["container"] = {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            }
            payload["channel"] = {"id": channel}
            payload["message"] = message
        else:
            payload["container"] = {
                "type": "message",
                "message_ts": "1.0",
                "channel_id": channel or "C0GENERAL",
                "is_ephemeral": True,
            }
            payload["channel"] = {"id": channel or "C0GENERAL"}
        return payload

    def message_shortcut(
        self,
        user: str,
        text: str,
        *,
        channel: str = "C0GENERAL",
        ts: str = "1767225950.000300",
        callback_id: str = "create_action_item",
    ) -> dict[str, Any]:
        """A message_action payload: `user` runs the message shortcut `callback_id` on `text`."""
        return payloads.message_shortcut(
            team={"id": self.team_id, "domain": "phila"},
            user={"id": user, "username": user.lower(), "team_id": self.team_id},
            channel={"id": channel},
            message={"type": "message", "text": text, "ts": ts},
            trigger_id=self.slack.new_trigger_id(),
            response_url=self.slack.response_url(),
            callback_id=callback_id,
        )

    def view_submission(self, user: str, view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """A view_submission payload for `view` (as opened) with the given state values."""
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "phila"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": "A0REAPAPP",
            "trigger_id": self.slack.new_trigger_id(),
            "view": {**view, "id": "V0MODAL", "state": {"values": values}, "team_id": self.team_id},
            "response_urls": [],
        }


@contextmanager
def failing_statement(
    bot: Bot, containing: str, *, nth: int = 1, problem: str = "the disk failed"
) -> Iterator[list[str]]:
    """Within the block, the `nth` statement the bot sends that contains `containing` raises
    RuntimeError(`problem`), as a failing disk or a bug of ours would; yields the matches seen."""
    engine = bot.sessions.kw["bind"].sync_engine
    seen: list[str] = []

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if containing in statement:
            seen.append(statement)
            if len(seen) == nth:
                raise RuntimeError(problem)

    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", fail)


def bot_settings(slack: LocalSlack, database_url: str, **overrides: Any) -> Settings:
    """Settings for a bot pointed at localslack."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": slack.base_url,
        "admins": ["U0ADMIN"],
        "slack_timeout_seconds": 5,
        # A stall of the shared test machine must not pass for a database outage and flip what a
        # test sees; the outage tests give requests production's 2.5 s (OUTAGE_DEADLINE).
        "request_database_seconds": 20,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_bot(
    database_url: str, *, identify: bool = True, oauth: bool = False, **overrides: Any
) -> AsyncIterator[Bot]:
    """Start localslack, create the schema, and serve the real app under uvicorn on a free port.

    With identify=False the app has not asked auth.test yet, so it holds every Slack request.
    With oauth=True it runs REAP_INSTALL=oauth with no bot token: nothing is installed until a
    test installs a workspace (`Bot.install`).
    """
    slack = LocalSlack(team_id=TEAM).start()
    if oauth:
        identify = False
        overrides = {
            "install": "oauth",
            "slack_bot_token": None,
            "slack_client_id": slack.client_id,
            "slack_client_secret": slack.client_secret,
            "slack_authorize_url": f"{slack.root_url}/oauth/v2/authorize",
            **overrides,
        }
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    sessions = session_factory(engine)
    clock = Clock()
    app = create_app(bot_settings(slack, database_url, **overrides), sessions=sessions, clock=clock)
    # The app serves no request until auth.test has named its workspace (start() would ask; the
    # harness leaves the ticker to each test, so it asks here).
    if identify and not await app.learn_identity():
        raise RuntimeError(f"auth.test failed: {app.identity.problem}")
    config = uvicorn.Config(
        create_asgi(app), host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # uvicorn offers no "started" event; poll briefly
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    slack.redirect_url = f"http://127.0.0.1:{port}/slack/oauth_redirect"
    http = httpx.AsyncClient(timeout=10)
    try:
        yield Bot(
            slack=slack, app=app, url=f"http://127.0.0.1:{port}", http=http, sessions=sessions, clock=clock
        )
    finally:
        await http.aclose()
        server.should_exit = True
        await task
        await app.close()
        await engine.dispose()
        slack.stop()


def parts_of(app: ReapApp) -> ReminderParts:
    """The reminder parts bot.runtime wired into `app`."""
    assert app.reminders is not None, "reminders are not installed on this app"
    return app.reminders
