"""Reminders wired into the process: the ticker, its health check, digest rebuilds, and `reap remind --at`."""

from __future__ import annotations

import functools
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import inspect

from bot.installs import TeamTokenClient
from reminders.dashboard import PublishHook
from reminders.scheduler import ReminderScheduler
from reminders.tick import (
    ReminderParts,
    TickReport,
    deliver_due,
    instance_id,
    rebuild_message,
    scheduled_tick,
    scheduler_health,
    send_client,
    send_limiter,
    tick,
)
from reminders.tick import (
    dry_run as print_dry_run,
)
from storage.engine import Sessions, create_engine, is_sqlite, session_factory

if TYPE_CHECKING:
    from bot.app import ReapApp
    from bot.settings import Settings


def install(app: ReapApp) -> None:
    """Wire reminders into the app: digest rebuilds always; the ticker, its start/stop and the
    "scheduler" health check unless REAP_TICKER=false (then `reap remind` runs from cron)."""
    if app.reminders is not None:
        return  # already wired; a second ticker in one process would only duplicate work
    client = (
        app.client.without_retries() if isinstance(app.client, TeamTokenClient) else send_client(app.client)
    )
    app.metrics.watch(client)  # delivery's Slack calls and 429s count in /metrics too
    parts = ReminderParts(
        org=app.reap.org,
        sessions=app.sessions,
        client=client,
        limiter=send_limiter(app.sessions, shared=not is_sqlite(app.settings.database_url)),
        instance_id=instance_id(),
        follow_client=app.client,
        clock=app.reap.clock,
        publish=dashboard_publisher(app.settings, app.sessions),
    )
    app.reminders = parts
    # A digest edited from its DM re-renders whole whether or not this process ticks: with cron
    # running `reap remind`, the DMs were still sent by this deployment's outbox.
    app.reap.rebuild_message = functools.partial(rebuild_message, parts)
    clock = app.reap.clock

    async def deliver_now() -> None:
        """Deliver what is due now: a person's rollup or close does not wait for the next tick."""
        await deliver_due(parts, clock())

    app.reap.deliver_now = deliver_now

    async def ticker(now: datetime) -> TickReport:
        """One tick at `now` (the console's :clock and tests)."""
        return await tick(parts, now)

    app.ticker = ticker
    if not app.settings.ticker:
        return

    async def job() -> None:
        """The ticker's job: a tick at the app's clock, timed for /metrics."""
        started = time.perf_counter()
        await scheduled_tick(parts, clock())
        app.metrics.observe_tick(time.perf_counter() - started, clock())

    scheduler = ReminderScheduler(job, clock=clock, on_stop=parts.stopping.set)

    async def start() -> None:
        """Start ticking (after a stop, deliveries may claim again)."""
        parts.stopping.clear()
        await scheduler.start()

    async def health() -> str | None:
        """The "scheduler" entry of /healthz."""
        return await scheduler_health(parts, scheduler, clock())

    app.scheduler = scheduler
    app.starters.append(start)
    app.stoppers.append(scheduler.stop)
    app.health_checks["scheduler"] = health


def dashboard_publisher(settings: Settings, sessions: Sessions) -> PublishHook | None:
    """The tick's dashboard step when REAP_DASHBOARD=public: republish the installation's workspace
    into REAP_DASHBOARD_DIR when a quarter closed or was amended (and daily for an "as of" plan)."""
    if settings.dashboard != "public":
        return None
    from bot.slack import WorkspaceUnknown, workspace_id
    from publishing.site import publish_if_due

    async def publish(now: datetime) -> str | None:
        try:
            team_id = await workspace_id(sessions, None, now=now)
        except WorkspaceUnknown:
            return None  # no plan imported yet: nothing to publish
        published = await publish_if_due(
            sessions,
            team_id=team_id,
            folder=Path(settings.dashboard_dir),
            now=now,
            zone=settings.zone,
            start_month=settings.fiscal_year_start_month,
        )
        return published.summary() if published is not None else None

    return publish


async def _has_outbox(sessions: Sessions) -> bool:
    async with sessions() as session:
        connection = await session.connection()
        return bool(await connection.run_sync(lambda sync: inspect(sync).has_table("notification")))


async def remind_once(settings: Settings, *, at: datetime, dry_run: bool, out: TextIO) -> int:
    """`reap remind --at`: run exactly one tick at `at` and print a summary; 0 if it ran cleanly.

    With dry_run, print what would be sent and write nothing (the planning is rolled back).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        at = at.replace(tzinfo=settings.zone)
    if not dry_run:
        settings.require("slack_bot_token")
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        if not await _has_outbox(sessions):
            out.write("the database has no tables yet; run `reap db upgrade` first\n")
            return 1
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        client = AsyncWebClient(
            token=token,
            base_url=settings.slack_api_url,
            timeout=int(settings.slack_timeout_seconds),
            retry_handlers=[],
        )
        parts = ReminderParts(
            org=settings.organisation(),
            sessions=sessions,
            client=client,
            limiter=send_limiter(sessions, shared=not is_sqlite(settings.database_url)),
            instance_id=f"remind:{instance_id()}",
            publish=None if dry_run else dashboard_publisher(settings, sessions),
        )
        if dry_run:
            return await print_dry_run(parts, at, out)
        report = await tick(parts, at)
        out.writelines(f"{line}\n" for line in report.lines())
        return 1 if report.errors else 0
    finally:
        await engine.dispose()
