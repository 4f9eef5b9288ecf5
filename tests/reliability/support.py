"""Shared pieces for the fault-injection suite: seeded owners, `reap` subprocesses, a database
proxy that can be cut, and the exactly-once ledger checked against localslack's record."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from localslack.server import LocalSlack, Message
from reminders.delivery import EVENT_TYPE
from storage.engine import Sessions, transaction
from storage.models import Notification, NotificationState
from tests.factories import make_item, make_person, make_plan
from tests.harness import cli_env, free_port
from tests.reminders.support import SECRET, TOKEN

T = TypeVar("T")
# Monday 2 November 2026, 09:30 in New York: a business day, after the 09:00 reminder hour.
MONDAY_0930 = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
MONDAY = date(2026, 11, 2)
SOAK = bool(os.environ.get("REAP_SOAK"))
_SOAK_MARKS = (
    pytest.mark.slow,
    pytest.mark.skipif(not SOAK, reason="long variant: run with make soak / REAP_SOAK=1"),
)
FINAL = frozenset(
    {NotificationState.SENT, NotificationState.FAILED, NotificationState.AMBIGUOUS, NotificationState.SKIPPED}
)


class ReliabilityTimeoutError(AssertionError):
    """A condition the suite waits for did not arrive in time; says what it was."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"gave up after {seconds:.0f} s waiting for {what}")


def soak_only(test: T) -> T:
    """Mark a long variant: `make soak` selects `-m slow`, and it runs only with REAP_SOAK=1."""
    marked: Any = test
    for mark in _SOAK_MARKS:
        marked = mark(marked)
    return marked


def owners(count: int, prefix: str = "U0REL") -> list[str]:
    """`count` distinct Slack user ids."""
    return [f"{prefix}{n:04d}" for n in range(count)]


def add_members(slack: LocalSlack, people: list[str]) -> None:
    """Make `people` workspace members of localslack (New York time)."""
    for user_id in people:
        slack.add_user(user_id, user_id.lower(), tz="America/New_York")


async def seed_owed(
    sessions: Sessions, people: list[str], dues: list[date], *, coordinator: str | None = None
) -> None:
    """One OIT plan; each person owns one item per entry of `dues` (so each is owed digests)."""
    async with transaction(sessions) as session:
        plan = await make_plan(session, coordinator=coordinator, people=())
        for user_id in people:
            await make_person(session, user_id=user_id, department_id=plan.department.id)
        for n, user_id in enumerate(people):
            for m, due in enumerate(dues):
                await make_item(session, plan, title=f"Item {n}-{m} for {user_id}", owner=user_id, due=due)


async def outbox(sessions: Sessions) -> list[Notification]:
    """Every outbox row, oldest first."""
    async with sessions() as session:
        return list(await session.exec(select(Notification).order_by(col(Notification.id))))


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], *, within: float, every: float = 0.2
) -> None:
    """Poll `check` until it holds; fail naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise ReliabilityTimeoutError(what, within)
        await asyncio.sleep(every)


async def settled(sessions: Sessions, expected: int) -> bool:
    """Whether `expected` rows exist and every one is in a final state."""
    rows = await outbox(sessions)
    return len(rows) >= expected and all(row.state in FINAL for row in rows)


def reap_key(message: Message) -> str | None:
    """The outbox key a REAP message names in its metadata (None for other messages)."""
    metadata: Any = message.metadata
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return None
    key = (metadata.get("event_payload") or {}).get("key")
    return str(key) if key else None


@dataclass
class Ledger:
    """The Notification rows set against localslack's record of what was posted."""

    rows: list[Notification]
    posted: Counter[str] = field(default_factory=Counter)
    ts_of: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: list[Notification], slack: LocalSlack) -> Ledger:
        """Count every REAP message in localslack by the key it names."""
        ledger = cls(rows)
        for message in slack.messages():
            key = reap_key(message)
            if key is not None:
                ledger.posted[key] += 1
                ledger.ts_of[key] = message.ts
        return ledger

    def states(self) -> Counter[str]:
        """How many rows are in each state."""
        return Counter(row.state for row in self.rows)

    def doubled(self) -> dict[str, int]:
        """Keys posted more than once."""
        return {key: n for key, n in self.posted.items() if n > 1}

    def unaccounted(self) -> list[str]:
        """Rows marked sent that Slack never saw (or saw at another ts), and posts with no row."""
        known = {row.key for row in self.rows}
        wrong = [
            row.key
            for row in self.rows
            if row.state == NotificationState.SENT
            and (self.posted[row.key] != 1 or self.ts_of.get(row.key) != row.ts)
        ]
        return wrong + [key for key in self.posted if key not in known]

    def silently_dropped(self) -> list[str]:
        """Rows still unsettled, or skipped without a recorded reason: owed, but lost without a word."""
        return [
            row.key
            for row in self.rows
            if row.state not in FINAL or (row.state == NotificationState.SKIPPED and not row.last_error)
        ]

    def ambiguous(self) -> list[Notification]:
        """Rows left for a person to check, each with the reason recorded."""
        return [row for row in self.rows if row.state == NotificationState.AMBIGUOUS]

    def check(self) -> None:
        """Exactly once: nothing doubled, every sent row matches one post, nothing silently dropped."""
        assert not self.doubled(), f"posted more than once: {self.doubled()}"
        assert not self.unaccounted(), f"rows and Slack disagree: {self.unaccounted()[:10]}"
        assert not self.silently_dropped(), f"owed but neither sent nor reported: {self.silently_dropped()}"
        for row in self.ambiguous():
            # An ambiguous row is only honest if Slack holds at most one copy and the row says why.
            assert self.posted[row.key] <= 1 and row.last_error, row.key


def dms_per_person(slack: LocalSlack, people: list[str]) -> Counter[int]:
    """How many people got 0, 1, 2, ... DMs."""
    return Counter(len(slack.dms_to(user_id)) for user_id in people)


def reap_env(database_url: str, slack: LocalSlack, **extra: str) -> dict[str, str]:
    """The environment a `reap` subprocess runs with: this database, localslack, quiet logs."""
    env = cli_env()
    env |= {
        "DATABASE_URL": database_url,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": slack.base_url,
        "SLACK_TIMEOUT_SECONDS": "5",
        "REAP_TIMEZONE": "America/New_York",
        "REAP_HOLIDAYS": "US-PA",
        "REAP_LOG_LEVEL": "WARNING",
    }
    return env | extra


def reap(*args: str) -> list[str]:
    """The argv of `reap <args>` run with this interpreter."""
    return [sys.executable, "-m", "bot.cli", *args]


@dataclass
class Served:
    """One `reap serve --clock-start` subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no lease hand-back, connections cut mid-call."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_serve(env: dict[str, str], clock_start: datetime, log: Path) -> Served:
    """Start `reap serve --clock-start` on a free port; output goes to `log`."""
    port = free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            reap("serve", "--port", str(port), "--clock-start", clock_start.isoformat()),
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Served(process, f"http://127.0.0.1:{port}", log)


def stop(served: Served) -> None:
    """End the process if it still runs (SIGTERM, then SIGKILL); safe in finally blocks."""
    if served.process.poll() is not None:
        return
    served.process.send_signal(signal.SIGTERM)
    try:
        served.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(timeout=10)


@contextlib.contextmanager
def processes() -> Iterator[list[Served]]:
    """Collect served processes; every one is stopped on the way out, whatever happened."""
    started: list[Served] = []
    try:
        yield started
    finally:
        for served in started:
            stop(served)


async def run_reap(env: dict[str, str], *args: str, limit: float = 120) -> tuple[int, str]:
    """Run one `reap` command to completion: (exit code, combined output)."""
    process = await asyncio.create_subprocess_exec(
        *reap(*args), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(limit):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return int(process.returncode or 0), output.decode(errors="replace")


class DatabaseProxy:
    """A TCP proxy in front of PostgreSQL that can be cut (every connection dropped, new ones
    refused) and restored, as if the server stopped and started again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.down = False
        self.silent = False
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The port the bot connects to."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return int(self._server.sockets[0].getsockname()[1])

    def url_for(self, database_url: str) -> str:
        """`database_url` rewritten to go through this proxy."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    async def start(self) -> DatabaseProxy:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def cut(self) -> None:
        """The database goes away: open connections drop and new ones are hung up on."""
        self.down = True
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def black_hole(self) -> None:
        """The database goes silent (a dead host, a dropped route): connections are accepted and
        bytes taken, but nothing ever comes back, on open connections and new ones alike."""
        self.silent = True

    def restore(self) -> None:
        """The database is back: new connections reach it again."""
        self.down = False
        self.silent = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.silent:
            self._links.add(writer)
            try:
                with contextlib.suppress(ConnectionError, OSError):
                    while await reader.read(65536):
                        pass
            finally:
                self._links.discard(writer)
                writer.transport.abort()
            return
        if self.down:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._links -= {writer, up_writer}
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self.silent:
                    continue
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
