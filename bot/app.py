"""The app factory: builds the Bolt app and its services from explicit arguments, with no I/O."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped, warning_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

import commands
from bot import runtime
from bot.settings import Settings
from bot.slack import make_client
from commands.handlers import team_of
from commands.service import Reap
from reminders.scheduler import ReminderScheduler
from reminders.tick import ReminderParts
from storage.engine import Sessions, create_engine, session_factory

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The real clock (tests and the console pass their own)."""
    return datetime.now(UTC)


class BackgroundTasks:
    """Work that runs after the ack: tracked so it is not garbage-collected, logged if it fails."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed: %r", task.exception())

    async def drain(self) -> None:
        """Wait until every background task (and any it spawned) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


@dataclass
class Identity:
    """Who the bot is in its workspace, learned once from auth.test instead of on every request."""

    team_id: str | None = None
    bot_user_id: str | None = None
    bot_id: str | None = None


@dataclass
class ReapApp:
    """Everything one process runs: the Bolt app, its services, and what must be closed at exit."""

    settings: Settings
    bolt: AsyncApp
    reap: Reap
    engine: AsyncEngine | None
    sessions: Sessions
    client: AsyncWebClient
    tasks: BackgroundTasks
    identity: Identity
    health_checks: dict[str, Callable[[], Coroutine[Any, Any, str | None]]] = field(default_factory=dict)
    # One reminder tick at an instant (plan, then deliver); wired by bot.runtime.
    ticker: Callable[[datetime], Coroutine[Any, Any, Any]] | None = None
    reminders: ReminderParts | None = None
    scheduler: ReminderScheduler | None = None
    starters: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    stoppers: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)

    async def learn_identity(self) -> None:
        """Ask auth.test once who the bot is; failures are logged and retried later, not per request."""
        try:
            answer = await self.client.auth_test()
        except Exception as exc:
            log.warning("auth.test failed (%s); will retry", type(exc).__name__)
            return
        self.identity.team_id = str(answer.get("team_id") or "") or None
        self.identity.bot_user_id = answer.get("user_id")
        self.identity.bot_id = answer.get("bot_id")

    async def start(self) -> None:
        """Start what a serving process runs besides answering requests (identity, ticker)."""
        await self.learn_identity()
        for starter in self.starters:
            await starter()

    async def close(self) -> None:
        """Stop background services, finish background work and release the database."""
        for stopper in reversed(self.stoppers):
            await stopper()
        await self.tasks.drain()
        if self.engine is not None:
            await self.engine.dispose()


class _QuietTokenNotices(logging.Filter):
    """Bolt warns that its own SLACK_BOT_TOKEN lookup is superseded; we pass the token on purpose."""

    _notices = (warning_client_prioritized_and_token_skipped(), warning_token_skipped())

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self._notices


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("reap.bolt")
    if not any(isinstance(f, _QuietTokenNotices) for f in logger.filters):
        logger.addFilter(_QuietTokenNotices())
    return logger


def create_app(
    settings: Settings,
    *,
    client: AsyncWebClient | None = None,
    sessions: Sessions | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> ReapApp:
    """Build the REAP Bolt app. Nothing here touches the network or the database."""
    settings.require("slack_signing_secret")
    client = client or make_client(settings)
    engine: AsyncEngine | None = None
    if sessions is None:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
    tasks = BackgroundTasks()
    identity = Identity()
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None

    async def authorize(enterprise_id: str | None, team_id: str | None, **_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=token,
            bot_user_id=identity.bot_user_id,
            bot_id=identity.bot_id,
        )

    bolt = AsyncApp(
        client=client,
        logger=_bolt_logger(),
        signing_secret=settings.secret("slack_signing_secret"),
        # bot/server.py verifies every HTTP request (against the current and, during a rotation, the
        # previous secret) before Bolt sees it; Socket Mode needs no signature.
        request_verification_enabled=False,
        authorize=authorize,
        # Handlers finish their database work in milliseconds and defer Slack calls to tasks,
        # so answering after the listener avoids Bolt's 10 ms ack-polling loop.
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    reap = Reap(org=settings.organisation(), sessions=sessions, clock=clock, spawn=tasks.spawn, client=client)

    @bolt.middleware
    async def provide_services(context: AsyncBoltContext, body: dict[str, Any], next: Any) -> Any:
        team = team_of(body)
        if identity.team_id and team != "None" and team != identity.team_id:
            log.warning("refused a request from another workspace (%s)", team)
            return BoltResponse(status=403, body="")
        context["reap"] = reap
        return await next()

    commands.register(bolt)
    app = ReapApp(
        settings=settings,
        bolt=bolt,
        reap=reap,
        engine=engine,
        sessions=sessions,
        client=client,
        tasks=tasks,
        identity=identity,
    )
    runtime.install(app)
    return app
