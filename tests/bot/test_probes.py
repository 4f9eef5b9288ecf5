"""Probes for a city's IT: /livez asks nothing, /readyz names each failing check and recovers.

Each readiness reason is shown failing and then passing on the real server: the database, the
schema's migration, the ticker's heartbeat and Slack's auth.test. Until auth.test has named the
workspace, no Slack request is served (a slash command gets a polite retry, an event a 503).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlmodel import SQLModel

from bot.app import STARTING_UP, create_app
from bot.server import create_asgi
from localslack.server import Fault, LocalSlack
from reminders.scheduler import ReminderScheduler
from reminders.tick import scheduled_tick
from storage.engine import create_engine, session_factory
from storage.migrate import alembic_config
from tests.harness import TEAM, Bot, Clock, bot_settings, parts_of, running_bot

FOREIGN = "T0OTHER"
INITIAL_REVISION = "530f17d79d1f"


async def probe(bot: Bot, path: str) -> tuple[int, dict[str, Any]]:
    """GET `path` on the bot: status and JSON."""
    response = await bot.http.get(f"{bot.url}{path}")
    return response.status_code, response.json()


async def stamp(database_url: str, revision: str) -> None:
    """Record `revision` as the schema's migration, as `reap db upgrade` would have."""
    await asyncio.to_thread(command.stamp, alembic_config(database_url), revision)


async def eventually(what: str, ready: Callable[[], Awaitable[bool]], *, within: float = 10) -> None:
    """Poll `ready` until it is true, failing with `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await ready():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def command_body(bot: Bot, text: str, *, team: str) -> bytes:
    """`/reap <text>` as Slack would send it from `team`."""
    return urllib.parse.urlencode(
        {
            "team_id": team,
            "user_id": "U0OWNER",
            "channel_id": "C0GENERAL",
            "command": "/reap",
            "text": text,
            "trigger_id": bot.slack.new_trigger_id(),
            "response_url": bot.slack.response_url(),
        }
    ).encode()


def event_body(*, team: str, event_id: str) -> bytes:
    """An app_home_opened callback from `team`."""
    event = {"type": "app_home_opened", "user": "U0OWNER", "channel": "D0X", "tab": "home"}
    return json.dumps(
        {"team_id": team, "type": "event_callback", "event_id": event_id, "event_time": 1, "event": event}
    ).encode()


FORM = "application/x-www-form-urlencoded"


async def test_a_schema_behind_its_migrations_is_not_ready_until_upgraded(database_url: str):
    async with running_bot(database_url, ticker=False) as bot:
        assert await probe(bot, "/livez") == (200, {"ok": True})
        status, report = await probe(bot, "/readyz")
        assert status == 503
        assert report == {
            "database": "ok",
            "schema": "no migration applied; run `reap db upgrade`",
            "slack": "ok",
            "ok": False,
        }

        await stamp(database_url, INITIAL_REVISION)
        status, report = await probe(bot, "/readyz")
        assert status == 503
        assert report["schema"].startswith(f"the database is at {INITIAL_REVISION}, the code at ")

        await stamp(database_url, "head")
        ready = (200, {"database": "ok", "schema": "ok", "slack": "ok", "ok": True})
        assert await probe(bot, "/readyz") == ready
        assert await probe(bot, "/healthz") == ready, "/healthz is the old name of /readyz"


async def test_a_stale_ticker_is_not_ready_until_it_ticks_again(database_url: str):
    async with running_bot(database_url) as bot:
        await stamp(database_url, "head")
        scheduler = bot.app.scheduler
        assert isinstance(scheduler, ReminderScheduler)
        status, report = await probe(bot, "/readyz")
        assert (status, report["scheduler"]) == (503, "not running")

        await bot.app.start()

        async def ticked() -> bool:
            return scheduler.ticks >= 1

        await eventually("the first tick", ticked)
        assert await probe(bot, "/readyz") == (
            200,
            {"database": "ok", "schema": "ok", "slack": "ok", "scheduler": "ok", "ok": True},
        )

        bot.clock.now += timedelta(minutes=10)
        status, report = await probe(bot, "/readyz")
        assert (status, report["scheduler"], report["ok"]) == (503, "last tick 600 s ago", False)

        await scheduled_tick(parts_of(bot.app), bot.clock())
        status, report = await probe(bot, "/readyz")
        assert (status, report["scheduler"]) == (200, "ok")


async def test_until_auth_test_succeeds_no_workspace_is_served_and_it_is_retried(database_url: str):
    async with running_bot(database_url, ticker=False, identify=False) as bot:
        await stamp(database_url, "head")
        bot.slack.fail_next("auth.test", Fault(error="invalid_auth"), times=1000)
        bot.app.identity_retry = (0.01, 0.05)
        await bot.app.start()
        status, report = await probe(bot, "/readyz")
        assert (status, report["slack"], report["ok"]) == (503, "auth.test said invalid_auth", False)

        for team in (TEAM, FOREIGN):
            held = await bot.post(command_body(bot, "help", team=team), content_type=FORM)
            assert held.status_code == 200
            assert held.json() == {"response_type": "ephemeral", "text": STARTING_UP}
            event = await bot.post(
                event_body(team=team, event_id=f"Ev{team}"), content_type="application/json"
            )
            assert event.status_code == 503, "Slack retries an event answered 503"
        await bot.app.tasks.drain()
        assert not bot.slack.calls_to("views.publish"), "no event was handled"

        bot.slack.reset()  # auth.test answers again

        async def ready() -> bool:
            return (await probe(bot, "/readyz"))[0] == 200

        await eventually("auth.test to be retried", ready)
        assert bot.app.identity.team_id == TEAM
        assert len(bot.slack.calls_to("auth.test")) == 1, "retrying stops once it has answered"

        served = await bot.post(command_body(bot, "help", team=TEAM), content_type=FORM)
        assert served.status_code == 200 and "/reap" in served.json()["text"]
        assert served.json()["text"] != STARTING_UP
        foreign = await bot.post(command_body(bot, "help", team=FOREIGN), content_type=FORM)
        assert foreign.status_code == 403
        event = await bot.post(event_body(team=FOREIGN, event_id="EvLate"), content_type="application/json")
        assert event.status_code == 403


async def test_an_unreachable_database_is_not_ready_but_the_process_is_live(tmp_path: Path):
    """SQLite in a folder that does not exist yet cannot be opened; once it exists, all is well."""
    folder = tmp_path / "not-yet"
    url = f"sqlite+aiosqlite:///{folder}/reap.db"
    with LocalSlack(team_id=TEAM) as slack:
        engine = create_engine(url)
        app = create_app(
            bot_settings(slack, url, ticker=False), sessions=session_factory(engine), clock=Clock()
        )
        assert await app.learn_identity()
        transport = httpx.ASGITransport(app=create_asgi(app, manage_lifecycle=False))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://reap") as http:
                assert (await http.get("/livez")).status_code == 200
                answer = await http.get("/readyz")
                assert answer.status_code == 503
                assert answer.json() == {
                    "database": "unreachable: OperationalError",
                    "schema": "not checked: the database is unreachable",
                    "slack": "ok",
                    "ok": False,
                }

                folder.mkdir()
                async with engine.begin() as connection:
                    await connection.run_sync(SQLModel.metadata.create_all)
                await stamp(url, "head")
                answer = await http.get("/readyz")
                assert (answer.status_code, answer.json()["ok"]) == (200, True)
        finally:
            await app.close()
            await engine.dispose()
