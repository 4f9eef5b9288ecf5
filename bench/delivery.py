"""Item 3: delivering 2,000 owed digests through a Slack that enforces its rate limits.

localslack runs in its own process (so its HTTP threads never compete with the bot for the GIL)
with a workspace budget of 50 chat.postMessage calls a second, one a second per channel, and 2%
of posts answered 429 with Retry-After at random. The bot's SendLimiter is set to the same 50/s.

A seeded plan of 2,000 items gets 2,000 distinct owners (one open item each, due on the tick's
day); `plan_tick` stores 2,000 owner digests, and `deliver` is called until every row is sent or
failed (a 429 puts a row back with send_after moved on by Retry-After, so a later call takes it).
Afterwards localslack's own record says who got how many messages: a doubled send shows up there
whatever the outbox believes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bench.common import (
    TOKEN,
    BenchError,
    bench_command,
    fmt_ratio,
    print_header,
    print_table,
    python_module,
    url_child,
    verdict,
)
from bench.seed import SeedPlan, owner_id, seed
from domain.calendar import calendar_for_year
from domain.status import ItemStatus
from reminders.delivery import DeliveryConfig, DeliveryReport, deliver
from reminders.planner import PlanConfig, plan_tick
from reminders.ratelimit import SendLimiter
from storage.engine import create_engine, session_factory
from storage.migrate import upgrade_async
from storage.models import ActionItem, Notification, NotificationState

ORDER = 3
NAME = "delivery"
TITLE = "3. Delivery of 2,000 owed digests vs Slack's rate limit"

ZONE = ZoneInfo("America/New_York")
TICK = datetime(2026, 12, 1, 9, 30, tzinfo=ZONE)  # a Tuesday, inside the sending window
SEED_AS_OF = TICK + timedelta(days=400)  # seeded due dates all far after the tick
DIGESTS = 2_000
DEPARTMENTS = 10
WORKSPACE_RATE = 50.0
CHANNEL_RATE = 1.0
RANDOM_429 = 0.02
SLACK_SEED = 20_261_201
RATIO_LIMIT = 1.2
GIVE_UP_AFTER = 600.0  # seconds: a run this long is broken, not slow
IDLE_PAUSE = 0.05  # seconds between delivery calls while only retries are waiting
UNSETTLED = (NotificationState.PENDING.value, NotificationState.SENDING.value)


def minimum_seconds(messages: int, rate: float) -> float:
    """The shortest time a budget of `rate` messages a second allows for `messages` messages."""
    if rate <= 0:
        raise BenchError("budget", f"the rate must be positive, not {rate}")
    return messages / rate


def duplicated(per_recipient: Mapping[str, int]) -> int:
    """Messages beyond the first to any recipient (0 when everyone got at most one)."""
    return sum(count - 1 for count in per_recipient.values() if count > 1)


@dataclass(frozen=True)
class SlackRecord:
    """What localslack saw: messages per channel, posts answered 429, and chat.postMessage calls."""

    per_channel: dict[str, int]
    rate_limited: int
    post_calls: int

    @classmethod
    def parse(cls, line: str) -> SlackRecord:
        """The record from the JSON line the localslack child prints."""
        try:
            data = json.loads(line)
            return cls(
                per_channel={str(k): int(v) for k, v in data["per_channel"].items()},
                rate_limited=int(data["rate_limited"]),
                post_calls=int(data["post_calls"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BenchError("localslack", f"printed no record ({exc}): {line[:200]!r}") from None


# --- localslack in its own process ---------------------------------------------------------------


def _serve(config_line: str) -> int:
    """Child: start localslack as configured, print its URL, print its record when asked."""
    from localslack.server import LocalSlack

    config = json.loads(config_line)
    slack = LocalSlack(
        team_id=config["team_id"],
        workspace_rate=config["workspace_rate"],
        channel_rate=config["channel_rate"],
        random_429=config["random_429"],
        seed=config["seed"],
    )
    for user in config["users"]:
        slack.add_user(user, user.lower())
    with slack:
        print(slack.base_url, flush=True)
        for line in sys.stdin:
            if line.strip() == "record":
                counts = Counter(m.channel for m in slack.messages())
                record = {
                    "per_channel": dict(counts),
                    "rate_limited": slack.rate_limited_count,
                    "post_calls": len(slack.calls_to("chat.postMessage")),
                }
                print(json.dumps(record), flush=True)
    return 0


@dataclass
class _Slack:
    process: subprocess.Popen[bytes]
    url: str

    def record(self) -> SlackRecord:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"record\n")
        self.process.stdin.flush()
        return SlackRecord.parse(self.process.stdout.readline().decode())


@contextmanager
def _localslack(team_id: str, users: Sequence[str]) -> Iterator[_Slack]:
    config = {
        "team_id": team_id,
        "workspace_rate": WORKSPACE_RATE,
        "channel_rate": CHANNEL_RATE,
        "random_429": RANDOM_429,
        "seed": SLACK_SEED,
        "users": list(users),
    }
    with url_child(python_module("bench.delivery", "localslack"), config=config) as (process, url):
        yield _Slack(process, url)


# --- The run -------------------------------------------------------------------------------------


async def _owe_one_each(engine: AsyncEngine, team_id: str) -> list[str]:
    """Give the n-th item (by id) to the n-th owner, open and due on the tick's day."""
    table = ActionItem.__table__  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        ids = [
            int(row[0] or 0)
            for row in (
                await conn.execute(
                    sa.select(col(ActionItem.id))
                    .where(col(ActionItem.team_id) == team_id)
                    .order_by(col(ActionItem.id))
                )
            ).all()
        ]
        # Item n belongs to department n % DEPARTMENTS, and so does owner n (owners are dealt
        # round-robin), so every owner keeps an item of their own department.
        owners = [owner_id(n) for n in range(len(ids))]
        await conn.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("item"))
            .values(
                owner_id=sa.bindparam("owner"),
                status=ItemStatus.ON_TRACK.value,
                due=TICK.date(),
                snoozed_until=None,
                completed_at=None,
            ),
            [{"item": item, "owner": owner} for item, owner in zip(ids, owners, strict=True)],
        )
    return owners


async def _states(engine: AsyncEngine) -> Counter[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(col(Notification.state), sa.func.count()).group_by(col(Notification.state))
        )
        return Counter({str(state): int(n) for state, n in rows.all()})


@dataclass
class _Outcome:
    planned: int
    states: Counter[str]
    reports: list[DeliveryReport]
    elapsed: float
    calls: int
    record: SlackRecord


async def _deliver_all(url: str) -> _Outcome:
    await upgrade_async(url)
    plan = SeedPlan(items=DIGESTS, owners=DIGESTS, departments=DEPARTMENTS, now=SEED_AS_OF)
    engine = create_engine(url)
    try:
        await seed(engine, plan)
        owners = await _owe_one_each(engine, plan.team_id)
        sessions = session_factory(engine)
        config = PlanConfig(zone=ZONE, calendar=calendar_for_year(("US-PA",), None, TICK.year))
        planned = await plan_tick(sessions, team_id=plan.team_id, now=TICK, config=config)
        if planned.inserted != DIGESTS:
            raise BenchError("delivery", f"expected {DIGESTS} digests planned; {planned.summary()}")
        with _localslack(plan.team_id, owners) as slack:
            client = AsyncWebClient(token=TOKEN, base_url=slack.url, timeout=30, retry_handlers=[])
            limiter = SendLimiter(workspace_rate=WORKSPACE_RATE, channel_rate=CHANNEL_RATE)
            reports: list[DeliveryReport] = []
            dm_cache: dict[str, str] = {}
            calls = 0
            started = time.perf_counter()
            while True:
                elapsed = time.perf_counter() - started
                if elapsed > GIVE_UP_AFTER:
                    raise BenchError("delivery", f"rows still unsettled after {GIVE_UP_AFTER:.0f} s")
                # The tick's clock moves with the wall clock, so Retry-After delays come due.
                report = await deliver(
                    sessions,
                    client,
                    owner="bench-delivery",
                    now=TICK + timedelta(seconds=elapsed),
                    limiter=limiter,
                    config=DeliveryConfig(),
                    default_zone=ZONE,
                    dm_cache=dm_cache,
                )
                calls += 1
                reports.append(report)
                states = await _states(engine)
                if not any(states[s] for s in UNSETTLED):
                    break
                if not report.claimed:
                    await asyncio.sleep(IDLE_PAUSE)
            elapsed = time.perf_counter() - started
            record = slack.record()
        return _Outcome(DIGESTS, states, reports, elapsed, calls, record)
    finally:
        await engine.dispose()


def _tables(outcome: _Outcome) -> None:
    sent = outcome.states[NotificationState.SENT.value]
    lost = outcome.planned - sent
    doubled = duplicated(outcome.record.per_channel)
    floor = minimum_seconds(outcome.planned, WORKSPACE_RATE)
    ratio = outcome.elapsed / floor
    retried = sum(r.retried for r in outcome.reports)
    print_table(
        [
            "database",
            "owed",
            "delivered",
            "sent rows",
            "failed",
            "ambiguous",
            "lost",
            "duplicated",
            "429s (Slack)",
            "retries (bot)",
            "posts",
            "deliver calls",
            "elapsed s",
            "minimum s",
            "ratio",
        ],
        [
            [
                "SQLite",
                f"{outcome.planned:,}",
                f"{len(outcome.record.per_channel):,}",
                f"{sent:,}",
                outcome.states[NotificationState.FAILED.value],
                outcome.states[NotificationState.AMBIGUOUS.value],
                lost,
                doubled,
                outcome.record.rate_limited,
                retried,
                f"{outcome.record.post_calls:,}",
                outcome.calls,
                f"{outcome.elapsed:.1f}",
                f"{floor:.1f}",
                fmt_ratio(ratio),
            ]
        ],
    )
    print_table(
        ["database", "zero lost", "zero duplicated", f"elapsed within {RATIO_LIMIT:g}× of minimum"],
        [
            [
                "SQLite",
                verdict(lost == 0, f"{lost} lost"),
                verdict(doubled == 0, f"{doubled} duplicated"),
                verdict(ratio <= RATIO_LIMIT, f"{fmt_ratio(ratio)} ≤ {RATIO_LIMIT:g}×"),
            ]
        ],
    )
    print(
        "'delivered' counts recipients with at least one message in localslack's record; 'lost'\n"
        "is owed minus rows marked sent; 'duplicated' is messages beyond the first per recipient.\n"
        "'429s' are localslack's answers (random plus budget overruns); 'minimum' is owed / 50 per s.\n"
        "Each random 429 also costs the slot the limiter booked for it, so about 2% over the\n"
        "minimum is the floor of this set-up."
    )


async def _run(command: str) -> int:
    print_header(
        TITLE,
        command,
        {
            "workload": f"{DIGESTS:,} owner digests (one item each, distinct owners), SQLite outbox",
            "localslack": f"own process; {WORKSPACE_RATE:g} posts/s per workspace, {CHANNEL_RATE:g}/s per "
            f"channel, {RANDOM_429:.0%} random 429 with Retry-After",
            "bot": f"SendLimiter({WORKSPACE_RATE:g}/s, {CHANNEL_RATE:g}/s per channel), DeliveryConfig() "
            "defaults; deliver() called until no row is pending or sending",
        },
    )
    with tempfile.TemporaryDirectory(prefix="reap-bench-") as tmp:
        outcome = await _deliver_all(f"sqlite+aiosqlite:///{Path(tmp) / 'delivery.db'}")
    print()
    _tables(outcome)
    return 0


def main(command: str | None = None) -> int:
    """Run the benchmark and print its tables."""
    return asyncio.run(_run(command or bench_command([NAME])))


if __name__ == "__main__":
    if sys.argv[1:2] == ["localslack"]:
        raise SystemExit(_serve(sys.stdin.readline()))
    raise SystemExit(main())
