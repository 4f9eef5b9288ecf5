"""Reminders wired into the process: the tick, the ticker and its health check, digest rebuilds,
and `reap remind --at` (one tick at a chosen instant, optionally a dry run)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import inspect

from commands import blocks as bk
from reminders.calendar import BusinessCalendar, calendar_for_year
from reminders.checkin import (
    CheckInReport,
    carried_checkin,
    checkin_kinds,
    plan_checkins,
    plan_checkins_in,
)
from reminders.delivery import DeliveryConfig, DeliveryReport, deliver, group_rows
from reminders.digest import (
    DIGEST,
    ESCALATION,
    NotificationKind,
    RenderContext,
    Skip,
    default_kinds,
    with_companions,
)
from reminders.planner import PlanConfig, PlanReport, plan_in, plan_tick, team_ids
from reminders.policy import Cadence
from reminders.ratelimit import SendLimiter
from reminders.scheduler import ReminderScheduler
from storage import outbox
from storage.engine import Sessions, create_engine, is_sqlite, session_factory, transaction

if TYPE_CHECKING:
    from bot.app import ReapApp
    from bot.settings import Settings
    from commands.service import Reap

log = logging.getLogger(__name__)

PARTS = "reminders"
# A health check allows this many missed ticks before calling the ticker stuck.
STALE_TICKS = 3
# How far back a message's outbox row is looked for when a digest is rebuilt.
REBUILD_WINDOW = timedelta(days=45)
PRUNE_EVERY = timedelta(hours=1)
# The one shared chat.postMessage budget of a deployment (every workspace it serves draws on it,
# as the in-process budget already did).
SEND_BUDGET = "chat.postMessage"


def instance_id() -> str:
    """A name for this process's ticker: host, pid and a random suffix (fits Heartbeat.instance_id)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def send_client(client: AsyncWebClient) -> AsyncWebClient:
    """A client like `client` but without slack_sdk's automatic retries: delivery owns retries."""
    return AsyncWebClient(
        token=client.token, base_url=client.base_url, timeout=client.timeout, retry_handlers=[]
    )


@dataclass
class ReminderParts:
    """Everything a tick needs, built once per process (or once per `reap remind`)."""

    settings: Settings
    sessions: Sessions
    client: AsyncWebClient
    instance_id: str
    limiter: SendLimiter = field(default_factory=SendLimiter)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    kinds: dict[str, NotificationKind] = field(default_factory=default_kinds)
    cadence: Cadence = field(default_factory=Cadence)
    dm_cache: dict[str, str] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    follow_client: AsyncWebClient | None = None  # with slack_sdk's retries, for best-effort follow-ups
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    pruned_at: datetime | None = None

    def __post_init__(self) -> None:
        self.kinds.update(
            checkin_kinds(
                self.sessions, self.follow_client or self.client, clock=self.clock, zone=self.settings.zone
            )
        )
        # A check-in owed on a day that already has a digest rides in it (one DM a day).
        for name in (DIGEST, ESCALATION):
            if name in self.kinds:
                self.kinds[name] = with_companions(self.kinds[name], carried_checkin)

    async def calendar(self, now: datetime) -> BusinessCalendar:
        """The business calendar covering the years around `now` (built once per year)."""
        settings = self.settings
        return await asyncio.to_thread(
            calendar_for_year, tuple(settings.holidays), settings.holidays_file, now.year
        )

    async def plan_config(self, now: datetime) -> PlanConfig:
        """The planning settings at `now`."""
        return PlanConfig(
            zone=self.settings.zone,
            calendar=await self.calendar(now),
            cadence=self.cadence,
            reminder_hour=self.settings.reminder_hour,
            quiet_hour=self.settings.quiet_hour,
        )


@dataclass
class TickReport:
    """What one tick planned and delivered, and anything that went wrong."""

    now: datetime
    plans: list[PlanReport] = field(default_factory=list)
    checkins: list[CheckInReport] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> int:
        """Keys another ticker stored first while this one was planning."""
        return sum(plan.conflicts for plan in self.plans)

    def lines(self) -> list[str]:
        """A human summary, one fact a line."""
        out = [f"reminder tick at {self.now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"]
        out += [f"  plan {plan.summary()}" for plan in self.plans] or ["  plan: no workspace to serve"]
        for checkin in self.checkins:
            if checkin.opened or checkin.closed or checkin.inserted:
                opened, closed = ", ".join(checkin.opened) or "none", ", ".join(checkin.closed) or "none"
                out.append(f"  check-ins: opened {opened}; closed {closed}; {checkin.inserted} messages owed")
        if self.delivery is not None:
            out.append(f"  delivery: {self.delivery.summary()}")
            out += [f"    {problem}" for problem in self.delivery.problems]
        out += [f"  error: {error}" for error in self.errors]
        return out


def parts_of(app: ReapApp) -> ReminderParts:
    """The reminder parts `install` put on the app."""
    parts = app.reap.extensions.get(PARTS)
    if not isinstance(parts, ReminderParts):
        raise LookupError("reminders are not installed on this app")
    return parts


async def tick(target: ReminderParts | ReapApp, now: datetime) -> TickReport:
    """One tick at `now`: plan every workspace, then deliver whatever is due."""
    parts = target if isinstance(target, ReminderParts) else parts_of(target)
    report = TickReport(now=now)
    config = await parts.plan_config(now)
    for team_id in await team_ids(parts.sessions):
        try:
            report.plans.append(await plan_tick(parts.sessions, team_id=team_id, now=now, config=config))
            report.checkins.append(
                await plan_checkins(
                    parts.sessions,
                    team_id=team_id,
                    now=now,
                    config=config,
                    dei_channel=parts.settings.dei_channel,
                    fiscal_start_month=parts.settings.fiscal_year_start_month,
                )
            )
        except Exception as exc:
            # One workspace's bad data must not hold up the others or delivery.
            log.exception("planning reminders for %s failed", team_id)
            report.errors.append(f"planning {team_id}: {type(exc).__name__}: {exc}")
    try:
        report.delivery = await deliver(
            parts.sessions,
            parts.client,
            owner=parts.instance_id,
            now=now,
            limiter=parts.limiter,
            config=parts.delivery,
            kinds=parts.kinds,
            default_zone=parts.settings.zone,
            dm_cache=parts.dm_cache,
            stop=parts.stopping,
        )
    except Exception as exc:
        log.exception("delivering reminders failed")
        report.errors.append(f"delivery: {type(exc).__name__}: {exc}")
    await _prune(parts, now, report)
    return report


async def _prune(parts: ReminderParts, now: datetime, report: TickReport) -> None:
    """Once an hour, drop settled outbox rows and processed events past their retention."""
    if parts.pruned_at is not None and now - parts.pruned_at < PRUNE_EVERY:
        return
    try:
        async with transaction(parts.sessions) as session:
            rows, events = await outbox.prune(session, now=now)
    except Exception as exc:
        log.exception("pruning the outbox failed")
        report.errors.append(f"pruning: {type(exc).__name__}: {exc}")
        return
    parts.pruned_at = now
    if rows or events:
        log.info("pruned %d settled outbox rows and %d processed events past retention", rows, events)


async def _beat(parts: ReminderParts, now: datetime, error: str | None) -> None:
    try:
        async with transaction(parts.sessions) as session:
            await outbox.beat(session, instance_id=parts.instance_id, at=now, error=error)
    except Exception as exc:
        log.warning("could not record the ticker heartbeat: %s", type(exc).__name__)


async def scheduled_tick(parts: ReminderParts, now: datetime) -> TickReport | None:
    """The ticker's job: one tick that never raises, then a heartbeat saying how it went."""
    error: str | None = None
    report: TickReport | None = None
    try:
        report = await tick(parts, now)
        error = "; ".join(report.errors) or None
        delivery = report.delivery
        if any(p.inserted for p in report.plans) or (delivery is not None and delivery.claimed):
            log.info(" / ".join(line.strip() for line in report.lines()))
    except Exception as exc:
        log.exception("reminder tick failed")
        error = f"{type(exc).__name__}: {exc}"
    await _beat(parts, now, error)
    return report


async def scheduler_health(parts: ReminderParts, scheduler: ReminderScheduler, now: datetime) -> str | None:
    """None when the ticker runs and ticked recently; otherwise what is wrong."""
    if not scheduler.running:
        return "not running"
    grace = timedelta(seconds=STALE_TICKS * scheduler.interval)
    try:
        async with asyncio.timeout(2), parts.sessions() as session:
            beat = await outbox.last_beat(session, instance_id=parts.instance_id)
    except Exception as exc:
        return f"heartbeat unreadable: {type(exc).__name__}"
    if beat is None:
        started = scheduler.started_at
        if started is not None and now - started <= grace:
            return None  # still starting: the first tick is under way
        return "no tick recorded"
    age = now - beat.last_tick_at
    if age > grace:
        return f"last tick {int(age.total_seconds())} s ago"
    if beat.last_error:
        return f"last tick failed: {beat.last_error}"
    return None


async def rebuild_message(
    reap: Reap, *, channel: str, ts: str, card: bk.ItemCard
) -> list[dict[str, Any]] | None:
    """The whole digest (or report) a bot message showed, re-rendered with fresh item states."""
    parts = reap.extensions.get(PARTS)
    kinds = parts.kinds if isinstance(parts, ReminderParts) else default_kinds()
    try:
        posted = datetime.fromtimestamp(float(ts), UTC)
    except (ValueError, OverflowError):
        return None
    now = reap.clock()
    # send_after is the tick's clock and ts is Slack's; bound the search by both.
    window = (min(posted, now) - REBUILD_WINDOW, max(posted, now) + timedelta(minutes=5))
    async with reap.sessions() as session:
        rows = await outbox.find_by_message(session, channel=channel, ts=ts, sent_between=window)
        if not rows or rows[0].kind not in kinds:
            return None
        context = RenderContext(now=now, default_zone=reap.settings.zone, rebuild=True, today=card.today)
        rendered = await kinds[rows[0].kind].render(session, rows, context)
    return None if isinstance(rendered, Skip) else rendered.blocks


def send_limiter(settings: Settings, sessions: Sessions) -> SendLimiter:
    """The send limiter: on PostgreSQL, where several instances may deliver, the workspace
    budget is booked in the database so they share it; SQLite serves one instance."""
    if is_sqlite(settings.database_url):
        return SendLimiter()

    async def book(now: float) -> float:
        async with transaction(sessions) as session:
            pace = limiter.workspace
            return await outbox.book_send(
                session, budget=SEND_BUDGET, now=now, interval=pace.interval, burst=pace.burst
            )

    limiter = SendLimiter(shared=book)
    return limiter


def install(app: ReapApp) -> None:
    """Wire reminders into the app: ticker, start/stop, the "scheduler" health check, rebuilds."""
    if isinstance(app.reap.extensions.get(PARTS), ReminderParts):
        return  # already wired; a second ticker in one process would only duplicate work
    parts = ReminderParts(
        settings=app.settings,
        sessions=app.sessions,
        client=send_client(app.client),
        limiter=send_limiter(app.settings, app.sessions),
        instance_id=instance_id(),
        follow_client=app.client,
        clock=app.reap.clock,
    )
    app.reap.extensions[PARTS] = parts
    clock = app.reap.clock

    async def job() -> None:
        """The ticker's job: a tick at the app's clock."""
        await scheduled_tick(parts, clock())

    scheduler = ReminderScheduler(job, clock=clock, on_stop=parts.stopping.set)

    async def ticker(now: datetime) -> TickReport:
        """One tick at `now` (the console's :clock and tests)."""
        return await tick(parts, now)

    async def start() -> None:
        """Start ticking (after a stop, deliveries may claim again)."""
        parts.stopping.clear()
        await scheduler.start()

    async def health() -> str | None:
        """The "scheduler" entry of /healthz."""
        return await scheduler_health(parts, scheduler, clock())

    app.ticker = ticker
    if not app.settings.ticker:
        return  # REAP_TICKER=false: `reap remind` runs from cron instead of the in-process ticker
    app.starters.append(start)
    app.stoppers.append(scheduler.stop)
    app.health_checks["scheduler"] = health
    app.reap.extensions["rebuild_message"] = rebuild_message
    app.reap.extensions["scheduler"] = scheduler


async def _has_outbox(sessions: Sessions) -> bool:
    async with sessions() as session:
        connection = await session.connection()
        return bool(await connection.run_sync(lambda sync: inspect(sync).has_table("notification")))


def _describe(rows: Sequence[Any]) -> str:
    row = rows[0]
    when = f" for {row.local_date.isoformat()}" if row.local_date else ""
    who = f"<@{row.recipient}>" if row.recipient.startswith(("U", "W")) else f"<#{row.recipient}>"
    return f"{row.kind} to {who}{when}"


async def _dry_run(parts: ReminderParts, at: datetime, out: TextIO) -> int:
    out.write(f"dry run at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: nothing is written or sent\n")
    config = await parts.plan_config(at)
    teams = await team_ids(parts.sessions)
    async with parts.sessions() as session:
        try:
            for team_id in teams:
                plan = await plan_in(session, team_id=team_id, now=at, config=config)
                out.write(f"  plan {plan.summary()}\n")
                checkin = await plan_checkins_in(
                    session,
                    team_id=team_id,
                    now=at,
                    config=config,
                    dei_channel=parts.settings.dei_channel,
                    fiscal_start_month=parts.settings.fiscal_year_start_month,
                )
                if checkin.opened or checkin.closed:
                    out.write(f"  would open {checkin.opened or 'none'}, close {checkin.closed or 'none'}\n")
            rows = await outbox.claimable(session, now=at, limit=parts.delivery.max_rows)
            would = 0
            for kind, group in group_rows(rows, parts.kinds):
                if kind is None:
                    out.write(f"  would fail {_describe(group)}: no renderer for this kind\n")
                    continue
                rendered = await kind.render(
                    session, group, RenderContext(now=at, default_zone=parts.settings.zone)
                )
                if isinstance(rendered, Skip):
                    out.write(f"  would skip {_describe(group)}: {rendered.reason}\n")
                    continue
                would += 1
                out.write(f"  would send {_describe(group)}: {len(rendered.lines)} item(s)\n")
                out.writelines(f"      {line}\n" for line in rendered.lines)
            out.write(f"  {would} message(s) would be sent\n")
        finally:
            await session.rollback()
    return 0


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
            settings=settings,
            sessions=sessions,
            client=client,
            limiter=send_limiter(settings, sessions),
            instance_id=f"remind:{instance_id()}",
        )
        if dry_run:
            return await _dry_run(parts, at, out)
        report = await tick(parts, at)
        out.writelines(f"{line}\n" for line in report.lines())
        return 1 if report.errors else 0
    finally:
        await engine.dispose()
