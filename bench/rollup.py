"""Item 4: the quarterly rollup of a 10,000-item plan across 40 departments.

The plan is seeded in bulk with what a rollup reads: measures with eight quarters of readings,
status and due-date changes inside the quarter, deactivated owners, and a check-in cycle with
answers. The measuring happens in a fresh child process so its peak resident memory (VmHWM)
belongs to the rollup alone (plus the interpreter and imports, reported separately):

* Slack rollup: `build_rollup` then `slack_messages` (what `/reap rollup` and the scheduled post do);
* HTML report: `build_rollup` then `render_html` (what `reap report --format html` does);
* reference: reading the same items' rows with one plain SELECT, the floor under any rollup.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

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
from bench.seed import SeedPlan, seed

ORDER = 4
NAME = "rollup"
TITLE = "4. Rollup of a 10,000-item plan across 40 departments"

ITEMS = 10_000
DEPARTMENTS = 40
RUNS = 5
QUARTER = "FY2027-Q2"
AS_OF = date(2026, 12, 15)
NOW = datetime(2026, 12, 15, 20, 0, tzinfo=UTC)
QUARTER_START = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)  # midnight in Philadelphia
READING_QUARTERS = tuple(
    f"FY{year}-Q{q}"
    for year, q in ((2025, 3), (2025, 4), (2026, 1), (2026, 2), (2026, 3), (2026, 4), (2027, 1), (2027, 2))
)
TIME_LIMIT = 1.0
MEMORY_LIMIT = 300 * 1000 * 1000  # "300 MB"


def rollup_plan(items: int = ITEMS, departments: int = DEPARTMENTS) -> SeedPlan:
    """The seeded plan: measures, in-quarter history, a check-in cycle with answers, a few leavers."""
    return SeedPlan(
        items=items,
        departments=departments,
        now=NOW,
        strategies_per_department=3,
        measures_per_strategy=2,
        reading_quarters=READING_QUARTERS,
        history_window=(QUARTER_START, NOW),
        history_share=0.3,
        checkin_quarter=QUARTER,
        checkin_share=0.6,
        inactive_share=0.02,
    )


# --- The child process ---------------------------------------------------------------------------


def _peak_rss() -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child's figure
    # would start at its parent's size (the latency benchmark's parent is far larger than us).
    return rss_bytes(os.getpid(), "VmHWM")


async def measure(database_url: str, runs: int, team_id: str) -> dict[str, Any]:
    """Time the rollup `runs` times after one warm-up, then once more under tracemalloc."""
    import sqlalchemy as sa
    from sqlmodel import col

    from domain.fiscal import FiscalQuarter
    from messages.rollup import slack_messages
    from reports.rollup import render_html, template_env
    from storage.engine import create_engine, session_factory
    from storage.models import ActionItem
    from storage.queries.rollup import build_rollup

    template_env().get_template("rollup.html.j2")
    quarter = FiscalQuarter.parse(QUARTER, today=AS_OF)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    baseline = _peak_rss()
    result: dict[str, Any] = {"build": [], "slack": [], "html": [], "read": []}

    async def once() -> tuple[float, float, float, Any, Any]:
        async with sessions() as session:
            started = time.perf_counter()
            rollup = await build_rollup(session, team_id=team_id, quarter=quarter, as_of=AS_OF)
            built = time.perf_counter()
            messages = slack_messages(rollup)
            sliced = time.perf_counter()
            html = render_html(rollup)
            rendered = time.perf_counter()
        return built - started, sliced - built, rendered - sliced, messages, html

    try:
        for run in range(runs + 1):
            build, slack, html_time, messages, html = await once()
            async with engine.connect() as conn:
                started = time.perf_counter()
                rows = (
                    await conn.execute(sa.select(ActionItem).where(col(ActionItem.team_id) == team_id))
                ).all()
                read = time.perf_counter() - started
            if run == 0:  # warm-up: connection, statement caches, template compilation
                continue
            result["build"].append(build)
            result["slack"].append(slack)
            result["html"].append(html_time)
            result["read"].append(read)
        summary, replies = messages
        result["items_read"] = len(rows)
        result["messages"] = 1 + len(replies)
        result["blocks"] = len(summary["blocks"]) + sum(len(r["blocks"]) for r in replies)
        result["html_bytes"] = len(html.encode())
        tracemalloc.start()
        await once()
        result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        await engine.dispose()
    result["peak_rss_baseline"] = baseline
    result["peak_rss"] = _peak_rss()
    return result


def _child(argv: Sequence[str]) -> int:
    url, runs, team = argv
    print(json.dumps(asyncio.run(measure(url, int(runs), team))))
    return 0


# --- The parent ----------------------------------------------------------------------------------


async def _prepare(database_url: str, name: str) -> dict[str, Any]:
    env = child_env(DATABASE_URL=database_url)
    run_checked(python_module("bot.cli", "db", "upgrade"), env=env, part=f"{name}: reap db upgrade")
    plan = rollup_plan()
    report = await seed(database_url, plan)
    print(
        f"  seeded {name}: {report.items:,} items in {plan.departments} departments, "
        f"{report.rows.get('measure_reading', 0):,} readings, {report.rows.get('audit_event', 0):,} audit "
        f"events, {report.rows.get('checkin_response', 0):,} check-in answers in {report.seconds:.1f} s",
        flush=True,
    )
    output = run_checked(
        python_module("bench.rollup", "child", database_url, str(RUNS), plan.team_id),
        env=env,
        part=f"{name}: rollup child",
    )
    try:
        measured: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BenchError(f"{name}: rollup child", f"printed no result ({exc}):\n{output[-2000:]}") from None
    if measured["items_read"] != ITEMS:
        raise BenchError(name, f"expected {ITEMS} items, the database holds {measured['items_read']}")
    return measured


def _row(name: str, m: dict[str, Any]) -> list[str]:
    build, slack, html, read = (median(m[k]) for k in ("build", "slack", "html", "read"))
    return [
        name,
        fmt_ms(read),
        fmt_ms(build),
        fmt_ms(build + slack),
        fmt_ms(build + html),
        f"{m['messages']} / {m['blocks']:,}",
        f"{m['html_bytes'] / 1024:,.0f}",
        f"{m['tracemalloc_peak'] / MIB:.0f}",
        f"{m['peak_rss_baseline'] / MIB:.0f}",
        f"{m['peak_rss'] / MIB:.0f}",
    ]


def _targets(name: str, m: dict[str, Any]) -> list[str]:
    build = median(m["build"])
    slack = build + median(m["slack"])
    html = build + median(m["html"])
    return [
        name,
        verdict(slack < TIME_LIMIT, f"{fmt_ms(slack)} ms < {fmt_ms(TIME_LIMIT)} ms"),
        verdict(html < TIME_LIMIT, f"{fmt_ms(html)} ms < {fmt_ms(TIME_LIMIT)} ms"),
        verdict(m["peak_rss"] < MEMORY_LIMIT, f"{m['peak_rss'] / 1e6:.0f} MB < {MEMORY_LIMIT / 1e6:.0f} MB"),
    ]


async def _run(command: str) -> int:
    pg = postgres_url()
    print_header(
        TITLE,
        command,
        {
            "workload": f"{ITEMS:,} items, {DEPARTMENTS} departments x 3 strategies, 2 measures each with "
            f"{len(READING_QUARTERS)} quarterly readings; rollup {QUARTER} as of {AS_OF.isoformat()}",
            "runs": f"median of {RUNS} after one warm-up, in a fresh child process; tracemalloc from "
            "one more run",
            "PostgreSQL": f"{pg[0]}={hide_password(pg[1])}"
            if pg
            else "not measured (set BENCH_DATABASE_URL or TEST_DATABASE_URL)",
        },
    )
    results: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="reap-bench-") as tmp:
        results.append(("SQLite", await _prepare(f"sqlite+aiosqlite:///{Path(tmp) / 'rollup.db'}", "SQLite")))
    if pg:
        async with contextlib.AsyncExitStack() as stack:
            try:
                url = await stack.enter_async_context(postgres_schema(pg[1]))
            except Exception as exc:  # any driver or network error means "no PostgreSQL here"
                print(f"  PostgreSQL unreachable ({type(exc).__name__}: {exc}); SQLite only", flush=True)
            else:
                results.append(("PostgreSQL", await _prepare(url, "PostgreSQL")))
    print()
    print_table(
        [
            "database",
            "read items ms",
            "build ms",
            "Slack rollup ms",
            "HTML report ms",
            "messages / blocks",
            "HTML KiB",
            "tracemalloc MiB",
            "RSS at start MiB",
            "peak RSS MiB",
        ],
        [_row(name, m) for name, m in results],
    )
    print_table(
        ["database", "Slack rollup < 1 s", "HTML report < 1 s", "peak RSS < 300 MB"],
        [_targets(name, m) for name, m in results],
    )
    print(
        "'read items' is one plain SELECT of the same 10,000 rows (the reference); 'build' is\n"
        "build_rollup alone; 'Slack rollup' adds slack_messages and 'HTML report' adds render_html.\n"
        "tracemalloc is the peak of Python allocations during one build + Slack + HTML; peak RSS is\n"
        "the measuring process's VmHWM (interpreter and imports included: 'RSS at start' is VmHWM\n"
        "before the first rollup). The process is a fresh child, so nothing else is in it."
    )
    return 0


def main(command: str | None = None) -> int:
    """Run the benchmark and print its tables."""
    return asyncio.run(_run(command or bench_command([NAME])))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        raise SystemExit(_child(sys.argv[2:]))
    raise SystemExit(main())
