"""Fast bulk seeding of a realistic plan: thousands to millions of items in seconds.

Creating items one by one through `storage.items.create_item` costs about 4 ms each (a ref
counter update, a flush and an audit row per item), which would make a 1,000,000-item plan take
over an hour. Here the rows are generated up front by pure functions and written in bulk: COPY on
PostgreSQL, executemany on SQLite. The result satisfies every constraint the storage functions
rely on (unique refs, per-department numbers with `next_number` past the last one, a `create`
AuditEvent per item), so the real app can work on it afterwards.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from domain.status import ItemStatus, Role
from storage.engine import create_engine
from storage.models import (
    ActionItem,
    AuditEvent,
    CheckInCycle,
    CheckInResponse,
    Department,
    Dimension,
    Measure,
    MeasureReading,
    Person,
    Plan,
    Strategy,
)

TEAM = "T0BENCH"
SYSTEM_ACTOR = "system"
CHUNK_ROWS = 5_000
SQLITE_CACHE_KIB = 256 * 1024

# A plausible spread of statuses in a plan that has been running for a while.
STATUS_WEIGHTS: dict[str, int] = {
    ItemStatus.NOT_STARTED.value: 15,
    ItemStatus.ON_TRACK.value: 35,
    ItemStatus.AT_RISK.value: 12,
    ItemStatus.OFF_TRACK.value: 6,
    ItemStatus.BLOCKED.value: 4,
    ItemStatus.DONE.value: 25,
    ItemStatus.DROPPED.value: 3,
}
STRATEGY_NAMES = (
    ("equity-projects", "Equity projects"),
    ("workplace-equity", "Workplace equity"),
    ("digital-equity", "Digital equity"),
    ("community-engagement", "Community engagement"),
)
TITLE_VERBS = ("Develop", "Publish", "Review", "Train staff on", "Audit", "Pilot", "Fund", "Translate")
TITLE_OBJECTS = (
    "an equity scoring matrix with DEI",
    "language access for the permit portal",
    "hiring panels for bias",
    "the digital literacy programme",
    "contracting goals for minority-owned firms",
    "public Wi-Fi coverage in under-served blocks",
    "the budget equity tool",
    "accessible versions of every public form",
)
# The breakdown dimension every plan declares when a seed asks for breakdowns; "other" has no
# population share, as a plan file may leave it out.
DIMENSION_KEY = "race"
RACE_GROUPS: tuple[dict[str, Any], ...] = (
    {"key": "black", "name": "Black", "population_share": 0.40},
    {"key": "white", "name": "White", "population_share": 0.35},
    {"key": "hispanic", "name": "Hispanic or Latino", "population_share": 0.15},
    {"key": "asian", "name": "Asian", "population_share": 0.07},
    {"key": "other", "name": "Another race", "population_share": None},
)
NOTES = (
    "Waiting on procurement.",
    "Vendor delay; new date agreed with the deputy.",
    "Draft shared with the DEI office for comment.",
    "Two of three sessions held.",
    "Blocked on the data-sharing agreement.",
)


class SeedError(Exception):
    """A seeding request that cannot produce a consistent plan."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"seed: {problem}")


@dataclass(frozen=True)
class SeedPlan:
    """What to seed: sizes, the instant the data is 'as of', and the optional history around it."""

    items: int
    now: datetime
    departments: int = 10
    strategies_per_department: int = 3
    owners: int | None = None  # default: one owner for every 25 items
    team_id: str = TEAM
    measures_per_strategy: int = 0
    reading_quarters: tuple[str, ...] = ()
    # Status and due-date changes recorded inside this window, for this share of the items.
    history_window: tuple[datetime, datetime] | None = None
    history_share: float = 0.0
    checkin_quarter: str | None = None
    checkin_share: float = 0.0
    inactive_share: float = 0.0
    # A race Dimension per plan, and every measure broken down by it with group values on each
    # reading (off by default, so the benchmarks seeded without it measure what they always did).
    breakdowns: bool = False
    seed: int = 20_261_130

    def __post_init__(self) -> None:
        if self.items < 0:
            raise SeedError("the number of items cannot be negative")
        if not 1 <= self.departments <= 999:
            raise SeedError("departments must be between 1 and 999")
        if not 1 <= self.strategies_per_department <= len(STRATEGY_NAMES):
            raise SeedError(f"strategies per department must be between 1 and {len(STRATEGY_NAMES)}")
        if self.now.tzinfo is None:
            raise SeedError("`now` must be time-zone aware")
        if self.history_share and self.history_window is None:
            raise SeedError("a history share needs a history window")
        for share in (self.history_share, self.checkin_share, self.inactive_share):
            if not 0.0 <= share <= 1.0:
                raise SeedError("shares must be between 0 and 1")

    @property
    def owner_count(self) -> int:
        """How many item owners (besides one coordinator per department) the plan has."""
        wanted = self.owners if self.owners is not None else self.items // 25
        return max(self.departments, wanted)


@dataclass
class SeedReport:
    """What was written, how long it took, and handles a benchmark needs to drive the app."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    owners: list[str] = field(default_factory=list)
    # (ref, owner) of on-track items, in a shuffled order: each can take one status change.
    on_track: list[tuple[str, str]] = field(default_factory=list)
    department_keys: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        """How many action items were written."""
        return self.rows.get("action_item", 0)


# --- Pure row generators ---------------------------------------------------------------------------


def department_key(index: int) -> str:
    """The key of the index-th department: D01, D02, ... (refs read D07-123)."""
    return f"D{index + 1:02d}"


def owner_id(index: int) -> str:
    """The Slack user id of the index-th owner."""
    return f"U0B{index:06d}"


def coordinator_id(index: int) -> str:
    """The Slack user id of the coordinator of the index-th department."""
    return f"U0C{index:06d}"


def department_rows(plan: SeedPlan) -> list[dict[str, Any]]:
    """One row per department, `next_number` past the items it will get."""
    per_department = [plan.items // plan.departments] * plan.departments
    for index in range(plan.items % plan.departments):
        per_department[index] += 1
    return [
        {
            "team_id": plan.team_id,
            "key": department_key(i),
            "name": f"Department {i + 1:02d}",
            "report_channel": f"C0D{i + 1:06d}",
            "next_number": per_department[i],
            "created_at": plan.now - timedelta(days=800),
        }
        for i in range(plan.departments)
    ]


def plan_rows(plan: SeedPlan, department_ids: Sequence[int]) -> list[dict[str, Any]]:
    """One FY2024-FY2027 plan per department."""
    return [
        {
            "team_id": plan.team_id,
            "department_id": dept_id,
            "key": f"{department_key(i)}-REAP",
            "title": f"{department_key(i)} Racial Equity Action Plan",
            "start_date": date(2023, 7, 1),
            "end_date": date(2027, 6, 30),
            "cadence": None,
            "created_at": plan.now - timedelta(days=800),
        }
        for i, dept_id in enumerate(department_ids)
    ]


def strategy_rows(plan: SeedPlan, plan_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The strategies of every plan, in position order."""
    return [
        {
            "team_id": plan.team_id,
            "plan_id": plan_id,
            "key": key,
            "name": name,
            "description": "",
            "position": position,
        }
        for plan_id in plan_ids
        for position, (key, name) in enumerate(STRATEGY_NAMES[: plan.strategies_per_department])
    ]


def owners_of_department(plan: SeedPlan, index: int) -> list[str]:
    """The owners who belong to the index-th department (owners are dealt out round-robin)."""
    return [owner_id(n) for n in range(index, plan.owner_count, plan.departments)]


def person_rows(plan: SeedPlan, department_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every owner plus one coordinator per department; a share of owners is deactivated."""
    rng = random.Random(plan.seed + 1)
    rows = []
    for n in range(plan.owner_count):
        rows.append(
            _person(plan, owner_id(n), department_ids[n % plan.departments], Role.MEMBER)
            | {"active": rng.random() >= plan.inactive_share}
        )
    for i, dept_id in enumerate(department_ids):
        rows.append(_person(plan, coordinator_id(i), dept_id, Role.COORDINATOR))
    return rows


def _person(plan: SeedPlan, user_id: str, department_id: int, role: Role) -> dict[str, Any]:
    return {
        "team_id": plan.team_id,
        "user_id": user_id,
        "name": f"Person {user_id[3:]}",
        "title": None,
        "tz": "America/New_York",
        "role": role.value,
        "department_id": department_id,
        "active": True,
        "paused_until": None,
        # Fresh profiles, so the app does not ask users.info about everyone it hears from.
        "refreshed_at": plan.now,
        "created_at": plan.now - timedelta(days=700),
    }


def _progress(status: str, draw: float) -> int:
    if status == ItemStatus.DONE:
        return 100
    if status == ItemStatus.NOT_STARTED:
        return 0
    return 5 + 5 * int(draw * 19)


def item_rows(
    plan: SeedPlan, department_ids: Sequence[int], strategy_ids: dict[int, list[int]]
) -> Iterator[dict[str, Any]]:
    """Every action item, dealt round-robin over departments and numbered from 1 in each."""
    # Draws are plain rng.random() calls indexing precomputed tables: a million items must take
    # seconds, and randint/timedelta per field would triple that.
    draw = random.Random(plan.seed).random
    statuses = list(STATUS_WEIGHTS)
    cumulative = list(itertools.accumulate(STATUS_WEIGHTS.values()))
    total_weight = cumulative[-1]
    owners = [owners_of_department(plan, i) for i in range(plan.departments)]
    keys = [department_key(i) for i in range(plan.departments)]
    titles = [f"{verb} {what}" for verb in TITLE_VERBS for what in TITLE_OBJECTS]
    today = plan.now.date()
    due_days = [today + timedelta(days=d) for d in range(-300, 401)]
    created_days = [plan.now - timedelta(days=d) for d in range(200, 701)]
    updated_span = 180 * 86_400
    numbers = [0] * plan.departments
    for n in range(plan.items):
        index = n % plan.departments
        numbers[index] += 1
        number = numbers[index]
        dept_id = department_ids[index]
        status = statuses[bisect.bisect_right(cumulative, draw() * total_weight)]
        due = None if draw() < 0.05 else due_days[int(draw() * len(due_days))]
        updated = plan.now - timedelta(seconds=int(draw() * updated_span))
        completed = None
        if status == ItemStatus.DONE:
            # Mostly on time: finished up to 60 days before or 20 days after the due date.
            finished = (due or today) + timedelta(days=int(draw() * 81) - 60)
            completed = datetime.combine(min(finished, today), datetime.min.time(), tzinfo=UTC)
            updated = max(updated, completed)
        strategies = strategy_ids[dept_id]
        department_owners = owners[index]
        key = keys[index]
        yield {
            "team_id": plan.team_id,
            "department_id": dept_id,
            "strategy_id": strategies[int(draw() * len(strategies))],
            "number": number,
            "ref": f"{key}-{number}",
            "import_key": None,
            "title": f"{titles[int(draw() * len(titles))]} ({key} #{number})",
            "description": "",
            "owner_id": None if draw() < 0.02 else department_owners[int(draw() * len(department_owners))],
            "due": due,
            "status": status,
            "progress": _progress(status, draw()),
            "last_note": NOTES[int(draw() * len(NOTES))] if draw() < 0.3 else None,
            "snoozed_until": None,
            "completed_at": completed,
            # Seeded as if imported from the plan file, whose done items count as verified; else
            # every coordinator would owe a verification digest and the tick bench would measure that.
            "verified_at": completed,
            "verified_by": SYSTEM_ACTOR if completed is not None else None,
            "created_by": SYSTEM_ACTOR,
            "created_at": created_days[int(draw() * len(created_days))],
            "updated_at": updated,
        }


def audit_rows(plan: SeedPlan, items: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """A `create` event per item, and status/due changes inside the history window for a share."""
    rng = random.Random(plan.seed + 2)
    statuses = list(STATUS_WEIGHTS)
    for item_id, item in items:
        yield _event(plan, item_id, item["created_at"], "create", None, None, item["title"])
        if plan.history_window is None or rng.random() >= plan.history_share:
            continue
        start, end = plan.history_window
        span = max(1, int((end - start).total_seconds()))
        at = start + timedelta(seconds=rng.randrange(span))
        old = rng.choice([s for s in statuses if s != item["status"]])
        yield _event(plan, item_id, at, "status", "status", old, item["status"])
        if item["due"] is not None and rng.random() < 0.25:
            earlier = item["due"] - timedelta(days=rng.randint(7, 60))
            redate_at = min(end - timedelta(seconds=1), at + timedelta(hours=1))
            yield _event(
                plan, item_id, redate_at, "redate", "due", earlier.isoformat(), item["due"].isoformat()
            )


def _event(
    plan: SeedPlan,
    item_id: int,
    at: datetime,
    action: str,
    field_name: str | None,
    old: str | None,
    new: str | None,
) -> dict[str, Any]:
    return {
        "team_id": plan.team_id,
        "entity": "item",
        "entity_id": item_id,
        "item_id": item_id,
        "actor": SYSTEM_ACTOR,
        "at": at,
        "action": action,
        "field": field_name,
        "old": old,
        "new": new,
        "note": None,
    }


def dimension_rows(plan: SeedPlan, plan_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The race dimension of every plan (only when the seed asks for breakdowns)."""
    if not plan.breakdowns:
        return []
    return [
        {
            "team_id": plan.team_id,
            "plan_id": plan_id,
            "key": DIMENSION_KEY,
            "name": "Race and ethnicity",
            "source": "American Community Survey 5-year estimates",
            "groups": [dict(g) for g in RACE_GROUPS],
        }
        for plan_id in plan_ids
    ]


def _breakdown_fields(plan: SeedPlan, position: int) -> dict[str, Any]:
    # Alternate the two kinds, so both the rate and the representation paths are exercised.
    if not plan.breakdowns:
        return {}
    rate = position % 2 == 0
    return {
        "breakdown_dimension": DIMENSION_KEY,
        "breakdown_kind": "rate" if rate else "representation",
        "reference_group": "white" if rate else None,
    }


def measure_rows(plan: SeedPlan, strategies: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """`measures_per_strategy` measures for each (strategy id, department key)."""
    rng = random.Random(plan.seed + 3)
    rows = []
    for strategy_id, key in strategies:
        for m in range(plan.measures_per_strategy):
            increase = rng.random() < 0.7
            baseline = float(rng.randint(10, 60))
            rows.append(
                {
                    "team_id": plan.team_id,
                    "strategy_id": strategy_id,
                    "key": f"{key.lower()}-{strategy_id}-{m + 1}",
                    "name": f"Share of residents served ({key} measure {m + 1})",
                    "unit": "%",
                    "baseline": baseline,
                    "target": baseline + 20 if increase else baseline - 8,
                    "target_date": date(2027, 6, 30),
                    "direction": "increase" if increase else "decrease",
                    "owner_id": None,
                }
                | _breakdown_fields(plan, m)
            )
    return rows


def reading_rows(plan: SeedPlan, measures: Sequence[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One reading per measure per quarter in `reading_quarters`, drifting toward the target."""
    rng = random.Random(plan.seed + 4)
    # Groups draw from their own generator, so the overall values are the same with or without them.
    group_rng = random.Random(plan.seed + 7)
    rows = []
    count = max(1, len(plan.reading_quarters))
    for measure_id, measure in measures:
        for step, quarter in enumerate(plan.reading_quarters, start=1):
            share = step / count * rng.uniform(0.4, 1.1)
            value = measure["baseline"] + (measure["target"] - measure["baseline"]) * share
            row = {
                "team_id": plan.team_id,
                "measure_id": measure_id,
                "quarter": quarter,
                "value": round(value, 1),
                "note": None,
                "recorded_by": SYSTEM_ACTOR,
                "recorded_at": plan.now - timedelta(days=(count - step) * 91),
            }
            if measure.get("breakdown_dimension"):
                row["groups"] = group_values(group_rng, measure["breakdown_kind"], round(value, 1))
            rows.append(row)
    return rows


def group_values(rng: random.Random, kind: str, overall: float) -> dict[str, dict[str, float | None]]:
    """One reading's values by group: rates around the overall (with how many each counts), or
    counts per group for a representation measure; the smallest group is now and then under the
    suppression threshold, as real small groups are."""
    small = rng.random() < 0.25
    if kind == "representation":
        total = rng.randint(150, 900)
        out: dict[str, dict[str, float | None]] = {}
        for group in RACE_GROUPS:
            weight = group["population_share"] or 0.03
            count = round(total * weight * rng.uniform(0.6, 1.4))
            out[group["key"]] = {
                "value": float(rng.randint(2, 9) if small and group["key"] == "other" else count)
            }
        return out
    rates: dict[str, dict[str, float | None]] = {}
    for group in RACE_GROUPS:
        n = rng.randint(2, 9) if small and group["key"] == "other" else rng.randint(40, 1_200)
        rate = min(100.0, max(0.0, overall + rng.uniform(-15.0, 10.0)))
        rates[group["key"]] = {"value": round(rate, 1), "n": float(n)}
    return rates


def response_rows(
    plan: SeedPlan, cycle_id: int, items: Iterable[tuple[int, dict[str, Any]]]
) -> Iterator[dict[str, Any]]:
    """Check-in answers from the owners of a share of the open, owned items."""
    rng = random.Random(plan.seed + 5)
    start = plan.history_window[0] if plan.history_window else plan.now - timedelta(days=30)
    span = max(1, int((plan.now - start).total_seconds()))
    for item_id, item in items:
        owner = item["owner_id"]
        if owner is None or not ItemStatus(item["status"]).is_open or rng.random() >= plan.checkin_share:
            continue
        yield {
            "team_id": plan.team_id,
            "cycle_id": cycle_id,
            "item_id": item_id,
            "responder": owner,
            "status": item["status"],
            "progress": item["progress"],
            "note": rng.choice(NOTES) if rng.random() < 0.5 else None,
            "responded_at": start + timedelta(seconds=rng.randrange(span)),
        }


# --- Writing ------------------------------------------------------------------------------------------


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def bulk_insert(
    conn: AsyncConnection, table: Table, rows: Iterable[dict[str, Any]], *, defer_indexes: bool = False
) -> int:
    """Insert `rows` in chunks: COPY on PostgreSQL (asyncpg), executemany elsewhere; returns the count.

    With `defer_indexes` on SQLite, the table's secondary indexes are dropped for the load and
    rebuilt after it in the same transaction: one sort per index instead of a b-tree insert per
    row and index, about a third faster for a large table.
    """
    postgres = conn.dialect.name == "postgresql"
    deferred: list[tuple[str, str]] = []
    if defer_indexes and conn.dialect.name == "sqlite":
        found = await conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL"
            ),
            {"table": table.name},
        )
        deferred = [(str(name), str(sql)) for name, sql in found.all()]
        for name, _ in deferred:
            await conn.exec_driver_sql(f'DROP INDEX "{name}"')
    count = 0
    columns = [c.name for c in table.columns if c.name != "id"]
    # COPY hands asyncpg the values as they are, and asyncpg takes a JSON column's value as text.
    as_json = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
    defaults = _DEFAULTS.get(table.name, {})
    rows = [{**defaults, **row} for row in rows]
    for chunk in _chunks(rows, CHUNK_ROWS):
        if postgres:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            records = [
                tuple(json.dumps(row[c]) if c in as_json and row[c] is not None else row[c] for c in columns)
                for row in chunk
            ]
            await driver.copy_records_to_table(table.name, records=records, columns=columns)
        else:
            await conn.execute(insert(table), chunk)
        count += len(chunk)
    for _, sql in deferred:
        await conn.exec_driver_sql(sql)
    return count


_DEFAULTS: dict[str, dict[str, Any]] = {}


def _table(model: Any) -> Table:
    table: Table = model.__table__
    # The model's own defaults for columns a row builder leaves out (the COPY path needs them all),
    # so a column added to a model never breaks the seeder.
    defaults: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            defaults[name] = info.default_factory()
        elif not info.is_required():
            defaults[name] = info.default.value if hasattr(info.default, "value") else info.default
    _DEFAULTS[table.name] = defaults
    return table


async def _pairs(conn: AsyncConnection, query: Any) -> list[tuple[Any, Any]]:
    return [(row[0], row[1]) for row in (await conn.execute(query)).all()]


async def seed(target: str | AsyncEngine, plan: SeedPlan, *, analyze: bool = True) -> SeedReport:
    """Write `plan` into a migrated, empty database (a URL or an engine) and report what went in."""
    engine = create_engine(target) if isinstance(target, str) else target
    started = time.perf_counter()
    report = SeedReport(department_keys=[department_key(i) for i in range(plan.departments)])
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # Index pages of a large table stay in memory instead of being re-read per row.
                await conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            await _write(conn, plan, report)
            await conn.commit()
            if analyze:
                # Fresh bulk data has no planner statistics yet; a database in use would have them.
                await conn.execute(text("ANALYZE"))
                await conn.commit()
    finally:
        if isinstance(target, str):
            await engine.dispose()
    report.seconds = time.perf_counter() - started
    return report


async def _write(conn: AsyncConnection, plan: SeedPlan, report: SeedReport) -> None:
    team = plan.team_id
    taken = await conn.execute(sa.select(col(Department.id)).where(col(Department.team_id) == team).limit(1))
    if taken.first() is not None:
        raise SeedError(f"workspace {team} already has departments; seed an empty database")
    rows = report.rows
    rows["department"] = await bulk_insert(conn, _table(Department), department_rows(plan))
    by_key = dict(
        await _pairs(
            conn, sa.select(col(Department.key), col(Department.id)).where(col(Department.team_id) == team)
        )
    )
    department_ids = [by_key[department_key(i)] for i in range(plan.departments)]
    rows["plan"] = await bulk_insert(conn, _table(Plan), plan_rows(plan, department_ids))
    department_of_plan = dict(
        await _pairs(conn, sa.select(col(Plan.id), col(Plan.department_id)).where(col(Plan.team_id) == team))
    )
    rows["strategy"] = await bulk_insert(
        conn, _table(Strategy), strategy_rows(plan, list(department_of_plan))
    )
    if plan.breakdowns:
        rows["dimension"] = await bulk_insert(
            conn, _table(Dimension), dimension_rows(plan, list(department_of_plan))
        )
    strategy_ids: dict[int, list[int]] = defaultdict(list)
    key_of_department = {v: k for k, v in by_key.items()}
    strategy_keys: list[tuple[int, str]] = []
    query = sa.select(col(Strategy.id), col(Strategy.plan_id)).where(col(Strategy.team_id) == team)
    for strategy_id, plan_id in await _pairs(conn, query.order_by(col(Strategy.id))):
        department_id = department_of_plan[plan_id]
        strategy_ids[department_id].append(strategy_id)
        strategy_keys.append((strategy_id, key_of_department[department_id]))
    people = person_rows(plan, department_ids)
    rows["person"] = await bulk_insert(conn, _table(Person), people)
    report.owners = [p["user_id"] for p in people if p["role"] == Role.MEMBER.value and p["active"]]

    rows["action_item"] = await bulk_insert(
        conn, _table(ActionItem), item_rows(plan, department_ids, strategy_ids), defer_indexes=True
    )
    ids = dict(
        await _pairs(
            conn, sa.select(col(ActionItem.ref), col(ActionItem.id)).where(col(ActionItem.team_id) == team)
        )
    )
    active = set(report.owners)
    kept: list[tuple[int, dict[str, Any]]] = []

    def with_ids() -> Iterator[tuple[int, dict[str, Any]]]:
        # A second, identical pass over the generator instead of holding every row in memory.
        for item in item_rows(plan, department_ids, strategy_ids):
            pair = (ids[item["ref"]], item)
            if item["status"] == ItemStatus.ON_TRACK and item["owner_id"] in active:
                report.on_track.append((item["ref"], item["owner_id"]))
            if plan.checkin_quarter:
                kept.append(pair)
            yield pair

    rows["audit_event"] = await bulk_insert(
        conn, _table(AuditEvent), audit_rows(plan, with_ids()), defer_indexes=True
    )
    random.Random(plan.seed + 6).shuffle(report.on_track)
    if plan.measures_per_strategy:
        measures = measure_rows(plan, strategy_keys)
        rows["measure"] = await bulk_insert(conn, _table(Measure), measures)
        measure_ids = dict(
            await _pairs(
                conn, sa.select(col(Measure.key), col(Measure.id)).where(col(Measure.team_id) == team)
            )
        )
        rows["measure_reading"] = await bulk_insert(
            conn, _table(MeasureReading), reading_rows(plan, [(measure_ids[m["key"]], m) for m in measures])
        )
    if plan.checkin_quarter:
        await _checkin(conn, plan, kept, rows)


async def _checkin(
    conn: AsyncConnection, plan: SeedPlan, items: Sequence[tuple[int, dict[str, Any]]], rows: dict[str, int]
) -> None:
    opened = plan.history_window[0] if plan.history_window else plan.now - timedelta(days=30)
    cycle = {
        "team_id": plan.team_id,
        "quarter": plan.checkin_quarter,
        "meeting_date": plan.now.date() + timedelta(days=14),
        "opens_on": opened.date(),
        "due_on": plan.now.date() + timedelta(days=7),
        "opened_at": opened,
        "closed_at": None,
        "opened_by": coordinator_id(0),
    }
    rows["checkin_cycle"] = await bulk_insert(conn, _table(CheckInCycle), [cycle])
    found = await conn.execute(
        sa.select(col(CheckInCycle.id))
        .where(col(CheckInCycle.team_id) == plan.team_id)
        .where(col(CheckInCycle.quarter) == plan.checkin_quarter)
    )
    cycle_id = found.scalar_one()
    if cycle_id is None:
        raise SeedError("the check-in cycle was not written")
    rows["checkin_response"] = await bulk_insert(
        conn, _table(CheckInResponse), response_rows(plan, cycle_id, items)
    )


async def table_counts(target: str | AsyncEngine, tables: Sequence[str]) -> dict[str, int]:
    """How many rows each named table holds (for checking a seed)."""
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.connect() as conn:
            return {
                name: int((await conn.execute(text(f'SELECT count(*) FROM "{name}"'))).scalar_one())
                for name in tables
            }
    finally:
        if isinstance(target, str):
            await engine.dispose()
