"""What time triggers: one tick (plan every workspace, then deliver), the ticker's health, digest
rebuilds after a change, and the dry run behind `reap remind --at --dry-run`."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from slack_sdk.web.async_client import AsyncWebClient

from domain.cadence import Cadence
from domain.calendar import BusinessCalendar, calendar_for_year
from domain.org import Organisation
from messages import blocks as bk
from reminders.checkin import (
    CheckInReport,
    checkin_kinds,
    plan_checkins,
    plan_checkins_in,
)
from reminders.dashboard import PublishHook, publish_step
from reminders.delivery import DeliveryConfig, DeliveryReport, deliver, group_rows, sending_for
from reminders.digest import (
    NotificationKind,
    RenderContext,
    Skip,
    default_kinds,
    riders,
)
from reminders.planner import PlanConfig, PlanReport, fold_in, fold_riders, plan_in, plan_tick, team_ids
from reminders.profiles import ProfileJob, ProfileReport, refresh_profiles
from reminders.ratelimit import SendLimiter
from reminders.scheduler import ReminderScheduler
from storage import outbox
from storage.engine import Sessions, transaction

log = logging.getLogger(__name__)

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

    org: Organisation
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
    profiles: ProfileJob = field(default_factory=ProfileJob)
    publish: PublishHook | None = None  # the public dashboard's publisher, when bot/ hands one in

    def __post_init__(self) -> None:
        self.kinds.update(
            checkin_kinds(
                self.sessions,
                self.follow_client or self.client,
                clock=self.clock,
                zone=self.org.zone,
                admins=self.org.admins,
            )
        )

    @property
    def riders(self) -> frozenset[str]:
        """The kinds that only go out folded into their reader's digest."""
        return riders(self.kinds)

    async def calendar(self, now: datetime) -> BusinessCalendar:
        """The business calendar covering the years around `now` (built once per year)."""
        return await asyncio.to_thread(calendar_for_year, self.org.holidays, self.org.holidays_file, now.year)

    async def plan_config(self, now: datetime) -> PlanConfig:
        """The planning settings at `now`."""
        return PlanConfig(
            zone=self.org.zone,
            calendar=await self.calendar(now),
            cadence=self.cadence,
            reminder_hour=self.org.reminder_hour,
            quiet_hour=self.org.quiet_hour,
        )


@dataclass
class TickReport:
    """What one tick planned and delivered, and anything that went wrong."""

    now: datetime
    plans: list[PlanReport] = field(default_factory=list)
    checkins: list[CheckInReport] = field(default_factory=list)
    profiles: list[ProfileReport] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    errors: list[str] = field(default_factory=list)
    folded: int = 0

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
        if self.folded:
            out.append(f"  folded {self.folded} notices into today's digests")
        out += [f"  profiles {line}" for profile in self.profiles if (line := profile.summary())]
        if self.delivery is not None:
            out.append(f"  delivery: {self.delivery.summary()}")
            out += [f"    {problem}" for problem in self.delivery.problems]
        out += [f"  error: {error}" for error in self.errors]
        return out


async def tick(parts: ReminderParts, now: datetime) -> TickReport:
    """One tick at `now`: plan every workspace, then deliver whatever is due."""
    report = TickReport(now=now)
    config = await parts.plan_config(now)
    for team_id in await team_ids(parts.sessions):
        # Before planning, so a zone learned this tick already decides whose morning it is.
        await _refresh_profiles(parts, team_id, now, config, report)
        try:
            report.plans.append(await plan_tick(parts.sessions, team_id=team_id, now=now, config=config))
            report.checkins.append(
                await plan_checkins(
                    parts.sessions,
                    team_id=team_id,
                    now=now,
                    config=config,
                    dei_channel=parts.org.dei_channel,
                    fiscal_start_month=parts.org.fiscal_year_start_month,
                    agenda_days=parts.org.agenda_business_days,
                )
            )
            # Last, so everything owed this tick (riders of any kind) rides today's one digest.
            report.folded += await fold_riders(
                parts.sessions, team_id=team_id, now=now, config=config, kinds=parts.riders
            )
        except Exception as exc:
            # One workspace's bad data must not hold up the others or delivery.
            log.exception("planning reminders for %s failed", team_id)
            report.errors.append(f"planning {team_id}: {type(exc).__name__}: {exc}")
    try:
        report.delivery = await deliver_due(parts, now)
    except Exception as exc:
        log.exception("delivering reminders failed")
        report.errors.append(f"delivery: {type(exc).__name__}: {exc}")
    await _prune(parts, now, report)
    await publish_step(parts.publish, now)
    return report


async def _refresh_profiles(
    parts: ReminderParts, team_id: str, now: datetime, config: PlanConfig, report: TickReport
) -> None:
    """The workspace's profile work (see reminders.profiles); a failure here never stops planning."""
    serving = sending_for.set(team_id)  # the workspace's own token, with many installations
    try:
        found = await refresh_profiles(
            parts.sessions, parts.client, team_id=team_id, now=now, plan=config, job=parts.profiles
        )
    except Exception as exc:
        log.exception("refreshing profiles for %s failed", team_id)
        report.errors.append(f"profiles {team_id}: {type(exc).__name__}: {exc}")
        return
    finally:
        sending_for.reset(serving)
    report.profiles.append(found)


async def deliver_due(parts: ReminderParts, now: datetime) -> DeliveryReport:
    """One delivery pass at `now`, as a tick's second half; safe beside any number of tickers."""
    return await deliver(
        parts.sessions,
        parts.client,
        owner=parts.instance_id,
        now=now,
        limiter=parts.limiter,
        config=parts.delivery,
        kinds=parts.kinds,
        default_zone=parts.org.zone,
        dm_cache=parts.dm_cache,
        stop=parts.stopping,
    )


async def _prune(parts: ReminderParts, now: datetime, report: TickReport) -> None:
    """Once an hour, drop settled outbox rows and processed events past their retention."""
    if parts.pruned_at is not None and now - parts.pruned_at < PRUNE_EVERY:
        return
    try:
        async with transaction(parts.sessions) as session:
            rows, events = await outbox.prune(session, now=now, riders=parts.riders)
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
        profiled = any(p.summary() for p in report.profiles)
        if any(p.inserted for p in report.plans) or (delivery is not None and delivery.claimed) or profiled:
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
    parts: ReminderParts, channel: str, ts: str, card: bk.ItemCard
) -> list[dict[str, Any]] | None:
    """The whole digest (or report) a bot message showed, re-rendered with fresh item states."""
    kinds = parts.kinds
    try:
        posted = datetime.fromtimestamp(float(ts), UTC)
    except (ValueError, OverflowError):
        return None
    now = parts.clock()
    # send_after is the tick's clock and ts is Slack's; bound the search by both.
    window = (min(posted, now) - REBUILD_WINDOW, max(posted, now) + timedelta(minutes=5))
    async with parts.sessions() as session:
        rows = await outbox.find_by_message(session, channel=channel, ts=ts, sent_between=window)
        if not rows or rows[0].kind not in kinds:
            return None
        context = RenderContext(now=now, default_zone=parts.org.zone, rebuild=True, today=card.today)
        rendered = await kinds[rows[0].kind].render(session, rows, context)
    return None if isinstance(rendered, Skip) else rendered.blocks


def send_limiter(sessions: Sessions, *, shared: bool) -> SendLimiter:
    """The send limiter: on PostgreSQL (`shared`), where several instances may deliver, the
    workspace budget is booked in the database so they share it; SQLite serves one instance."""
    if not shared:
        return SendLimiter()

    async def book(now: float) -> float:
        async with transaction(sessions) as session:
            pace = limiter.workspace
            return await outbox.book_send(
                session, budget=SEND_BUDGET, now=now, interval=pace.interval, burst=pace.burst
            )

    limiter = SendLimiter(shared=book)
    return limiter


def _describe(rows: Sequence[Any]) -> str:
    row = rows[0]
    when = f" for {row.local_date.isoformat()}" if row.local_date else ""
    who = f"<@{row.recipient}>" if row.recipient.startswith(("U", "W")) else f"<#{row.recipient}>"
    return f"{row.kind} to {who}{when}"


async def dry_run(parts: ReminderParts, at: datetime, out: TextIO) -> int:
    """Print what a tick at `at` would plan and send; write and send nothing (planning is rolled back)."""
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
                    dei_channel=parts.org.dei_channel,
                    fiscal_start_month=parts.org.fiscal_year_start_month,
                    agenda_days=parts.org.agenda_business_days,
                )
                if checkin.opened or checkin.closed:
                    out.write(f"  would open {checkin.opened or 'none'}, close {checkin.closed or 'none'}\n")
                folded = await fold_in(session, team_id=team_id, now=at, config=config, kinds=parts.riders)
                if folded:
                    out.write(f"  would fold {folded} notices into today's digests\n")
            rows = await outbox.claimable(session, now=at, limit=parts.delivery.max_rows, hold=parts.riders)
            would = 0
            for kind, group in group_rows(rows, parts.kinds):
                if kind is None:
                    out.write(f"  would fail {_describe(group)}: no renderer for this kind\n")
                    continue
                rendered = await kind.render(
                    session, group, RenderContext(now=at, default_zone=parts.org.zone)
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
