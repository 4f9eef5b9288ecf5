"""Owner profiles from Slack, kept fresh by the tick: a users.list pass once a day per workspace,
lookups of people nobody has fetched yet (a plan import names them), and a deactivated owner's
open items reported to their coordinators the same day.

The pass is stored (`profile_sync`: the organisation's day it is for and the next page's
cursor), so it runs once a day whichever instances tick, resumes where it stopped, and waits out
Slack's Retry-After. users.list is rate tier 2 (20+ calls a minute per workspace): a tick fetches
at most `pages_per_tick` pages of `page_size`, far below it even with several tickers. Lookups
use users.info (tier 4). Slack trouble here is logged and retried later; it never stops a tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.calendar import local_reminder_instant
from reminders.delivery import classify
from reminders.digest import orphan_row
from reminders.planner import PlanConfig
from storage import outbox
from storage.engine import Sessions, one_of, transaction
from storage.models import ActionItem, NotificationCreate
from storage.people import (
    advance_sync,
    apply_profiles,
    hold_sync,
    profile_sync,
    unfetched_people,
    valid_zone,
)
from storage.queries.people import active_coordinators

log = logging.getLogger(__name__)

DEACTIVATED = "deactivated in Slack"


@dataclass(frozen=True)
class ProfileConfig:
    """How much profile work one tick may do for one workspace, and how long Slack trouble pauses it."""

    page_size: int = 200  # Slack's advice for users.list
    pages_per_tick: int = 3  # ticks come a minute apart: 3 calls a minute against tier 2's 20
    lookups_per_tick: int = 20  # users.info, tier 4 (100+ a minute)
    lookup_concurrency: int = 5
    lookup_window: timedelta = timedelta(days=1)  # after that the daily pass finds them, or nobody can
    retry_lookup_after: timedelta = timedelta(hours=1)  # after an unknown user or a missing scope
    backoff: timedelta = timedelta(minutes=10)  # after an outage: 5xx, timeouts, refused connections
    budget_seconds: float = 10.0  # wall time a tick spends here per workspace, at most


@dataclass
class ProfileJob:
    """One process's profile work: its settings, and when each lookup Slack could not answer may
    be tried again, by (team, user)."""

    config: ProfileConfig = field(default_factory=ProfileConfig)
    retry_at: dict[tuple[str, str], datetime] = field(default_factory=dict)


@dataclass
class ProfileReport:
    """What one tick's profile work did for one workspace."""

    team_id: str
    pages: int = 0
    looked_up: int = 0
    updated: int = 0
    deactivated: tuple[str, ...] = ()
    orphans: int = 0
    done_today: bool = False
    problem: str | None = None

    def summary(self) -> str | None:
        """One line for logs and the CLI, or None when nothing happened."""
        if not (self.pages or self.looked_up or self.problem):
            return None
        parts = [f"{self.team_id}: {self.pages} users.list pages, {self.looked_up} looked up"]
        parts.append(f"{self.updated} people refreshed")
        if self.deactivated:
            gone = ", ".join(self.deactivated)
            parts.append(f"deactivated {gone} ({self.orphans} orphan reports owed)")
        if self.done_today:
            parts.append("daily pass done")
        if self.problem:
            parts.append(f"held: {self.problem}")
        return "; ".join(parts)


def _wait_for(exc: BaseException, config: ProfileConfig) -> tuple[timedelta, str] | None:
    """How long to leave Slack alone after `exc`, and why: its Retry-After on a 429, a back-off
    after an outage, longer for an answer that will not change soon (an unknown user, a missing
    scope); None if `exc` is not a Slack or network problem."""
    failure = classify(exc, may_have_posted=False)
    if failure is None:
        return None
    if failure.category == "rate_limited":
        return timedelta(seconds=failure.retry_after or 1.0), failure.reason
    if failure.category in ("permanent", "gone"):
        return config.retry_lookup_after, failure.reason
    return config.backoff, failure.reason


async def refresh_profiles(
    sessions: Sessions,
    client: AsyncWebClient,
    *,
    team_id: str,
    now: datetime,
    plan: PlanConfig,
    job: ProfileJob,
) -> ProfileReport:
    """One tick's profile work for one workspace: look up people nobody has fetched yet, then go
    on with today's users.list pass (started at the organisation's midnight)."""
    report = ProfileReport(team_id=team_id)
    started = time.monotonic()
    await _look_up_new(sessions, client, team_id=team_id, now=now, plan=plan, job=job, report=report)
    await _list_pages(
        sessions, client, team_id=team_id, now=now, plan=plan, job=job, report=report, started=started
    )
    return report


async def _look_up_new(
    sessions: Sessions,
    client: AsyncWebClient,
    *,
    team_id: str,
    now: datetime,
    plan: PlanConfig,
    job: ProfileJob,
    report: ProfileReport,
) -> None:
    config = job.config
    for key, at in list(job.retry_at.items()):
        if now >= at:
            del job.retry_at[key]
    waiting = sum(1 for team, _ in job.retry_at if team == team_id)
    async with sessions() as session:
        wanted = await unfetched_people(
            session,
            team_id=team_id,
            since=now - config.lookup_window,
            limit=config.lookups_per_tick + waiting,
        )
    wanted = [user for user in wanted if (team_id, user) not in job.retry_at][: config.lookups_per_tick]
    if not wanted:
        return
    gate = asyncio.Semaphore(config.lookup_concurrency)

    async def look_up(user_id: str) -> dict[str, Any] | None:
        async with gate:
            try:
                answer = await client.users_info(user=user_id)
            except Exception as exc:
                wait = _wait_for(exc, config)
                if wait is None:
                    raise
                # A user id Slack does not know (a typo in a plan file) is tried again in a while;
                # until then, and if it never resolves, the organisation's hour applies.
                job.retry_at[(team_id, user_id)] = now + wait[0]
                log.info("could not look up %s in %s: %s", user_id, team_id, wait[1])
                return None
        user = answer.get("user")
        return dict(user) if isinstance(user, dict) else None

    found = [user for user in await asyncio.gather(*(look_up(u) for u in wanted)) if user is not None]
    report.looked_up = len(found)
    if found:
        await _apply(
            sessions, team_id=team_id, users=found, now=now, plan=plan, report=report, source="users.info"
        )


async def _list_pages(
    sessions: Sessions,
    client: AsyncWebClient,
    *,
    team_id: str,
    now: datetime,
    plan: PlanConfig,
    job: ProfileJob,
    report: ProfileReport,
    started: float,
) -> None:
    config = job.config
    today = now.astimezone(plan.zone).date()
    async with transaction(sessions) as session:
        sync = await profile_sync(session, team_id=team_id)
    if sync.not_before is not None and now < sync.not_before:
        return  # Slack asked for a pause, or had trouble (said when it began)
    if sync.day == today and sync.cursor is None:
        return  # today's pass is done
    seen: tuple[date | None, str | None] = (sync.day, sync.cursor)
    # A pass left unfinished on an earlier day starts again from the first page.
    cursor = sync.cursor if sync.day == today else None
    for _ in range(config.pages_per_tick):
        if time.monotonic() - started > config.budget_seconds:
            return
        try:
            answer = await client.users_list(limit=config.page_size, cursor=cursor or None)
        except Exception as exc:
            wait = _wait_for(exc, config)
            if wait is None:
                raise
            delay, reason = wait
            async with transaction(sessions) as session:
                await hold_sync(session, team_id=team_id, until=now + delay, error=reason)
            report.problem = reason
            log.warning("users.list for %s: %s; trying again after %s", team_id, reason, delay)
            return
        members = [dict(m) for m in answer.get("members") or [] if isinstance(m, dict)]
        following = str((answer.get("response_metadata") or {}).get("next_cursor") or "") or None
        async with transaction(sessions) as session:
            if not await advance_sync(
                session, team_id=team_id, seen=seen, day=today, cursor=following, now=now
            ):
                return  # another ticker fetched this page first and carries on
            await _apply_in(
                session,
                team_id=team_id,
                users=members,
                now=now,
                plan=plan,
                report=report,
                source="users.list",
            )
        report.pages += 1
        seen, cursor = (today, following), following
        if following is None:
            report.done_today = True
            return


async def _apply(
    sessions: Sessions,
    *,
    team_id: str,
    users: Sequence[dict[str, Any]],
    now: datetime,
    plan: PlanConfig,
    report: ProfileReport,
    source: str,
) -> None:
    async with transaction(sessions) as session:
        await _apply_in(
            session, team_id=team_id, users=users, now=now, plan=plan, report=report, source=source
        )


async def _apply_in(
    session: AsyncSession,
    *,
    team_id: str,
    users: Sequence[dict[str, Any]],
    now: datetime,
    plan: PlanConfig,
    report: ProfileReport,
    source: str,
) -> None:
    changes = await apply_profiles(session, team_id=team_id, users=users, now=now, source=source)
    report.updated += changes.updated
    if changes.deactivated:
        report.deactivated += changes.deactivated
        report.orphans += await report_deactivated(
            session, team_id=team_id, owners=changes.deactivated, now=now, plan=plan
        )


def first_window(
    now: datetime, zone: ZoneInfo, plan: PlanConfig, *, paused_until: date | None = None
) -> tuple[date, datetime]:
    """The local business day a message owed at `now` goes out in `zone`, and the instant it may:
    now inside today's window, at the reminder hour before it, the next business day after the
    quiet hour (and not before a pause ends)."""
    calendar = plan.calendar
    day = calendar.on_or_after(now.astimezone(zone).date())
    if paused_until is not None and day < paused_until:
        day = calendar.on_or_after(paused_until)
    while True:
        opens = local_reminder_instant(day, plan.reminder_hour, zone, minute=plan.reminder_minute)
        if plan.quiet_hour >= 24 or now < local_reminder_instant(day, plan.quiet_hour, zone):
            return day, max(now, opens)
        day = calendar.on_or_after(day + timedelta(days=1))


async def report_deactivated(
    session: AsyncSession, *, team_id: str, owners: Sequence[str], now: datetime, plan: PlanConfig
) -> int:
    """Owe each active coordinator an orphan report for every open item these deactivated owners
    hold, in the coordinator's own window that day (the next business day after quiet hour).

    The rows carry the planner's orphan keys, so a coordinator hears about an item once whichever
    of the two notices first. How many rows were new."""
    connection = await session.connection()
    items: list[ActionItem] = []
    for condition in one_of(col(ActionItem.owner_id), sorted(set(owners)), dialect=connection.dialect.name):
        query = select(ActionItem).where(ActionItem.team_id == team_id, condition)
        items += [item for item in await session.exec(query) if item.status_enum.is_open]
    if not items:
        return 0
    found = await active_coordinators(
        session, team_id=team_id, department_ids={i.department_id for i in items}
    )
    rows: list[NotificationCreate] = []
    for item in sorted(items, key=lambda i: i.id or 0):
        owner = item.owner_id or ""
        coordinators = [c for c in found.get(item.department_id, []) if c.user_id != owner]
        if not coordinators:
            log.warning("%s lost its owner %s and its department has no coordinator", item.ref, owner)
        for coordinator in coordinators:
            zone_name = valid_zone(coordinator.tz)
            zone = ZoneInfo(zone_name) if zone_name else plan.zone
            day, send_after = first_window(now, zone, plan, paused_until=coordinator.paused_until)
            row = orphan_row(
                team_id=team_id,
                coordinator=coordinator.user_id,
                item_id=item.id or 0,
                ref=item.ref,
                owner=owner,
                reason=DEACTIVATED,
                now=now,
                local_date=day,
            )
            row.send_after = send_after
            rows.append(row)
    return await outbox.enqueue(session, rows=rows)
