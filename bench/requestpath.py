"""Item 7: what one command costs inside `reap serve`: CPU, SQL statements, and where the time goes.

The latency benchmark measures the server from outside, where a shared two-core machine's noise
lands in every figure. This one drives the real app (create_app + create_asgi, the code `reap
serve` runs) in this process through its ASGI interface, one request at a time, and reports what
noise barely moves: the process's CPU time per request (every thread, so aiosqlite's worker
counts; PostgreSQL's own CPU does not, being another process), the number of SQL statements each
command sends, and, with BENCH_PROFILE=1, a cProfile of the request path summed by package.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.common import (
    FORM,
    SECRET,
    TEAM,
    TOKEN,
    BenchError,
    bench_command,
    child_env,
    hide_password,
    median,
    postgres_schema,
    postgres_url,
    print_header,
    print_table,
    python_module,
    run_checked,
    sign,
    slash_command,
)
from bench.seed import SeedPlan, SeedReport, seed

ORDER = 7
NAME = "requestpath"
TITLE = "7. The request path: CPU and SQL statements per command, in process"

ITEMS = 100_000
REQUESTS = 300
WARMUP = 40
ROUNDS = 3
PROFILE_TOP = 25


@dataclass(frozen=True)
class Options:
    """Sizes of a run (BENCH_ITEMS, BENCH_REQUESTS, BENCH_ROUNDS), and what to profile: BENCH_PROFILE=1
    profiles the first two commands, BENCH_PROFILE=help,show those whose label holds a word given;
    BENCH_EXPLAIN=1 prints the query plan of every statement the commands send."""

    items: int = ITEMS
    requests: int = REQUESTS
    rounds: int = ROUNDS
    profile: tuple[str, ...] = ()
    explain: bool = False

    @classmethod
    def from_env(cls) -> Options:
        """Defaults, with the BENCH_* variables applied."""
        return cls(
            items=int(os.environ.get("BENCH_ITEMS", ITEMS)),
            requests=max(1, int(os.environ.get("BENCH_REQUESTS", REQUESTS))),
            rounds=max(1, int(os.environ.get("BENCH_ROUNDS", ROUNDS))),
            profile=_profiled(os.environ.get("BENCH_PROFILE", "")),
            explain=os.environ.get("BENCH_EXPLAIN", "") not in ("", "0"),
        )


def _profiled(value: str) -> tuple[str, ...]:
    if value in ("", "0"):
        return ()
    if value == "1":
        return ("list mine", "status")
    return tuple(word.strip() for word in value.split(",") if word.strip())


def _chosen(loads: list[Workload], words: tuple[str, ...]) -> list[Workload]:
    """The workloads whose label holds one of `words`."""
    return [w for w in loads if any(word in w.label for word in words)]


# --- Calling the ASGI app directly ----------------------------------------------------------------


async def asgi_post(asgi: Any, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST `body` to /slack/events through the ASGI interface (no socket, no HTTP parser)."""
    raw = [(b"host", b"bench"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/slack/events",
        "raw_path": b"/slack/events",
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0
    parts: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # never: a disconnect is not part of this benchmark
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await asgi(scope, receive, send)
    return status, b"".join(parts)


def signed_command(user_id: str, text: str) -> tuple[bytes, dict[str, str]]:
    """A `/reap <text>` body from `user_id`, signed now."""
    body = slash_command(user_id=user_id, text=text)
    return body, {"Content-Type": FORM, **sign(body, timestamp=int(time.time()))}


# --- Workloads ------------------------------------------------------------------------------------


@dataclass
class Workload:
    """One command sent again and again: what to send, and what its answer must say."""

    label: str
    make: Callable[[], tuple[bytes, dict[str, str]]]
    expect: bytes


def workloads(report: SeedReport) -> list[Workload]:
    """The commands measured: the two of the latency benchmark and three more a person sends often."""
    owners = iter(report.owners * 1000)
    fresh = iter(report.on_track)
    shown = iter(report.on_track[len(report.on_track) // 2 :] * 100)

    def listing() -> tuple[bytes, dict[str, str]]:
        return signed_command(next(owners), "list mine")

    def status() -> tuple[bytes, dict[str, str]]:
        try:
            ref, owner = next(fresh)
        except StopIteration:
            raise BenchError("status workload", "ran out of on-track items; raise BENCH_ITEMS") from None
        return signed_command(owner, f"status {ref} at-risk")

    def show() -> tuple[bytes, dict[str, str]]:
        ref, owner = next(shown)
        return signed_command(owner, f"show {ref}")

    def note() -> tuple[bytes, dict[str, str]]:
        ref, owner = next(shown)
        return signed_command(owner, f'note {ref} "Two of three sessions held."')

    return [
        Workload("/reap list mine", listing, b"Your open items"),
        Workload("/reap status <ref> at-risk", status, b"is now at risk"),
        Workload("/reap show <ref>", show, b"#"),
        Workload("/reap note <ref> text", note, b"Noted on"),
        Workload("/reap help", lambda: signed_command(next(owners), "help"), b"/reap"),
    ]


# --- Measuring ------------------------------------------------------------------------------------


@dataclass
class Figures:
    """One workload's results over every round."""

    cpu: list[float] = field(default_factory=list)  # seconds of process CPU per request, per round
    wall: list[float] = field(default_factory=list)  # seconds of wall clock per request, per round
    statements: list[int] = field(default_factory=list)  # per request, every request
    failures: int = 0
    first_failure: str = ""


class StatementCounter:
    """Counts the SQL statements an engine sends (executemany counts once: one round trip)."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


async def _one(
    asgi: Any,
    app: Any,
    workload: Workload,
    figures: Figures | None,
    counter: StatementCounter,
    request: tuple[bytes, dict[str, str]] | None = None,
) -> None:
    body, headers = request or workload.make()
    before = counter.count
    status, answer = await asgi_post(asgi, body, headers)
    await app.tasks.drain()  # what the request left to run after its ack is part of its cost
    if figures is None:
        return
    figures.statements.append(counter.count - before)
    if status != 200 or workload.expect not in answer:
        figures.failures += 1
        figures.first_failure = figures.first_failure or f"{status} {answer[:300]!r}"


async def measure(
    asgi: Any, app: Any, workload: Workload, requests: int, counter: StatementCounter, figures: Figures
) -> None:
    """`requests` requests one after another: CPU and wall time per request into `figures`."""
    # Built and signed first, so the benchmark's own encoding and HMAC are not counted.
    prepared = [workload.make() for _ in range(requests)]
    cpu, wall = time.process_time(), time.perf_counter()
    for request in prepared:
        await _one(asgi, app, workload, figures, counter, request)
    figures.cpu.append((time.process_time() - cpu) / requests)
    figures.wall.append((time.perf_counter() - wall) / requests)


_PACKAGES = (
    ("sqlalchemy", "SQLAlchemy"),
    ("sqlmodel", "SQLModel"),
    ("aiosqlite", "aiosqlite + sqlite3"),
    ("sqlite3", "aiosqlite + sqlite3"),
    ("asyncpg", "asyncpg"),
    ("slack_bolt", "Bolt"),
    ("slack_sdk", "slack_sdk"),
    ("starlette", "Starlette"),
    ("pydantic", "pydantic"),
    ("asyncio", "asyncio"),
    ("json", "json"),
    ("/commands/", "reap: commands"),
    ("/messages/", "reap: messages"),
    ("/storage/", "reap: storage"),
    ("/domain/", "reap: domain"),
    ("/bot/", "reap: bot"),
)


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) summed by the package each function lives in, largest first."""
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        label = next((lbl for key, lbl in _PACKAGES if key in filename), None)
        if name == "<method 'poll' of 'select.epoll' objects>":
            label = "idle (waiting in epoll)"
        elif label is None:
            label = "built-ins (C)" if filename == "~" else f"other ({Path(filename).parent.name})"
        totals[label] += tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])


async def profile(asgi: Any, app: Any, workload: Workload, requests: int, counter: StatementCounter) -> None:
    """Print where `requests` requests of `workload` spend their time."""
    prepared = [workload.make() for _ in range(requests)]
    profiler = cProfile.Profile()
    profiler.enable()
    for request in prepared:
        await _one(asgi, app, workload, None, counter, request)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(t for _, t in by_package(stats))
    each = total / requests * 1000
    print(f"  profile of {requests} × {workload.label}: {each:.2f} ms of profiled time each")
    rows = [[label, f"{t / requests * 1000:.3f}", f"{t / total:.0%}"] for label, t in by_package(stats)[:14]]
    print_table(["package (own time)", "ms per request", "share"], rows)
    stats.sort_stats("tottime").print_stats(PROFILE_TOP)
    stats.sort_stats("cumulative").print_stats(r"/(commands|storage|messages|bot|domain)/", PROFILE_TOP)


# --- Running it -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def reap_app(database_url: str, slack_url: str) -> AsyncIterator[tuple[Any, Any]]:
    """The real app and its ASGI front door on `database_url`, identified with localslack."""
    from bot.app import create_app
    from bot.server import create_asgi
    from bot.settings import Settings

    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_signing_secret": SECRET,
        "slack_bot_token": TOKEN,
        "slack_api_url": slack_url,
        "ticker": False,
        "log_level": "WARNING",
    }
    settings = Settings(**values)
    app = create_app(settings)
    await app.start()
    try:
        yield app, create_asgi(app, manage_lifecycle=False)
    finally:
        await app.close()


async def _backend(name: str, url: str, options: Options, slack_url: str) -> dict[str, Figures]:
    env = child_env(DATABASE_URL=url)
    run_checked(python_module("bot.cli", "db", "upgrade"), env=env, part=f"{name}: reap db upgrade")
    report = await seed(url, SeedPlan(items=options.items, now=datetime.now(UTC), team_id=TEAM))
    print(f"  seeded {name}: {report.items:,} items in {report.seconds:.1f} s", flush=True)
    results: dict[str, Figures] = {}
    async with reap_app(url, slack_url) as (app, asgi):
        if app.engine is None:
            raise BenchError(name, "the app has no engine of its own")
        counter = StatementCounter(app.engine)
        loads = workloads(report)
        for w in loads:
            for _ in range(WARMUP):
                await _one(asgi, app, w, None, counter)
        for _ in range(options.rounds):
            for w in loads:
                await measure(asgi, app, w, options.requests, counter, results.setdefault(w.label, Figures()))
        for w in _chosen(loads, options.profile):
            await profile(asgi, app, w, options.requests, counter)
        if options.explain:
            await explain(asgi, app, loads, name)
    return results


# --- Query plans ----------------------------------------------------------------------------------


async def explain(asgi: Any, app: Any, loads: list[Workload], backend: str) -> None:
    """Send one request of each workload, then print the query plan of every statement it read
    or changed rows with, as the database chose it for the very parameters sent."""
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        sent.append((sql, parameters))

    engine = app.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for w in loads:
            await _one(asgi, app, w, None, StatementCounter(app.engine))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    planned: dict[str, Any] = {}
    for sql, parameters in sent:
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb in ("SELECT", "UPDATE", "DELETE") and sql not in planned:
            planned[sql] = parameters
    prefix = "EXPLAIN QUERY PLAN " if backend == "SQLite" else "EXPLAIN "
    print(f"  query plans on {backend} ({len(planned)} distinct statements):")
    async with app.engine.connect() as conn:
        for sql, parameters in planned.items():
            rows = (await conn.exec_driver_sql(prefix + sql, parameters)).all()
            lines = [str(row[-1]) for row in rows]
            print(f"    {' '.join(sql.split())[:150]}")
            for line in lines:
                print(f"      {line}")
    print(flush=True)


def _report(results: dict[str, dict[str, Figures]]) -> None:
    rows = []
    for backend, figures in results.items():
        for label, f in figures.items():
            rows.append(
                [
                    backend,
                    label,
                    f"{median(f.cpu) * 1000:.2f}",
                    f"{min(f.cpu) * 1000:.2f}",
                    f"{median(f.wall) * 1000:.2f}",
                    f"{median([float(s) for s in f.statements]):.0f}",
                    f"{max(f.statements)}",
                    str(f.failures),
                ]
            )
    print_table(
        [
            "database",
            "command",
            "CPU ms/req (median)",
            "CPU ms/req (best round)",
            "wall ms/req",
            "SQL statements",
            "max",
            "failed",
        ],
        rows,
    )
    print(
        "One request at a time through the app's ASGI interface (no socket), follow-ups drained.\n"
        "CPU is this process's (every thread); PostgreSQL's own CPU is not in it. Statements are\n"
        "counted with SQLAlchemy's before_cursor_execute (BEGIN and COMMIT on SQLite included)."
    )
    for backend, figures in results.items():
        for label, f in figures.items():
            if f.failures:
                print(f"! {backend} / {label}: {f.failures} failed; first: {f.first_failure}")


async def _run(options: Options, command: str) -> int:
    from localslack.server import LocalSlack

    pg = postgres_url()
    print_header(
        TITLE,
        command,
        {
            "workload": f"{options.items:,} seeded items; {options.rounds} rounds of {options.requests} "
            f"requests per command, after {WARMUP} to warm up",
            "PostgreSQL": f"{pg[0]}={hide_password(pg[1])}"
            if pg
            else "not measured (set BENCH_DATABASE_URL or TEST_DATABASE_URL)",
            "profile": ", ".join(options.profile) if options.profile else "no (BENCH_PROFILE=1 prints one)",
        },
    )
    results: dict[str, dict[str, Figures]] = {}
    with tempfile.TemporaryDirectory(prefix="reap-bench-") as tmp, LocalSlack(team_id=TEAM) as slack:
        results["SQLite"] = await _backend(
            "SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 'reap.db'}", options, slack.base_url
        )
        if pg is not None:
            async with postgres_schema(pg[1]) as url:
                results["PostgreSQL"] = await _backend("PostgreSQL", url, options, slack.base_url)
    print()
    _report(results)
    return 0


def main(command: str | None = None) -> int:
    """Run the benchmark and print its table."""
    return asyncio.run(_run(Options.from_env(), command or bench_command([NAME])))


if __name__ == "__main__":
    raise SystemExit(main())
