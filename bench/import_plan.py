"""Item 6: importing a 10,000-item plan file with `reap import`, fresh and again unchanged.

The plan file is generated (deterministically) the way a department's spreadsheet export would
look: 40 departments with a coordinator and five owners each, one plan per department with three
strategies, 250 items per department (a third with a note, a fifth with a description), two
measures per strategy with four quarterly readings, and four meeting dates. Each run is the real
command line in a fresh process, timed from spawn to exit, so start-up counts as a person waits
for it:

* fresh: `reap import big.yaml` into a database just migrated (`reap db upgrade`);
* unchanged: the same command again on that database (it must change nothing);
* edited: the same file with 1% of its items edited (status, due date or note), again.

The reference is `reap` starting, reading and validating the same file and exiting: what every
import pays before it touches the database. Where the time goes inside is measured by a child that
does what the command does (read and validate, `import_plan`, commit) on another fresh database,
timing each phase of the fresh and the unchanged import.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    MIB,
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
    rss_bytes,
    run_checked,
    verdict,
)

ORDER = 6
NAME = "import"
TITLE = "6. Importing a 10,000-item plan file"

ITEMS = 10_000
DEPARTMENTS = 40
OWNERS_PER_DEPARTMENT = 5
STRATEGIES = 3
MEASURES_PER_STRATEGY = 2
READING_QUARTERS = ("FY2026-Q3", "FY2026-Q4", "FY2027-Q1", "FY2027-Q2")
EDITED_SHARE = 0.01
RUNS = 3
FRESH_LIMIT = 3.0
UNCHANGED_LIMIT = 1.0
STATUSES = ("not_started", "on_track", "on_track", "on_track", "at_risk", "off_track", "blocked", "done")
TIMEOUT = 600


# --- The plan file ------------------------------------------------------------------------------


def department_key(index: int) -> str:
    """D01, D02, ... (uppercase, as the file format asks)."""
    return f"D{index + 1:02d}"


def generated_plan(items: int = ITEMS, departments: int = DEPARTMENTS, *, seed: int = 14) -> dict[str, Any]:
    """The plan document as a mapping (dump it with yaml.safe_dump)."""
    rng = random.Random(seed)
    people: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    per_department = [
        items // departments + (1 if d < items % departments else 0) for d in range(departments)
    ]
    for d in range(departments):
        key = department_key(d)
        people.append(
            {
                "user_id": f"U0C{d:04d}",
                "name": f"Coordinator {key}",
                "title": "Equity Coordinator",
                "tz": "America/New_York",
                "department": key,
                "role": "coordinator",
            }
        )
        owners = [f"U0O{d:03d}{o}" for o in range(OWNERS_PER_DEPARTMENT)]
        people.extend(
            {"user_id": owner, "name": f"Owner {owner[3:]}", "tz": "America/New_York", "department": key}
            for owner in owners
        )
        strategies: list[dict[str, Any]] = []
        for s in range(STRATEGIES):
            measures = [
                {
                    "key": f"{key.lower()}-s{s}-m{m}",
                    "name": f"Measure {m + 1} of strategy {s + 1} in {key}",
                    "unit": "people",
                    "baseline": rng.randint(0, 100),
                    "target": rng.randint(100, 500),
                    "target_date": "2027-06-30",
                    "direction": "increase",
                    "owner": owners[m % len(owners)],
                    "readings": {q: rng.randint(0, 300) for q in READING_QUARTERS},
                }
                for m in range(MEASURES_PER_STRATEGY)
            ]
            strategies.append(
                {
                    "key": f"s{s}",
                    "name": f"Strategy {s + 1}",
                    "description": "A priority strategy of the plan.",
                    "items": [],
                    "measures": measures,
                }
            )
        for n in range(per_department[d]):
            status = rng.choice(STATUSES)
            item: dict[str, Any] = {
                "key": f"item-{n}",
                "title": f"Action item {n} of {key}: review and publish the equity assessment",
                "owner": owners[n % len(owners)],
                "due": (date(2026, 9, 1) + timedelta(days=rng.randrange(365))).isoformat(),
                "status": status,
                "progress": 100 if status == "done" else rng.randrange(0, 100, 5),
            }
            if rng.random() < 1 / 3:
                item["note"] = f"Update {n}: met with the working group; next step agreed."
            if rng.random() < 1 / 5:
                item["description"] = "Why this matters, who it serves and how we will know it worked."
            strategies[n % STRATEGIES]["items"].append(item)
        plans.append(
            {
                "key": f"{key}-REAP",
                "department": key,
                "title": f"Racial Equity Action Plan of {key}",
                "start": "2026-07-01",
                "end": "2027-06-30",
                "strategies": strategies,
            }
        )
    return {
        "version": 1,
        "workspace": "T0BENCHIMPORT",
        "people": people,
        "departments": [
            {"key": department_key(d), "name": f"Department {d + 1}", "report_channel": f"C0D{d:04d}"}
            for d in range(departments)
        ],
        "plans": plans,
        "meetings": {
            "FY2027-Q1": "2026-10-15",
            "FY2027-Q2": "2027-01-21",
            "FY2027-Q3": "2027-04-15",
            "FY2027-Q4": "2027-07-15",
        },
    }


def edited(
    document: dict[str, Any], share: float = EDITED_SHARE, *, seed: int = 15
) -> tuple[dict[str, Any], int]:
    """A copy with `share` of the items edited (one field each): the copy and how many were edited."""
    rng = random.Random(seed)
    copy = json.loads(json.dumps(document))
    items = [i for p in copy["plans"] for s in p["strategies"] for i in s["items"]]
    chosen = rng.sample(items, round(len(items) * share))
    for n, item in enumerate(chosen):
        if n % 3 == 0:
            item["status"] = "at_risk" if item["status"] != "at_risk" else "on_track"
            if item["status"] != "done":
                item["progress"] = min(item["progress"], 95)
        elif n % 3 == 1:
            item["due"] = (date.fromisoformat(item["due"]) + timedelta(days=14)).isoformat()
        else:
            item["note"] = f"Edited note {n}: the vendor confirmed the new date."
    return copy, len(chosen)


def write_yaml(document: dict[str, Any], path: Path) -> int:
    """Write the document as YAML; its size in bytes."""
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


# --- Runs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One `reap` process: wall seconds from spawn to exit, CPU seconds, peak RSS, what it printed."""

    seconds: float
    cpu: float
    peak_rss: int
    stdout: str


def timed(argv: Sequence[str], *, env: dict[str, str], part: str) -> Run:
    """Run to completion with wait4, for the process's own CPU time and peak RSS.

    Linux carries ru_maxrss over fork and exec, so the peak is at least this process's own: the
    plan files are generated in a child so that floor stays low (the header prints it).
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(list(argv), env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise BenchError(part, f"exited with {process.returncode}:\n{stdout[-1000:]}{stderr[-2000:]}")
    return Run(
        seconds=seconds, cpu=usage.ru_utime + usage.ru_stime, peak_rss=usage.ru_maxrss * 1024, stdout=stdout
    )


def _check(run: Run, *, expect: str, part: str) -> None:
    lines = run.stdout.strip().splitlines()
    last = lines[-1] if lines else ""
    if expect not in last:
        raise BenchError(part, f"expected {expect!r} in its last line, got {last!r}")


@contextlib.asynccontextmanager
async def fresh_database(name: str, pg: str | None) -> AsyncIterator[str]:
    """A new, migrated database: a SQLite file in a temporary directory, or a PostgreSQL schema."""
    async with contextlib.AsyncExitStack() as stack:
        if pg is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="reap-bench-"))
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'import.db'}"
        else:
            url = await stack.enter_async_context(postgres_schema(pg))
        run_checked(
            python_module("bot.cli", "db", "upgrade"),
            env=child_env(DATABASE_URL=url),
            part=f"{name}: db upgrade",
        )
        yield url


Measured = dict[str, list[Any]]


async def _database(name: str, pg: str | None, files: dict[str, Path], edits: int) -> Measured:
    """RUNS rounds, each on fresh databases: the reference, the three imports, and the phases child."""
    runs: Measured = {"reference": [], "fresh": [], "unchanged": [], "edited": [], "phases": []}
    part = f"{name}: reap import"
    plan, changed = str(files["plan"]), str(files["edited"])
    for round_ in range(RUNS):
        async with fresh_database(name, pg) as url:
            env = child_env(DATABASE_URL=url)
            runs["reference"].append(
                timed(python_module("bench.import_plan", "parse", plan), env=env, part=part)
            )
            fresh = timed(python_module("bot.cli", "import", plan), env=env, part=part)
            _check(fresh, expect="things in workspace", part=part)
            unchanged = timed(python_module("bot.cli", "import", plan), env=env, part=part)
            _check(unchanged, expect="nothing to change", part=part)
            again = timed(python_module("bot.cli", "import", changed), env=env, part=part)
            _check(again, expect=f"changed {edits} things", part=part)
        async with fresh_database(name, pg) as url:
            output = run_checked(
                python_module("bench.import_plan", "phases", url, plan),
                env=child_env(),
                part=f"{name}: phases",
            )
            runs["phases"].append(json.loads(output.strip().splitlines()[-1]))
        runs["fresh"].append(fresh)
        runs["unchanged"].append(unchanged)
        runs["edited"].append(again)
        print(
            f"  {name} round {round_ + 1}: fresh {fresh.seconds:.2f} s, unchanged {unchanged.seconds:.2f} s, "
            f"edited {again.seconds:.2f} s",
            flush=True,
        )
    return runs


def _phase(runs: Measured, kind: str, phase: str) -> str:
    if kind == "reference":
        values = [json.loads(r.stdout)[phase] for r in runs["reference"] if phase == "parse"]
    else:
        values = [p[kind][phase] for p in runs["phases"] if kind in p]
    return f"{median(values):.2f}" if values else "—"


def _rows(name: str, runs: Measured) -> list[list[str]]:
    rows = []
    for kind in ("reference", "fresh", "unchanged", "edited"):
        measured: list[Run] = runs[kind]
        rows.append(
            [
                name,
                "start, read and validate only" if kind == "reference" else kind,
                f"{median([r.seconds for r in measured]):.2f}",
                f"{median([r.cpu for r in measured]):.2f}",
                _phase(runs, kind, "parse"),
                _phase(runs, kind, "import"),
                _phase(runs, kind, "commit"),
                f"{max(r.peak_rss for r in measured) / MIB:.0f}",
            ]
        )
    return rows


def _targets(name: str, runs: Measured) -> list[str]:
    fresh = median([r.seconds for r in runs["fresh"]])
    unchanged = median([r.seconds for r in runs["unchanged"]])
    return [
        name,
        verdict(fresh < FRESH_LIMIT, f"{fresh:.2f} s < {FRESH_LIMIT:.0f} s"),
        verdict(unchanged < UNCHANGED_LIMIT, f"{unchanged:.2f} s < {UNCHANGED_LIMIT:.0f} s"),
    ]


async def _run(command: str) -> int:
    pg = postgres_url()
    measures = DEPARTMENTS * STRATEGIES * MEASURES_PER_STRATEGY
    with tempfile.TemporaryDirectory(prefix="reap-bench-") as tmp:
        files = {"plan": Path(tmp) / "big.yaml", "edited": Path(tmp) / "big-edited.yaml"}
        written = run_checked(
            python_module("bench.import_plan", "write", str(files["plan"]), str(files["edited"])),
            env=child_env(),
            part="writing the plan files",
        )
        size, edits = json.loads(written.strip().splitlines()[-1])
        print_header(
            TITLE,
            command,
            {
                "workload": f"{ITEMS:,} items in {DEPARTMENTS} departments x {STRATEGIES} strategies, "
                f"{DEPARTMENTS * (OWNERS_PER_DEPARTMENT + 1)} people, {measures} measures with "
                f"{len(READING_QUARTERS)} readings each; {size / MIB:.1f} MiB of YAML",
                "edited": f"{edits} items ({EDITED_SHARE:.0%}) with one field changed",
                "runs": f"median of {RUNS}, each on a freshly migrated database; wall time from spawn to "
                "exit of `python -m bot.cli import FILE`, and its CPU time (user + system)",
                "peak RSS floor": f"{rss_bytes(os.getpid(), 'VmHWM') / MIB:.0f} MiB (this process's, "
                "which Linux carries into its children's figure)",
                "PostgreSQL": f"{pg[0]}={hide_password(pg[1])}"
                if pg
                else "not measured (set BENCH_DATABASE_URL or TEST_DATABASE_URL)",
            },
        )
        results = [("SQLite", await _database("SQLite", None, files, edits))]
        if pg:
            try:
                results.append(("PostgreSQL", await _database("PostgreSQL", pg[1], files, edits)))
            except OSError as exc:  # the driver's connection errors are OSErrors
                print(f"  PostgreSQL unreachable ({type(exc).__name__}: {exc}); SQLite only", flush=True)
    print()
    print_table(
        ["database", "import", "wall s", "CPU s", "parse s", "import s", "commit s", "peak RSS MiB"],
        [row for name, runs in results for row in _rows(name, runs)],
    )
    print_table(
        ["database", "fresh import < 3 s", "unchanged re-import < 1 s"],
        [_targets(name, runs) for name, runs in results],
    )
    print(
        "'wall' is what a person waits for: interpreter start, imports, reading and validating the\n"
        "file, the import and the commit. 'parse', 'import' and 'commit' are the phases inside, from\n"
        "a child doing the same on another fresh database (for the reference: the parse alone). The\n"
        "reference row is start, read and validation with no database: the floor under any import."
    )
    return 0


def _write(plan: str, changed: str) -> int:
    """Write the plan file and its edited copy; print [bytes of the plan, items edited]."""
    document = generated_plan()
    edited_copy, edits = edited(document)
    size = write_yaml(document, Path(plan))
    write_yaml(edited_copy, Path(changed))
    print(json.dumps([size, edits]))
    return 0


def _parse_only(path: str) -> int:
    """The reference: what `reap import` does before it opens the database."""
    import bot.cli  # noqa: F401  (the same imports the command pays for)
    from plans.planfile import parse_plan_file

    started = time.perf_counter()
    parse_plan_file(Path(path).read_text(encoding="utf-8"), filename=path)
    print(json.dumps({"parse": time.perf_counter() - started}))
    return 0


async def _phases(url: str, path: str) -> dict[str, dict[str, float]]:
    """Each phase of a fresh and then an unchanged import, as `reap import` runs them."""
    from plans.planfile import import_plan, parse_plan_file
    from storage.engine import create_engine, session_factory

    engine = create_engine(url)
    sessions = session_factory(engine)
    result: dict[str, dict[str, float]] = {}
    try:
        for kind in ("fresh", "unchanged"):
            started = time.perf_counter()
            text = Path(path).read_text(encoding="utf-8")  # noqa: ASYNC240 (timed as the command's read)
            document = parse_plan_file(text, filename=path)
            parsed = time.perf_counter()
            async with sessions() as session, session.begin():
                await import_plan(
                    session, document=document, team_id=document.workspace or "T0", now=datetime.now(UTC)
                )
                imported = time.perf_counter()
            committed = time.perf_counter()
            result[kind] = {
                "parse": parsed - started,
                "import": imported - parsed,
                "commit": committed - imported,
            }
    finally:
        await engine.dispose()
    return result


def main(command: str | None = None) -> int:
    """Run the benchmark and print its tables."""
    return asyncio.run(_run(command or bench_command([NAME])))


if __name__ == "__main__":
    if sys.argv[1:2] == ["write"]:
        raise SystemExit(_write(sys.argv[2], sys.argv[3]))
    if sys.argv[1:2] == ["parse"]:
        raise SystemExit(_parse_only(sys.argv[2]))
    if sys.argv[1:2] == ["phases"]:
        print(json.dumps(asyncio.run(_phases(sys.argv[2], sys.argv[3]))))
        raise SystemExit(0)
    raise SystemExit(main())
