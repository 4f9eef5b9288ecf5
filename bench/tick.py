"""Item 2: the cost of planning one reminder tick as the plan grows from 10,000 to 1,000,000 items.

Each size gets a fresh database seeded in bulk (`bench.seed`) *as of* 400 days after the tick, so
every seeded due date lies 100 to 800 days after the tick and nothing is owed by accident (the
spread of due dates, statuses and owners is the seeder's; only the instant moves). Then a
deterministic sample of open, owned items is re-dated to fall due on the tick's local day, which
makes exactly those items owed a "due today" nudge at 09:30 New York time on a Tuesday.

Two variants per size, measured on the same database:

* fixed 100 owed items at every size: the fair test of "cost grows with what is owed, not with
  the number of items" (the 1,000,000 / 10,000 ratio should stay near 1);
* 1% owed (100, 1,000, 10,000): the issue's wording; here the owed count itself grows 100x, so
  the ratio measures the per-owed-item cost as much as the index.

Only `plan_tick` is timed; the outbox is emptied between runs so every run does the same work.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bench.common import (
    BenchError,
    bench_command,
    fmt_ms,
    fmt_ratio,
    hide_password,
    median,
    postgres_schema,
    postgres_url,
    print_header,
    print_table,
    verdict,
)
from bench.seed import SeedPlan, seed
from domain.calendar import calendar_for_year
from reminders.planner import PlanConfig, PlanReport, plan_tick
from reminders.policy import OPEN_STATUSES
from storage.engine import create_engine, session_factory
from storage.migrate import upgrade_async
from storage.models import ActionItem, Notification

ORDER = 2
NAME = "tick"
TITLE = "2. Tick cost vs plan size"

ZONE = ZoneInfo("America/New_York")
# A Tuesday, not a holiday; 09:30 local is inside the sending window.
TICK = datetime(2026, 12, 1, 9, 30, tzinfo=ZONE)
# Seeding "as of" this instant puts every seeded due date 100-800 days after the tick.
SEED_AS_OF = TICK + timedelta(days=400)
SIZES = (10_000, 100_000, 1_000_000)
FIXED_OWED = 100
OWED_SHARE = 0.01
RUNS = 3
TIME_LIMIT = 1.0
RATIO_LIMIT = 2.0
SQLITE_SEED_LIMIT = 120.0  # seconds: the longest SQLite seeding of 1,000,000 items worth waiting for
SAMPLE_SEED = 20_261_201


def owed_sample(candidates: Sequence[int], count: int, *, seed: int = SAMPLE_SEED) -> list[int]:
    """`count` of the candidate item ids, chosen deterministically; the first k are also a sample."""
    if count > len(candidates):
        raise BenchError("owed sample", f"{count} owed items wanted, only {len(candidates)} candidates")
    chosen = random.Random(seed).sample(sorted(candidates), count)
    return chosen


def growth_ratio(small: float, large: float) -> float:
    """How many times longer the large plan took than the small one (NaN if the small one is 0)."""
    return large / small if small > 0 else float("nan")


def projected_seconds(measured_seconds: float, measured_items: int, items: int) -> float:
    """Seeding time for `items` extrapolated linearly from a measured seeding."""
    if measured_items <= 0:
        raise BenchError("projection", "needs a measured seeding of at least one item")
    return measured_seconds * items / measured_items


@dataclass
class SizeResult:
    """The medians of one plan size on one database, for both variants."""

    items: int
    seed_seconds: float
    owed: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _config() -> PlanConfig:
    return PlanConfig(zone=ZONE, calendar=calendar_for_year(("US-PA",), None, TICK.year))


async def _redate(engine: AsyncEngine, ids: Sequence[int]) -> None:
    if not ids:
        return
    table = ActionItem.__table__  # type: ignore[attr-defined]
    statement = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("item"))
        .values(due=TICK.date(), snoozed_until=None)
        .execution_options(synchronize_session=False)
    )
    async with engine.begin() as conn:
        await conn.execute(statement, [{"item": item} for item in ids])


async def _candidates(engine: AsyncEngine, team_id: str) -> list[int]:
    query = (
        sa.select(col(ActionItem.id))
        .where(col(ActionItem.team_id) == team_id)
        .where(col(ActionItem.status).in_(sorted(OPEN_STATUSES)))
        .where(col(ActionItem.owner_id).is_not(None))
    )
    async with engine.connect() as conn:
        return [int(row[0] or 0) for row in (await conn.execute(query)).all()]


async def _measure(engine: AsyncEngine, team_id: str, owed: int) -> tuple[float, PlanReport]:
    sessions = session_factory(engine)
    config = _config()
    times: list[float] = []
    report: PlanReport | None = None
    for run in range(RUNS + 1):
        async with engine.begin() as conn:
            await conn.execute(sa.delete(Notification.__table__))  # type: ignore[attr-defined]
        started = time.perf_counter()
        report = await plan_tick(sessions, team_id=team_id, now=TICK, config=config)
        elapsed = time.perf_counter() - started
        if report.candidates != owed or report.inserted != report.planned:
            raise BenchError(
                "tick",
                f"expected {owed} owed items all planned anew; got {report.summary()}",
            )
        if run:  # run 0 warms the connection pool and statement caches
            times.append(elapsed)
    assert report is not None
    return median(times), report


async def _size(url: str, items: int, name: str) -> SizeResult:
    await upgrade_async(url)
    plan = SeedPlan(items=items, now=SEED_AS_OF)
    engine = create_engine(url)
    try:
        seeded = await seed(engine, plan)
        result = SizeResult(items=items, seed_seconds=seeded.seconds)
        sample = owed_sample(
            await _candidates(engine, plan.team_id), max(FIXED_OWED, int(items * OWED_SHARE))
        )
        done = 0
        for variant, owed in (("fixed", FIXED_OWED), ("share", int(items * OWED_SHARE))):
            await _redate(engine, sample[done:owed])
            done = max(done, owed)
            async with engine.connect() as conn:
                await conn.execute(sa.text("ANALYZE"))
                await conn.commit()
            seconds, report = await _measure(engine, plan.team_id, owed)
            result.owed[variant] = report.candidates
            result.planned[variant] = report.planned
            result.seconds[variant] = seconds
        print(
            f"  {name} {items:>9,} items: seeded in {seeded.seconds:.1f} s; plan_tick median"
            f" {fmt_ms(result.seconds['fixed'])} ms ({FIXED_OWED} owed),"
            f" {fmt_ms(result.seconds['share'])} ms (1% owed)",
            flush=True,
        )
        return result
    finally:
        await engine.dispose()


async def _sqlite(tmp: Path) -> tuple[list[SizeResult], str]:
    results: list[SizeResult] = []
    note = ""
    for items in SIZES:
        if results and items == SIZES[-1] and not os.environ.get("BENCH_TICK_FULL"):
            projected = projected_seconds(results[-1].seed_seconds, results[-1].items, items)
            if projected > SQLITE_SEED_LIMIT:
                note = (
                    f"SQLite stopped at {results[-1].items:,} items: seeding {items:,} would take about "
                    f"{projected:.0f} s (> {SQLITE_SEED_LIMIT:.0f} s); set BENCH_TICK_FULL=1 to run it"
                )
                break
        results.append(await _size(f"sqlite+aiosqlite:///{tmp / f'tick-{items}.db'}", items, "SQLite"))
    return results, note


async def _postgres(url: str) -> list[SizeResult]:
    results = []
    for items in SIZES:
        async with postgres_schema(url) as scoped:
            results.append(await _size(scoped, items, "PostgreSQL"))
    return results


def _rows(name: str, results: Sequence[SizeResult]) -> list[list[str]]:
    rows = []
    for r in results:
        for variant, label in (("fixed", "fixed 100"), ("share", "1%")):
            rows.append(
                [
                    name,
                    f"{r.items:,}",
                    label,
                    f"{r.owed[variant]:,}",
                    f"{r.planned[variant]:,}",
                    fmt_ms(r.seconds[variant]),
                    f"{r.seed_seconds:.1f}",
                ]
            )
    return rows


def _verdicts(name: str, results: Sequence[SizeResult], note: str) -> list[list[str]]:
    by_size = {r.items: r for r in results}
    small, large = by_size.get(SIZES[0]), by_size.get(SIZES[-1])
    rows = []
    for variant, label in (("fixed", "fixed 100 owed"), ("share", "1% owed")):
        if small is None or large is None:
            ratio_cell = f"not measured ({note or 'no 1,000,000-item run'})"
            time_cell = "not measured"
        else:
            ratio = growth_ratio(small.seconds[variant], large.seconds[variant])
            ratio_cell = verdict(ratio < RATIO_LIMIT, f"{fmt_ratio(ratio)} < {RATIO_LIMIT:g}×")
            seconds = large.seconds[variant]
            time_cell = verdict(seconds < TIME_LIMIT, f"{fmt_ms(seconds)} ms < {fmt_ms(TIME_LIMIT)} ms")
            if name != "PostgreSQL":
                time_cell += " (target is for PostgreSQL)"
        rows.append([name, label, time_cell, ratio_cell])
    return rows


async def _run(command: str) -> int:
    pg = postgres_url()
    print_header(
        TITLE,
        command,
        {
            "workload": f"plan_tick at {TICK.isoformat()} (09:30 New York, a Tuesday) over "
            f"{', '.join(f'{n:,}' for n in SIZES)} seeded items; owed = open, owned items due that day",
            "variants": f"a fixed {FIXED_OWED} owed items at every size, and {OWED_SHARE:.0%} of the items",
            "runs": f"median of {RUNS} after one warm-up; outbox emptied before each run",
            "PostgreSQL": f"{pg[0]}={hide_password(pg[1])}"
            if pg
            else "not measured (set BENCH_DATABASE_URL or TEST_DATABASE_URL)",
        },
    )
    measured: list[tuple[str, list[SizeResult], str]] = []
    with tempfile.TemporaryDirectory(prefix="reap-bench-") as tmp:
        sqlite, note = await _sqlite(Path(tmp))
        measured.append(("SQLite", sqlite, note))
    if pg:
        try:
            measured.append(("PostgreSQL", await _postgres(pg[1]), ""))
        except OSError as exc:
            print(f"  PostgreSQL unreachable ({type(exc).__name__}: {exc}); SQLite only", flush=True)
    print()
    print_table(
        ["database", "items", "owed", "owed items", "messages planned", "plan_tick ms", "seed s"],
        [row for name, results, _ in measured for row in _rows(name, results)],
    )
    print_table(
        ["database", "variant", "1,000,000 items < 1 s", "1,000,000 / 10,000 < 2×"],
        [row for name, results, note in measured for row in _verdicts(name, results, note)],
    )
    for _, _, note in measured:
        if note:
            print(note)
    print(
        "'owed items' is what the planner's query fetched (checked equal to the items re-dated);\n"
        "'messages planned' is one digest per owner, so it is below the owed items when an owner\n"
        "owes several. In the 1% variant the owed count grows 100x with the plan, so its ratio\n"
        "includes the cost of planning 100x more messages; the fixed-100 ratio isolates plan size."
    )
    return 0


def main(command: str | None = None) -> int:
    """Run the benchmark and print its tables."""
    return asyncio.run(_run(command or bench_command([NAME])))


if __name__ == "__main__":
    raise SystemExit(main())
