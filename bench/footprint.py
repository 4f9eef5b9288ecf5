"""Item 5: idle resident memory of `reap serve` and its start-up time to a healthy /healthz.

Each run spawns the server, polls /healthz every 10 ms until it answers 200 (start-up time is
from spawn to that answer: interpreter start, imports, app build, auth.test against localslack,
the first database check), lets it sit idle for a few seconds, then reads VmRSS (and the peak,
VmHWM) from /proc/<pid>/status. The two floors of item 1 run alongside as references, in
interleaved runs so a noisy moment hits every server alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    MIB,
    SECRET,
    TOKEN,
    Server,
    bench_command,
    child_env,
    fmt_ms,
    free_port,
    hide_password,
    localslack_process,
    median,
    postgres_schema,
    postgres_url,
    print_header,
    print_table,
    python_module,
    rss_bytes,
    run_checked,
    uvicorn_factory,
)

ORDER = 5
NAME = "footprint"
TITLE = "5. Footprint: idle memory and start-up time"

RUNS = 4
IDLE_SECONDS = 3.0


@dataclass
class Subject:
    """A server to start repeatedly, and what each start measured."""

    server: str
    database: str
    start: Callable[[Path, int], Server]
    startups: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)

    def row(self) -> list[str]:
        """The table row: medians, with the spread of start-up times."""
        return [
            self.server,
            self.database,
            fmt_ms(median(self.startups)),
            f"{fmt_ms(min(self.startups))}–{fmt_ms(max(self.startups))}",
            f"{median(self.rss) / MIB:.1f}",
            f"{median(self.peaks) / MIB:.1f}",
            str(len(self.startups)),
        ]


def _floor(factory: str) -> Callable[[Path, int], Server]:
    def start(workdir: Path, run: int) -> Server:
        port = free_port()
        return Server(
            factory, uvicorn_factory(factory, port), env=child_env(), port=port, log=workdir / f"{port}.log"
        )

    return start


def _reap(env: dict[str, str], name: str) -> Callable[[Path, int], Server]:
    def start(workdir: Path, run: int) -> Server:
        port = free_port()
        command = python_module("bot.cli", "serve", "--port", str(port))
        return Server(
            f"reap serve ({name})", command, env=env, port=port, log=workdir / f"reap-{name}-{run}.log"
        )

    return start


def _reap_env(database_url: str, slack_url: str, name: str) -> dict[str, str]:
    env = child_env(
        DATABASE_URL=database_url,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_API_URL=slack_url,
        REAP_LOG_LEVEL="WARNING",
    )
    run_checked(python_module("bot.cli", "db", "upgrade"), env=env, part=f"{name}: reap db upgrade")
    return env


def _measure_run(subjects: list[Subject], workdir: Path, run: int, idle: float) -> None:
    """Start each subject in turn (timing its start-up), let all idle, then read their memory.

    Servers already started sit idle while the next one starts, which costs the newcomer
    nothing measurable and saves waiting out each idle period alone. The start order rotates
    from run to run.
    """
    order = subjects[run % len(subjects) :] + subjects[: run % len(subjects)]
    with contextlib.ExitStack() as stack:
        healthy_at: list[tuple[Subject, Server, float]] = []
        for subject in order:
            server = stack.enter_context(subject.start(workdir, run))
            subject.startups.append(server.wait_healthy())
            healthy_at.append((subject, server, time.perf_counter()))
        for subject, server, since in healthy_at:
            time.sleep(max(0.0, since + idle - time.perf_counter()))
            subject.rss.append(rss_bytes(server.pid))
            subject.peaks.append(rss_bytes(server.pid, "VmHWM"))


async def _run(command: str) -> int:
    runs = max(1, int(os.environ.get("BENCH_FOOTPRINT_RUNS", RUNS)))
    idle = float(os.environ.get("BENCH_IDLE_SECONDS", IDLE_SECONDS))
    pg = postgres_url()
    print_header(
        TITLE,
        command,
        {
            "runs": f"{runs} interleaved starts per server; RSS read after {idle:.0f} s idle",
            "servers": "uvicorn (h11, asyncio loop), log level warning; reap serve on a migrated, "
            "empty database",
            "PostgreSQL": f"{pg[0]}={hide_password(pg[1])}"
            if pg
            else "not measured (set BENCH_DATABASE_URL or TEST_DATABASE_URL)",
        },
    )
    with tempfile.TemporaryDirectory(prefix="reap-bench-") as tmp, localslack_process() as slack_url:
        workdir = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            sqlite_env = _reap_env(f"sqlite+aiosqlite:///{workdir / 'reap.db'}", slack_url, "SQLite")
            subjects = [
                Subject("Starlette floor", "—", _floor("bench.latency:starlette_floor")),
                Subject("Bolt floor (default async)", "—", _floor("bench.latency:bolt_floor")),
                Subject("reap serve", "SQLite", _reap(sqlite_env, "SQLite")),
            ]
            if pg:
                try:
                    url = await stack.enter_async_context(postgres_schema(pg[1]))
                except Exception as exc:  # any driver or network error means "no PostgreSQL here"
                    print(f"  PostgreSQL unreachable ({type(exc).__name__}: {exc}); SQLite only", flush=True)
                else:
                    pg_env = _reap_env(url, slack_url, "PostgreSQL")
                    subjects.append(Subject("reap serve", "PostgreSQL", _reap(pg_env, "PostgreSQL")))
            for run in range(runs):
                await asyncio.to_thread(_measure_run, subjects, workdir, run, idle)
    print_table(
        [
            "server",
            "database",
            "start-up to healthy ms",
            "range ms",
            "idle RSS MiB",
            "peak RSS (VmHWM) MiB",
            "runs",
        ],
        [s.row() for s in subjects],
    )
    print(
        "Medians over the runs. Start-up is from spawning the process to the first 200 from /healthz\n"
        "(which for reap serve checks the database); the floors answer /healthz without any check.\n"
        "Each run starts the servers one after another (rotating the order) while those already up idle."
    )
    return 0


def main(command: str | None = None) -> int:
    """Run the benchmark and print its table."""
    return asyncio.run(_run(command or bench_command([NAME])))


if __name__ == "__main__":
    raise SystemExit(main())
