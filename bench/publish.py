"""Item 8: publishing the public dashboard of a 10,000-item plan across 40 departments.

The rollup benchmark's plan, seeded with breakdowns as well (a race dimension per plan, group
values on every one of the eight quarters' readings), its quarter frozen as closing the check-in
does. The measuring happens in fresh child processes, one per workload, so each peak resident
memory (VmHWM) belongs to that workload alone (plus the interpreter and imports):

* publish: `publishing.site.publish` into a new folder, exactly what `reap publish --out DIR`
  does once it has the workspace (every page in English and Spanish, the open data, the swap);
* HTML report: the same closed quarter as `reap report --format html` renders it (the frozen
  rollup, then `render_html`), and `build_rollup` + `render_html` (the rollup benchmark's path).

Wall and CPU time are both reported: the machine may be shared, and CPU time is what the work
itself costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import (
    MIB,
    BenchError,
    bench_command,
    child_env,
    fmt_ms,
    hide_password,
    median,
    postgres_schema,
    postgres_url,
    print_header,
    print_table,
    python_module,
    rss_bytes,
    run_checked,
    verdict,
)
from bench.rollup import AS_OF, DEPARTMENTS, ITEMS, NOW, QUARTER, READING_QUARTERS, rollup_plan
from bench.seed import SeedPlan, seed

ORDER = 8
NAME = "publish"
TITLE = "8. Publishing the public dashboard of a 10,000-item plan across 40 departments"

RUNS = 3
ZONE = ZoneInfo("America/New_York")
START_MONTH = 7
TIME_LIMIT = 5.0
MEMORY_LIMIT = 300 * 1000 * 1000  # "300 MB"
PAGE_LIMIT = 200 * 1000  # "200 KB"


def publish_plan(items: int = ITEMS, departments: int = DEPARTMENTS) -> SeedPlan:
    """The rollup benchmark's plan with every measure broken down by group."""
    return dataclasses.replace(rollup_plan(items, departments), breakdowns=True)


async def freeze(database_url: str, team_id: str) -> float:
    """Close the quarter as the check-in's close does (at the seed's instant); returns the seconds."""
    from domain.fiscal import FiscalQuarter
    from storage.engine import create_engine, session_factory, transaction
    from storage.permissions import Actor
    from storage.snapshots import freeze_quarter

    engine = create_engine(database_url)
    try:
        started = time.perf_counter()
        async with transaction(session_factory(engine)) as session:
            await freeze_quarter(
                session,
                actor=Actor.system(team_id),
                quarter=FiscalQuarter.parse(QUARTER, today=AS_OF),
                now=NOW,
                zone=ZONE,
            )
        return time.perf_counter() - started
    finally:
        await engine.dispose()


# --- The child processes -------------------------------------------------------------------------


def _peak_rss() -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec (see bench.rollup).
    return rss_bytes(os.getpid(), "VmHWM")


class _Clock:
    """Wall and CPU seconds (every thread of this process: rendering runs in a worker thread)."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def lap(self) -> tuple[float, float]:
        """(wall, cpu) since the last lap, and start the next."""
        wall, cpu = time.perf_counter(), time.process_time()
        spent = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return spent


def site_pages(folder: Path) -> dict[str, int]:
    """The size of every page (.html) of a written site, by its path from the site root."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*.html") if p.is_file()}


async def measure_publish(database_url: str, runs: int, team_id: str, workdir: Path) -> dict[str, Any]:
    """Publish `runs` + 1 times, each into a new folder; the first run is the cold one."""
    clock = _Clock()
    from publishing.site import load_editions, publish, write_site
    from reports.site import render_site
    from storage.engine import create_engine, session_factory

    imports = clock.lap()
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    result: dict[str, Any] = {"imports": imports, "runs": [], "peak_rss_baseline": _peak_rss()}
    folder = workdir
    try:
        for run in range(runs + 1):
            folder = workdir / f"site-{run}"
            clock = _Clock()
            async with sessions() as session:
                published = await publish(
                    session, team_id=team_id, folder=folder, today=AS_OF, zone=ZONE, start_month=START_MONTH
                )
            result["runs"].append(clock.lap())
            if run < runs:
                shutil.rmtree(folder)
        pages = site_pages(folder)
        largest = max(pages, key=lambda p: pages[p])
        result |= {
            "quarter": published.quarter,
            "files": published.files,
            "size": published.size,
            "pages": len(pages),
            "largest_page": published.largest_page,
            "largest_path": largest,
            "pages_over": sum(size >= PAGE_LIMIT for size in pages.values()),
        }
        # Where the time goes, from one more run of the publisher's own three steps.
        clock = _Clock()
        async with sessions() as session:
            editions = await load_editions(
                session, team_id=team_id, today=AS_OF, zone=ZONE, start_month=START_MONTH
            )
        read = clock.lap()
        files = render_site(editions)
        render = clock.lap()
        write_site(files, workdir / "site-steps", marker={}, force=False)
        result["steps"] = {"read": read, "render": render, "write": clock.lap()}
    finally:
        await engine.dispose()
    result["peak_rss"] = _peak_rss()
    return result


async def measure_report(database_url: str, runs: int, team_id: str) -> dict[str, Any]:
    """Render the same closed quarter as the HTML report `runs` times after one warm-up: from the
    frozen record (what `reap report` does), and rebuilt with build_rollup."""
    clock = _Clock()
    from domain.fiscal import FiscalQuarter
    from reports.rollup import render_html
    from storage.engine import create_engine, session_factory
    from storage.queries.rollup import build_rollup
    from storage.snapshots import quarter_rollup

    imports = clock.lap()
    quarter = FiscalQuarter.parse(QUARTER, today=AS_OF)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    result: dict[str, Any] = {"imports": imports, "frozen": [], "built": [], "peak_rss_baseline": _peak_rss()}
    try:
        for run in range(runs + 1):
            async with sessions() as session:
                clock = _Clock()
                frozen = render_html(
                    await quarter_rollup(session, team_id=team_id, quarter=quarter, as_of=AS_OF, zone=ZONE)
                )
                frozen_time = clock.lap()
                built = render_html(
                    await build_rollup(session, team_id=team_id, quarter=quarter, as_of=AS_OF, zone=ZONE)
                )
                built_time = clock.lap()
            if run == 0:  # warm-up: connection, statement caches, template compilation
                continue
            result["frozen"].append(frozen_time)
            result["built"].append(built_time)
        result["html_bytes"] = len(frozen.encode())
        result["built_bytes"] = len(built.encode())
    finally:
        await engine.dispose()
    result["peak_rss"] = _peak_rss()
    return result


def _child(argv: Sequence[str]) -> int:
    kind, url, runs, team, *rest = argv
    if kind == "publish":
        with tempfile.TemporaryDirectory(prefix="reap-bench-site-") as tmp:
            measured = asyncio.run(measure_publish(url, int(runs), team, Path(rest[0] if rest else tmp)))
    else:
        measured = asyncio.run(measure_report(url, int(runs), team))
    print(json.dumps(measured))
    return 0


# --- The parent ----------------------------------------------------------------------------------


def _run_child(kind: str, database_url: str, team_id: str, name: str) -> dict[str, Any]:
    env = child_env(DATABASE_URL=database_url)
    output = run_checked(
        python_module("bench.publish", "child", kind, database_url, str(RUNS), team_id),
        env=env,
        part=f"{name}: {kind} child",
    )
    try:
        measured: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BenchError(f"{name}: {kind} child", f"printed no result ({exc}):\n{output[-2000:]}") from None
    return measured


async def _prepare(database_url: str, name: str) -> dict[str, Any]:
    env = child_env(DATABASE_URL=database_url)
    run_checked(python_module("bot.cli", "db", "upgrade"), env=env, part=f"{name}: reap db upgrade")
    plan = publish_plan()
    report = await seed(database_url, plan)
    froze = await freeze(database_url, plan.team_id)
    print(
        f"  seeded {name}: {report.items:,} items in {plan.departments} departments, "
        f"{report.rows.get('measure', 0):,} measures with {report.rows.get('measure_reading', 0):,} readings "
        f"by group in {report.seconds:.1f} s; froze {QUARTER} in {froze:.1f} s",
        flush=True,
    )
    return {
        "publish": _run_child("publish", database_url, plan.team_id, name),
        "report": _run_child("report", database_url, plan.team_id, name),
    }


def _cold(m: dict[str, Any]) -> tuple[float, float]:
    """Imports plus the first publish: what a one-shot `reap publish` spends past the interpreter."""
    (iw, ic), (fw, fc) = m["imports"], m["runs"][0]
    return iw + fw, ic + fc


def _pair(wall: float, cpu: float) -> str:
    return f"{fmt_ms(wall)} / {fmt_ms(cpu)}"


def _medians(laps: Sequence[Sequence[float]]) -> tuple[float, float]:
    return median([lap[0] for lap in laps]), median([lap[1] for lap in laps])


def _time_row(name: str, m: dict[str, Any]) -> list[str]:
    p, r = m["publish"], m["report"]
    steps = p["steps"]
    return [
        name,
        _pair(*p["imports"]),
        _pair(*p["runs"][0]),
        _pair(*_medians(p["runs"][1:])),
        _pair(*steps["read"]),
        _pair(*steps["render"]),
        _pair(*steps["write"]),
        _pair(*_medians(r["frozen"])),
        _pair(*_medians(r["built"])),
    ]


def _size_row(name: str, m: dict[str, Any]) -> list[str]:
    p, r = m["publish"], m["report"]
    return [
        name,
        f"{p['files']:,}",
        f"{p['pages']:,}",
        f"{p['size'] / MIB:.1f}",
        f"{p['largest_page'] / 1024:,.0f}",
        p["largest_path"],
        f"{r['html_bytes'] / 1024:,.0f}",
        f"{p['peak_rss_baseline'] / MIB:.0f}",
        f"{p['peak_rss'] / MIB:.0f}",
        f"{r['peak_rss'] / MIB:.0f}",
    ]


def _targets(name: str, m: dict[str, Any]) -> list[str]:
    p = m["publish"]
    wall, cpu = _cold(p)
    return [
        name,
        verdict(wall < TIME_LIMIT, f"{wall:.2f} s (CPU {cpu:.2f} s) < {TIME_LIMIT:.0f} s"),
        verdict(p["peak_rss"] < MEMORY_LIMIT, f"{p['peak_rss'] / 1e6:.0f} MB < {MEMORY_LIMIT / 1e6:.0f} MB"),
        verdict(
            p["pages_over"] == 0,
            f"{p['largest_page'] / 1000:.0f} KB < {PAGE_LIMIT / 1000:.0f} KB; {p['pages_over']} over",
        ),
    ]


async def _run(command: str) -> int:
    pg = postgres_url()
    print_header(
        TITLE,
        command,
        {
            "workload": f"{ITEMS:,} items, {DEPARTMENTS} departments x 3 strategies, 2 measures each with "
            f"{len(READING_QUARTERS)} quarterly readings by 5 groups (rate and representation); "
            f"{QUARTER} frozen as of {AS_OF.isoformat()}",
            "runs": f"a cold first publish then the median of {RUNS}, each into a new folder, in a fresh "
            f"child process; the HTML report the median of {RUNS} after one warm-up, in another",
            "PostgreSQL": f"{pg[0]}={hide_password(pg[1])}"
            if pg
            else "not measured (set BENCH_DATABASE_URL or TEST_DATABASE_URL)",
        },
    )
    results: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="reap-bench-") as tmp:
        results.append(
            ("SQLite", await _prepare(f"sqlite+aiosqlite:///{Path(tmp) / 'publish.db'}", "SQLite"))
        )
    if pg:
        async with contextlib.AsyncExitStack() as stack:
            try:
                url = await stack.enter_async_context(postgres_schema(pg[1]))
            except Exception as exc:  # any driver or network error means "no PostgreSQL here"
                print(f"  PostgreSQL unreachable ({type(exc).__name__}: {exc}); SQLite only", flush=True)
            else:
                results.append(("PostgreSQL", await _prepare(url, "PostgreSQL")))
    print()
    print("Time, wall / CPU ms:")
    print_table(
        [
            "database",
            "imports",
            "publish, cold",
            f"publish, median of {RUNS}",
            "  read record",
            "  render",
            "  write",
            "HTML report (frozen)",
            "build_rollup + HTML",
        ],
        [_time_row(name, m) for name, m in results],
    )
    print_table(
        [
            "database",
            "files",
            "pages",
            "site MiB",
            "largest page KiB",
            "largest page",
            "HTML report KiB",
            "publish RSS at start MiB",
            "publish peak RSS MiB",
            "report peak RSS MiB",
        ],
        [_size_row(name, m) for name, m in results],
    )
    print_table(
        ["database", "publish < 5 s (imports + cold run)", "peak RSS < 300 MB", "every page < 200 KB"],
        [_targets(name, m) for name, m in results],
    )
    print(
        "'publish' is publishing.site.publish into a new folder (every page in English and Spanish,\n"
        "the open data as CSV and JSON with its Data Package, the swap); 'cold' is the first one in a\n"
        "fresh process (templates compiled, catalogs loaded), judged with the imports before it, as a\n"
        "one-shot `reap publish` spends them. 'read record', 'render' and 'write' split one more run\n"
        "into the publisher's steps (load_editions, render_site, write_site). 'HTML report (frozen)'\n"
        "is the same closed quarter as `reap report --format html` renders it (quarter_rollup then\n"
        "render_html); 'build_rollup + HTML' rebuilds it from the live tables instead. CPU time counts\n"
        "every thread of the measuring process. Peak RSS is each child's VmHWM (interpreter and\n"
        "imports included: 'RSS at start' is VmHWM before the first publish). KB = 1,000 bytes."
    )
    return 0


def main(command: str | None = None) -> int:
    """Run the benchmark and print its tables."""
    return asyncio.run(_run(command or bench_command([NAME])))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        raise SystemExit(_child(sys.argv[2:]))
    raise SystemExit(main())
