"""The app factory: builds the Bolt app and its services from explicit arguments, with no I/O."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped, warning_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

import commands
from bot import runtime
from bot.installs import (
    NOT_INSTALLED,
    OAuth,
    TeamTokenClient,
    build_oauth,
    note_org_workspace,
    uninstall_listener,
)
from bot.metrics import Metrics, request_labels
from bot.settings import Settings, SettingsError
from bot.slack import make_client
from commands.handlers import team_of
from commands.service import Reap
from reminders.delivery import sending_for
from reminders.scheduler import ReminderScheduler
from reminders.tick import ReminderParts
from storage.engine import Sessions, create_engine, outside_units, session_factory

log = logging.getLogger(__name__)

STARTING_UP = "REAP Tracker is still starting up; try again in a minute."
# auth.test is retried after a failed start-up: first after about this long, doubling up to the cap.
IDENTITY_RETRY_SECONDS = (1.0, 60.0)


def utc_now() -> datetime:
    """The real clock (tests and the console pass their own)."""
    return datetime.now(UTC)


class BackgroundTasks:
    """Work that runs after the ack: tracked so it is not garbage-collected, logged if it fails."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background."""
        # Work that outlives the request is never part of its unit of work or delivery record.
        context = contextvars.copy_context()
        context.run(outside_units)
        task = asyncio.get_running_loop().create_task(coro, context=context)
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
    # Why auth.test has not answered yet (None once it has); /readyz reports it.
    problem: str | None = "auth.test has not been asked yet"


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
    metrics: Metrics = field(default_factory=Metrics)
    identity_retry: tuple[float, float] = IDENTITY_RETRY_SECONDS
    # REAP_INSTALL=oauth: the OAuth flow, its stores and the per-workspace tokens (None otherwise).
    oauth: OAuth | None = None
    _identity_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def learn_identity(self) -> bool:
        """Ask auth.test who the bot is; True once it has answered (a failure is kept for /readyz)."""
        try:
            answer = await self.client.auth_test()
            team = str(answer.get("team_id") or "")
            problem = None if team else "auth.test named no workspace"
        except SlackApiError as exc:
            problem = f"auth.test said {exc.response.get('error') or 'error'}"
        except Exception as exc:
            problem = f"auth.test failed: {type(exc).__name__}"
        if problem is not None:
            self.identity.problem = problem
            log.warning("%s; Slack requests wait until it succeeds", problem)
            return False
        self.identity.team_id = team
        self.identity.bot_user_id = answer.get("user_id")
        self.identity.bot_id = answer.get("bot_id")
        self.identity.problem = None
        return True

    async def _keep_learning_identity(self) -> None:
        """Retry auth.test with jittered exponential backoff until it answers."""
        delay, cap = self.identity_retry
        while True:
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            if await self.learn_identity():
                log.info("auth.test answered; serving workspace %s", self.identity.team_id)
                return
            delay = min(cap, delay * 2)

    async def start(self) -> None:
        """Start what a serving process runs besides answering requests (identity, ticker)."""
        if self.oauth is not None:
            pass  # many installations: each request's workspace is authorized by its own token
        elif not await self.learn_identity() and self._identity_task is None:
            # Requests are held (politely) until Slack says which workspace this is; keep asking.
            self._identity_task = asyncio.get_running_loop().create_task(self._keep_learning_identity())
        for starter in self.starters:
            await starter()

    async def close(self) -> None:
        """Stop background services, finish background work and release the database."""
        if self._identity_task is not None:
            self._identity_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._identity_task
            self._identity_task = None
        for stopper in reversed(self.stoppers):
            await stopper()
        await self.tasks.drain()
        if self.engine is not None:
            await self.engine.dispose()


# The context key a middleware sets when it answers a request itself (see _MeteredApp).
OUTCOME = "reap_outcome"


def _outcome(status: int) -> str:
    if status < 300:
        return "ok"
    if status == 404:
        return "unhandled"
    return "refused" if status < 500 else "error"


class _MeteredApp(AsyncApp):
    """Bolt's app, timing every dispatch (HTTP and Socket Mode alike) into the process's metrics.

    Bolt runs its middleware one after another rather than nested, so no middleware can see the
    listener's answer or its duration; only the dispatch as a whole can.
    """

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reap_metrics = metrics

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        """Dispatch `req` as Bolt does, counting it by name and outcome with its latency."""
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await super().async_dispatch(req)
            outcome = str(req.context.get(OUTCOME) or _outcome(response.status))
            return response
        finally:
            kind, name = request_labels(req.body)
            self.reap_metrics.observe_request(kind, name, outcome, time.perf_counter() - started)


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
    engine: AsyncEngine | None = None
    if sessions is None:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
    if settings.oauth:
        return _create_oauth_app(settings, client=client, sessions=sessions, engine=engine, clock=clock)
    client = client or make_client(settings)
    tasks = BackgroundTasks()
    identity = Identity()
    metrics = Metrics()
    metrics.watch(client)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None

    async def authorize(enterprise_id: str | None, team_id: str | None, **_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=token,
            bot_user_id=identity.bot_user_id,
            bot_id=identity.bot_id,
        )

    bolt = _MeteredApp(
        metrics=metrics,
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
    if bolt.oauth_flow is not None:
        # Bolt starts its own OAuth flow, with file-based stores in the home directory, whenever
        # SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are in the environment, whatever REAP_INSTALL says.
        raise SettingsError(
            "REAP_INSTALL",
            "is single, yet SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set: set REAP_INSTALL=oauth "
            "to install through Slack's OAuth flow, or unset them to serve the one workspace of "
            "SLACK_BOT_TOKEN",
        )
    reap = _services(settings, sessions, clock, tasks, client)

    @bolt.middleware
    async def provide_services(context: AsyncBoltContext, body: dict[str, Any], next: Any) -> Any:
        team = team_of(body)
        if identity.team_id is None:
            # Fail closed: until auth.test says which workspace the token serves, serve none.
            log.warning("held a request until auth.test answers (%s)", identity.problem)
            context[OUTCOME] = "starting"
            if "command" in body:
                return BoltResponse(status=200, body={"response_type": "ephemeral", "text": STARTING_UP})
            return BoltResponse(status=503, body="")  # Slack retries an event a 503 answered
        if team != "None" and team != identity.team_id:
            log.warning("refused a request from another workspace (%s)", team)
            context[OUTCOME] = "refused"
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
        metrics=metrics,
    )
    runtime.install(app)
    return app


def _services(
    settings: Settings,
    sessions: Sessions,
    clock: Callable[[], datetime],
    tasks: BackgroundTasks,
    client: AsyncWebClient,
) -> Reap:
    """What every handler is given, whichever way the app is installed."""
    return Reap(
        org=settings.organisation(),
        sessions=sessions,
        clock=clock,
        spawn=tasks.spawn,
        client=client,
        database_seconds=settings.request_database_seconds,
    )


def _create_oauth_app(
    settings: Settings,
    *,
    client: AsyncWebClient | None,
    sessions: Sessions,
    engine: AsyncEngine | None,
    clock: Callable[[], datetime],
) -> ReapApp:
    """REAP_INSTALL=oauth: many workspaces and Grid orgs, each request served with its own
    installation's token; a workspace with no installation (or an uninstalled one) is refused."""
    settings.require("slack_client_id", "slack_client_secret")
    tasks = BackgroundTasks()
    metrics = Metrics()
    base = client or make_client(settings)
    client = TeamTokenClient(base_url=base.base_url, timeout=base.timeout, retry_handlers=base.retry_handlers)
    oauth = build_oauth(settings, sessions, client, clock=clock)
    client.tokens = oauth.tokens  # the stores rotate tokens through this same client
    metrics.watch(client)
    # No token of our own: Bolt asks the installation store for each request's workspace or org.
    identity = Identity(problem=None)
    bolt = _MeteredApp(
        metrics=metrics,
        client=client,
        logger=_bolt_logger(),
        signing_secret=settings.secret("slack_signing_secret"),
        request_verification_enabled=False,  # bot/server.py verifies, as in single-workspace mode
        oauth_settings=oauth.settings,
        installation_store=oauth.store,
        installation_store_bot_only=True,
        process_before_response=True,
        raise_error_for_unhandled_request=False,
        user_facing_authorize_error_message=NOT_INSTALLED,
    )
    reap = _services(settings, sessions, clock, tasks, client)

    @bolt.middleware
    async def provide_services(context: AsyncBoltContext, body: dict[str, Any], next: Any) -> Any:
        team = team_of(body)
        authorized = context.authorize_result
        event = (body.get("event") or {}).get("type")
        if authorized is None or (not authorized.bot_token and event not in _UNINSTALL_EVENTS):
            # Fail closed: Bolt found no installation for this workspace or org.
            log.warning("refused a request from a workspace with no installation (%s)", team)
            context[OUTCOME] = "refused"
            return BoltResponse(status=403, body="")
        # Calls made on this request's behalf (digest rebuilds, deliveries it starts) use its token.
        sending_for.set(context.team_id or team)
        context["reap"] = dataclasses.replace(reap, client=context.client)
        if event not in _UNINSTALL_EVENTS:
            await note_org_workspace(oauth, sessions, context, now=clock())
        return await next()

    commands.register(bolt)
    on_gone = uninstall_listener(oauth, sessions, clock=clock)
    for event_type in _UNINSTALL_EVENTS:
        bolt.event(event_type)(on_gone)
    app = ReapApp(
        settings=settings,
        bolt=bolt,
        reap=reap,
        engine=engine,
        sessions=sessions,
        client=client,
        tasks=tasks,
        identity=identity,
        metrics=metrics,
        oauth=oauth,
    )
    runtime.install(app)
    return app


_UNINSTALL_EVENTS = ("app_uninstalled", "tokens_revoked")
