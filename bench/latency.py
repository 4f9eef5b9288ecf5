"""Item 1: command latency and throughput of `reap serve` against two floors, in one run.

Three kinds of server, each in its own process behind uvicorn on loopback, all running at once
and measured in interleaved rounds so that a noisy neighbour hurts every one alike:

* the Starlette floor: a bare endpoint that reads the body and answers "ok" (the HTTP stack);
* the Bolt floor: a bare slack_bolt AsyncApp whose /reap handler only acks, in Bolt's default
  async mode (process_before_response=False), served through Bolt's own Starlette adapter;
* `reap serve` (the real process, `python -m bot.cli serve`) over 100,000 seeded items, on SQLite
  and, when BENCH_DATABASE_URL or TEST_DATABASE_URL names a server, on PostgreSQL, where it also
  runs with `--workers 2` (two processes on one port) beside one.

The client is this process (never a server's): a lean asyncio HTTP/1.1 client for latency at
concurrency 1 and 8, and Debian's wrk replaying pre-signed requests for throughput at 32 (or a
multi-process Python generator when wrk is absent, which the table then says). Each server's CPU
time (its whole process tree, from /proc) is read around the c=8 and c=32 phases, so the table
also gives CPU milliseconds per answered request: on a shared machine that figure moves far less
than any latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bench.common import (
    EVENTS_PATH,
    MIB,
    SECRET,
    TEAM,
    TOKEN,
    Answer,
    BenchError,
    LoadResult,
    Server,
    SignedRequest,
    Throughput,
    bench_command,
    child_env,
    closed_loop,
    cpu_seconds,
    fmt_ms,
    fmt_ratio,
    free_port,
    hide_password,
    localslack_process,
    machine_cpu,
    median,
    percentile,
    postgres_schema,
    postgres_url,
    print_header,
    print_table,
    process_tree,
    python_module,
    rss_bytes,
    run_checked,
    run_python_load,
    run_wrk,
    signed,
    slash_command,
    uvicorn_factory,
    verdict,
    wrk_path,
)
from bench.seed import SeedPlan, SeedReport, seed

ORDER = 1
NAME = "latency"
TITLE = "1. Command latency vs the floors"

ITEMS = 100_000
ROUNDS = 3
C1_REQUESTS = 150
C8_REQUESTS = 240
WARMUP_REQUESTS = 64
THROUGHPUT_CONNECTIONS = 32
THROUGHPUT_SECONDS = 3.0
WRK_THREADS = 1  # one wrk thread drives tens of thousands of requests a second; leave the CPU to servers
PYTHON_GENERATORS = 2
# Distinct items per throughput request list, each set at risk and back: wrk replays the list round
# and round, and a request sent again is a replay the bot answers with an empty 200, so the list
# must outlast the phase (3 s at up to 1,300 requests a second).
TOGGLE_REFS = 2_000

# Targets from issue 16, each against the Bolt floor measured in the same run.
P99_C8_LIMIT = 0.050
BOLT_THROUGHPUT_SHARE = 0.25
WORKERS_SPEEDUP = 1.7
WORKERS = 2


# --- The floors (uvicorn factories) -------------------------------------------------------------


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def starlette_floor() -> Starlette:
    """A bare endpoint that reads the body and answers "ok": the floor of the HTTP stack."""

    async def events(request: Request) -> Response:
        await request.body()
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route(EVENTS_PATH, events, methods=["POST"]), Route("/healthz", _healthz, methods=["GET"])]
    )


def bolt_floor() -> Starlette:
    """A bare Bolt app in its default async mode whose /reap handler only acks: the framework floor."""
    from typing import Any

    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_bolt.authorization import AuthorizeResult

    async def authorize(enterprise_id: str | None, team_id: str | None, **_: Any) -> AuthorizeResult:
        # Like the real app: a fixed token, so no auth.test call on any request.
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=TOKEN,
            bot_user_id="U0REAPBOT",
            bot_id="B0REAPBOT",
        )

    bolt = AsyncApp(signing_secret=SECRET, authorize=authorize)

    @bolt.command("/reap")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(bolt)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    return Starlette(
        routes=[Route(EVENTS_PATH, events, methods=["POST"]), Route("/healthz", _healthz, methods=["GET"])]
    )


# --- What each workload sends --------------------------------------------------------------------


class ListRequests:
    """`/reap list mine` from each owner in turn."""

    text = "list mine"

    def __init__(self, owners: Sequence[str]) -> None:
        if not owners:
            raise BenchError("list workload", "the seed has no active owners")
        self._owners = itertools.cycle(owners)

    def fresh(self, count: int, *, timestamp: int) -> list[SignedRequest]:
        """`count` signed requests."""
        return [
            signed(slash_command(user_id=next(self._owners), text=self.text), timestamp=timestamp)
            for _ in range(count)
        ]

    def replay(self, count: int, *, timestamp: int) -> list[SignedRequest]:
        """A list to replay round and round (any order is fine for reads)."""
        return self.fresh(count, timestamp=timestamp)


class StatusRequests:
    """`/reap status <ref> at-risk` by each item's owner, on items never touched before.

    Every request must write, so no item is sent the status it already has: latency requests
    each take a fresh on-track item and set it at risk; a throughput list takes fresh items,
    sets each at risk and then back on track, so replaying the list round and round keeps
    alternating (a ref comes round again only after hundreds of other requests, never while
    its previous change is still in flight).
    """

    def __init__(self, pool: Sequence[tuple[str, str]]) -> None:
        self._pool = iter(pool)
        self._left = len(pool)

    def _take(self, count: int) -> list[tuple[str, str]]:
        if count > self._left:
            raise BenchError(
                "status workload", f"needs {count} more untouched on-track items; raise the seed size"
            )
        self._left -= count
        return [next(self._pool) for _ in range(count)]

    def fresh(self, count: int, *, timestamp: int) -> list[SignedRequest]:
        """`count` signed requests, each setting a different untouched item at risk."""
        return [
            signed(slash_command(user_id=owner, text=f"status {ref} at-risk"), timestamp=timestamp)
            for ref, owner in self._take(count)
        ]

    def replay(self, count: int, *, timestamp: int) -> list[SignedRequest]:
        """`count` // 2 fresh items set at risk, then the same items back on track."""
        pairs = self._take(max(1, count // 2))
        return [
            signed(slash_command(user_id=owner, text=f"status {ref} {status}"), timestamp=timestamp)
            for status in ("at-risk", "on-track")
            for ref, owner in pairs
        ]


@dataclass
class RoundResult:
    """One round of one workload."""

    c1: LoadResult  # httpx
    c8: LoadResult  # raw
    lean_c1: LoadResult  # raw
    throughput: Throughput
    # Server CPU seconds per answered request in the c=8 and c=32 phases (NaN: not measured).
    cpu_c8: float = math.nan
    cpu_c32: float = math.nan
    # Cores busy during the c=32 phase: this server's (its process tree), and the whole machine's.
    server_cores: float = math.nan
    machine_cores: float = math.nan


@dataclass
class Workload:
    """One (server, database, command) being measured."""

    server: str
    database: str
    command: str
    port: int
    pid: int
    source: ListRequests | StatusRequests
    check: Callable[[Answer], bool]
    expect: bytes
    rounds: list[RoundResult] = field(default_factory=list)
    rss: int = 0

    @property
    def label(self) -> tuple[str, str, str]:
        """The first three table cells."""
        return (self.server, self.database, self.command)

    def p(self, phase: str, q: float) -> float:
        """The median over rounds of the q-th percentile of a phase ('c1', 'c8' or 'lean_c1').

        NaN when a round got no correct answer at all, so the table shows a gap, not a number.
        """
        samples = [getattr(r, phase).latencies for r in self.rounds]
        if not all(samples):
            return math.nan
        return median([percentile(s, q) for s in samples])

    def cores(self, whose: str) -> float:
        """The median over rounds of the cores busy at c=32 ('server' or 'machine')."""
        values = [getattr(r, f"{whose}_cores") for r in self.rounds]
        return median(values) if values and not any(math.isnan(v) for v in values) else math.nan

    def cpu(self, phase: str) -> float:
        """The median over rounds of the server's CPU seconds per answered request ('c8' or 'c32')."""
        values = [getattr(r, f"cpu_{phase}") for r in self.rounds]
        return median(values) if values and not any(math.isnan(v) for v in values) else math.nan

    @property
    def per_second(self) -> float:
        """The median over rounds of the throughput at 32 connections."""
        return median([r.throughput.per_second for r in self.rounds])

    @property
    def failures(self) -> int:
        """Wrong or missing answers over every round."""
        return sum(
            r.c1.failures + r.c8.failures + r.lean_c1.failures + r.throughput.failures for r in self.rounds
        )

    def first_failure(self) -> str:
        """The first wrong answer seen by the latency client, if any."""
        phases = ("c1", "c8", "lean_c1")
        return next(
            (getattr(r, x).first_failure for r in self.rounds for x in phases if getattr(r, x).first_failure),
            "",
        )


# --- Running it ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """Sizes of a run (overridable with BENCH_* variables for a quick look)."""

    items: int = ITEMS
    rounds: int = ROUNDS
    c1_requests: int = C1_REQUESTS
    c8_requests: int = C8_REQUESTS
    seconds: float = THROUGHPUT_SECONDS

    @classmethod
    def from_env(cls) -> Options:
        """Defaults, with BENCH_ITEMS, BENCH_ROUNDS and BENCH_SECONDS applied."""
        return cls(
            items=int(os.environ.get("BENCH_ITEMS", ITEMS)),
            rounds=max(1, int(os.environ.get("BENCH_ROUNDS", ROUNDS))),
            seconds=float(os.environ.get("BENCH_SECONDS", THROUGHPUT_SECONDS)),
        )


def _ok(answer: Answer) -> bool:
    return answer.status == 200


def _says(text: bytes) -> Callable[[Answer], bool]:
    def check(answer: Answer) -> bool:
        return answer.status == 200 and text in answer.body

    return check


def serve_supports_workers() -> bool:
    """Whether this checkout's `reap serve` takes --workers (older ones ran one process only)."""
    return "--workers" in run_checked(
        python_module("bot.cli", "serve", "--help"), env=child_env(), part="reap serve --help"
    )


async def _reap_server(
    stack: contextlib.AsyncExitStack,
    *,
    name: str,
    database_url: str,
    slack_url: str,
    workdir: Path,
    items: int,
    workers: Sequence[int] = (1,),
) -> tuple[list[Server], SeedReport]:
    """Migrate with `reap db upgrade`, seed in bulk, then start `reap serve` once per number of
    workers, all on the same database (not yet healthy)."""
    env = child_env(
        DATABASE_URL=database_url,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_API_URL=slack_url,
        REAP_LOG_LEVEL="WARNING",
        # The seeded plan has thousands of overdue items; the ticker's digests would be load the
        # floors do not carry, so this measures command handling alone.
        REAP_TICKER="false",
    )
    run_checked(python_module("bot.cli", "db", "upgrade"), env=env, part=f"{name}: reap db upgrade")
    report = await seed(database_url, SeedPlan(items=items, now=datetime.now(UTC), team_id=TEAM))
    print(
        f"  seeded {name}: {report.items:,} items, {report.rows.get('audit_event', 0):,} audit events, "
        f"{len(report.owners):,} owners in {report.seconds:.1f} s",
        flush=True,
    )
    servers = []
    for count in workers:
        port = free_port()
        command = python_module("bot.cli", "serve", "--port", str(port))
        if count > 1:
            command += ["--workers", str(count)]
        log = workdir / f"reap-{name}-{count}.log"
        server = Server(f"reap serve ({name}, {count} worker(s))", command, env=env, port=port, log=log)
        stack.enter_context(server)
        servers.append(server)
    return servers, report


def _floor(stack: contextlib.AsyncExitStack, name: str, factory: str, workdir: Path) -> Server:
    port = free_port()
    server = Server(
        name, uvicorn_factory(factory, port), env=child_env(), port=port, log=workdir / f"{port}.log"
    )
    stack.enter_context(server)
    return server


async def _workloads(
    stack: contextlib.AsyncExitStack, workdir: Path, slack_url: str, options: Options
) -> list[Workload]:
    """Start every server (PostgreSQL's schema first, so it is dropped after its server stops)."""
    databases = [("SQLite", f"sqlite+aiosqlite:///{workdir / 'reap.db'}")]
    if pg := postgres_url():
        try:
            databases.append(("PostgreSQL", await stack.enter_async_context(postgres_schema(pg[1]))))
        except Exception as exc:  # any driver or network error means "no PostgreSQL here"
            print(
                f"  PostgreSQL unreachable ({type(exc).__name__}: {exc}); measuring SQLite only", flush=True
            )
    starlette = _floor(stack, "Starlette floor", "bench.latency:starlette_floor", workdir)
    bolt = _floor(stack, "Bolt floor", "bench.latency:bolt_floor", workdir)
    probe = ListRequests([f"U0B{n:06d}" for n in range(8)])
    workloads = [
        Workload(
            "Starlette floor",
            "—",
            "any signed POST",
            starlette.port,
            starlette.pid,
            probe,
            _says(b"ok"),
            b"ok",
        ),
        Workload("Bolt floor (default async)", "—", "/reap (ack only)", bolt.port, bolt.pid, probe, _ok, b""),
    ]
    servers = [starlette, bolt]
    several = serve_supports_workers()
    for name, url in databases:
        counts = (1, WORKERS) if several and name == "PostgreSQL" else (1,)
        started, report = await _reap_server(
            stack,
            name=name,
            database_url=url,
            slack_url=slack_url,
            workdir=workdir,
            items=options.items,
            workers=counts,
        )
        servers += started
        # Servers on one database share the pools: a status request never finds an item touched.
        listing = ListRequests(report.owners)
        changes = StatusRequests(report.on_track)
        for count, server in zip(counts, started, strict=True):
            label = "reap serve" if count == 1 else f"reap serve --workers {count}"
            workloads += [
                Workload(
                    label,
                    name,
                    "/reap list mine",
                    server.port,
                    server.pid,
                    listing,
                    _says(b"Your open items"),
                    b"Your open items",
                ),
                Workload(
                    label,
                    name,
                    "/reap status <ref> at-risk",
                    server.port,
                    server.pid,
                    changes,
                    _says(b"is now at risk"),
                    b"is now",
                ),
            ]
    for server in servers:
        server.wait_healthy()
    return workloads


def _throughput(workload: Workload, options: Options, workdir: Path, timestamp: int) -> Throughput:
    generators = WRK_THREADS if wrk_path() else PYTHON_GENERATORS
    lists = [workload.source.replay(2 * TOGGLE_REFS, timestamp=timestamp) for _ in range(generators)]
    if wrk_path() is not None:
        return run_wrk(
            workload.port,
            lists,
            expect=workload.expect,
            connections=THROUGHPUT_CONNECTIONS,
            seconds=options.seconds,
            workdir=workdir,
        )
    return run_python_load(
        workload.port,
        lists,
        expect=workload.expect,
        connections=THROUGHPUT_CONNECTIONS,
        seconds=options.seconds,
    )


async def _measure(workload: Workload, options: Options, workdir: Path) -> RoundResult:
    async def phase(count: int, concurrency: int, client: str) -> LoadResult:
        # Signed just before each phase, so every request is well inside Slack's five minutes.
        requests = workload.source.fresh(count, timestamp=int(time.time()))
        return await closed_loop(
            workload.port, requests, concurrency=concurrency, check=workload.check, client=client
        )

    c1 = await phase(options.c1_requests, 1, "httpx")
    lean = await phase(options.c1_requests, 1, "raw")
    before = cpu_seconds(workload.pid)
    c8 = await phase(options.c8_requests, 8, "raw")
    after_c8 = cpu_seconds(workload.pid)
    busy, total = machine_cpu()
    throughput = await asyncio.to_thread(_throughput, workload, options, workdir, int(time.time()))
    after_c32 = cpu_seconds(workload.pid)
    busy_after, total_after = machine_cpu()
    share = (busy_after - busy) / (total_after - total) if total_after > total else math.nan
    return RoundResult(
        c1=c1,
        c8=c8,
        lean_c1=lean,
        throughput=throughput,
        cpu_c8=(after_c8 - before) / max(1, len(c8.latencies)),
        cpu_c32=(after_c32 - after_c8) / max(1, throughput.answered),
        server_cores=(after_c32 - after_c8) / throughput.seconds if throughput.seconds else math.nan,
        machine_cores=share * (os.cpu_count() or 1),
    )


def _cpu_ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:.2f}"


def _cores(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def _targets(workloads: Sequence[Workload]) -> list[list[str]]:
    """Issue 16's targets for each reap workload, against the Bolt floor of the same run."""
    bolt = workloads[1]
    one = {(w.database, w.command): w for w in workloads[2:] if w.server == "reap serve"}
    rows = []
    for w in workloads[2:]:
        p50 = w.p("c1", 50)
        p99 = w.p("c8", 99)
        share = w.per_second / bolt.per_second
        cells = [
            verdict(p50 < bolt.p("c1", 50), f"{fmt_ms(p50)} < {fmt_ms(bolt.p('c1', 50))} ms"),
            verdict(p99 < P99_C8_LIMIT, f"{fmt_ms(p99)} < {fmt_ms(P99_C8_LIMIT)} ms"),
        ]
        if w.server == "reap serve":
            cells.append(verdict(share >= BOLT_THROUGHPUT_SHARE, f"{share:.2f}× ≥ {BOLT_THROUGHPUT_SHARE}×"))
        else:
            speedup = w.per_second / one[(w.database, w.command)].per_second
            detail = f"{speedup:.2f}× one worker ≥ {WORKERS_SPEEDUP}×"
            cells.append(verdict(speedup >= WORKERS_SPEEDUP, detail))
        rows.append([*w.label, *cells])
    return rows


def _report(workloads: Sequence[Workload], tool: str) -> None:
    floor = workloads[0]
    floor_p50, floor_rps = floor.p("c1", 50), floor.per_second
    rows = [
        [
            *w.label,
            fmt_ms(w.p("c1", 50)),
            fmt_ms(w.p("c1", 99)),
            fmt_ms(w.p("lean_c1", 50)),
            fmt_ms(w.p("c8", 50)),
            fmt_ms(w.p("c8", 99)),
            f"{w.per_second:,.0f}",
            _cpu_ms(w.cpu("c8")),
            _cpu_ms(w.cpu("c32")),
            _cores(w.cores("server")),
            _cores(w.cores("machine")),
            fmt_ratio(w.p("c1", 50) / floor_p50),
            fmt_ratio(w.per_second / floor_rps),
            str(w.failures),
            f"{w.rss / MIB:.0f}",
        ]
        for w in workloads
    ]
    print_table(
        [
            "server",
            "database",
            "command",
            "p50 c=1 httpx",
            "p99 c=1 httpx",
            "p50 c=1 raw",
            "p50 c=8 raw",
            "p99 c=8 raw",
            "req/s c=32",
            "CPU ms/req c=8",
            "CPU ms/req c=32",
            "server cores c=32",
            "machine cores c=32",
            "p50 c=1 / floor",
            "req/s / floor",
            "failed",
            "RSS MiB",
        ],
        rows,
    )
    print_table(
        ["server", "database", "command", "p50 c=1 vs Bolt floor", "p99 c=8", "req/s c=32"],
        _targets(workloads),
    )
    print(
        "Latencies in ms, each the median over rounds, from the benchmark process (no server runs in\n"
        "it). 'httpx' is httpx.AsyncClient with keep-alive, the client the c=1 target was set with (it\n"
        "adds 1-2 ms of its own on this machine); 'raw' is a minimal asyncio HTTP/1.1 client adding\n"
        "tens of microseconds, so c=8 shows queueing in the server, not in the client. 'floor' is the\n"
        "Starlette floor. CPU ms/req is the server's user+system CPU (its whole process tree) over the\n"
        "phase divided by the requests it answered; PostgreSQL's own CPU is not in it. Cores c=32 are\n"
        "the CPU busy during that phase, the server's and the whole machine's (wrk, PostgreSQL and\n"
        f"anything else running included, out of {os.cpu_count()}). RSS is each\n"
        "server's resident memory after the run (all its processes). req/s c=32 is measured against\n"
        "the Bolt floor for one process, and against one process for several workers.\n"
        f"Throughput: {tool}."
    )
    for w in workloads:
        if w.failures:
            print(f"! {' / '.join(w.label)}: {w.failures} failed requests; first: {w.first_failure()}")


async def _run(options: Options, command: str) -> int:
    pg = postgres_url()
    tool = (
        f"wrk ({wrk_path()}), {WRK_THREADS} thread, {THROUGHPUT_CONNECTIONS} connections, pre-signed bodies"
        if wrk_path()
        else f"Python generator, {PYTHON_GENERATORS} processes, {THROUGHPUT_CONNECTIONS} connections "
        "(wrk not available; the generator shares the CPU with the servers, so req/s is a lower bound)"
    )
    print_header(
        TITLE,
        command,
        {
            "workload": f"{options.items:,} seeded items; {options.rounds} interleaved rounds; per round "
            f"{options.c1_requests} requests at c=1, {options.c8_requests} at c=8, "
            f"{options.seconds:.0f} s at c={THROUGHPUT_CONNECTIONS}",
            "servers": "uvicorn (h11, asyncio loop), log level warning, on loopback; one process each "
            f"but the --workers {WORKERS} row",
            "PostgreSQL": f"{pg[0]}={hide_password(pg[1])}"
            if pg
            else "not measured (set BENCH_DATABASE_URL or TEST_DATABASE_URL)",
            "throughput": tool,
        },
    )
    with tempfile.TemporaryDirectory(prefix="reap-bench-") as tmp, localslack_process() as slack_url:
        async with contextlib.AsyncExitStack() as stack:
            workloads = await _workloads(stack, Path(tmp), slack_url, options)
            for w in workloads:
                warm = w.source.fresh(WARMUP_REQUESTS, timestamp=int(time.time()))
                await closed_loop(w.port, warm, concurrency=8, check=w.check)
            for number in range(1, options.rounds + 1):
                started = time.perf_counter()
                for w in workloads:
                    w.rounds.append(await _measure(w, options, Path(tmp)))
                print(
                    f"  round {number}/{options.rounds} done in {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
            for w in workloads:
                w.rss = sum(rss_bytes(pid) for pid in process_tree(w.pid))
    print()
    _report(workloads, tool)
    return 0


def main(command: str | None = None) -> int:
    """Run the benchmark and print its tables."""
    return asyncio.run(_run(Options.from_env(), command or bench_command([NAME])))


if __name__ == "__main__":
    raise SystemExit(main())
