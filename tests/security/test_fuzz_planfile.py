"""Plan files of every shape, well made and spoiled: imported whole or refused in one line naming where.

Hypothesis writes plan documents (departments, people, plans, strategies, items, measures,
readings, meetings) with good values, then spoils some of them: text with control characters,
NUL, lone surrogates or past its limit, non-finite and 5,000-digit numbers, values of the wrong
type, unknown fields, strategies, owners and settings, duplicate keys, YAML tags and aliases, and
cut-off files. Each is written as YAML or as JSON (import reads both; CSV is export-only) and
imported with the real functions into a workspace that already holds a plan (so an import both
creates and updates). Either it imports, and then exporting and importing again gives back what
the file said and changes nothing; or it is refused with one PlanFileError whose single line names
the file and where in it, and not one row changed.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import SQLModel, select

from domain.cadence import CADENCE_KEYS
from domain.status import ItemStatus
from plans.planfile import PlanDocument, PlanFileError, export_plan, import_plan, parse_plan_file
from storage.engine import Sessions, transaction

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FILENAME = "plans/oit-reap.yaml"
NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
_workspaces = itertools.count(1)

# --- good values ---------------------------------------------------------------------------------

SAFE = st.characters(exclude_categories=("Cs", "Cc"))
FRIENDLY = [
    "Publish the language access plan",
    "مرحبا بالعالم",
    "\u202eevil\u202c",
    "👩🏽‍💻 data 🚀",
    "<!channel> <script>alert(1)</script>",
    '=HYPERLINK("http://x")',
    "+1 -1 @sum",
    "{{ 7*7 }} %s",
    "'; DROP TABLE plan; --",
    "yes",
    "null",
    "2027-01-15",
    "1e309",
    ".nan",
    "# not a comment",
    "key: value",
]
texts = st.one_of(
    st.text(SAFE, min_size=1, max_size=30).filter(lambda s: s.strip() != ""), st.sampled_from(FRIENDLY)
)
notes = texts | st.sampled_from(["line one\nline two", "a\tb"])
numbers = st.one_of(
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 10**23, 1e308, 5e-324]),
)
dates = st.dates(date(2020, 1, 1), date(2035, 12, 31))
QUARTERS = [f"FY{year}-Q{q}" for year in (2026, 2027, 2028) for q in (1, 2, 3, 4)]
ITEM_KEYS = ["scoring-matrix", "hire-analyst", "language-access", "wifi-map", "pay-equity", "a.b_c-1"]
STATUSES = [s.value for s in ItemStatus] + ["on-track", "At Risk", None]
PEOPLE = ["U0COORD", "U0OWNER", "U0ANALYST", "W0GUEST"]


def iso(day: date) -> str:
    """A date as the file writes it."""
    return day.isoformat()


@st.composite
def items(draw: st.DrawFn, owners: list[str], strategy: str | None = None) -> dict[str, Any]:
    """An action item; done ones are 100% or leave progress out."""
    status = draw(st.sampled_from(STATUSES))
    item: dict[str, Any] = {
        "key": draw(st.sampled_from(ITEM_KEYS) | st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True))
    }
    item["title"] = draw(texts)
    if strategy is not None:
        item["strategy"] = strategy
    for name, value in (
        ("owner", st.sampled_from(owners)),
        ("due", dates.map(iso)),
        ("status", st.just(status)),
        ("progress", st.just(100) if status == "done" else st.integers(0, 100)),
        ("note", notes),
        ("description", notes),
        ("ref", st.just("OIT-77")),
    ):
        if draw(st.booleans()):
            item[name] = draw(value)
    return item


@st.composite
def measures(draw: st.DrawFn, key: str, owners: list[str]) -> dict[str, Any]:
    """A measure with a few readings, some in the short `quarter: value` form."""
    readings = draw(
        st.dictionaries(
            st.sampled_from(QUARTERS),
            numbers | st.fixed_dictionaries({"value": numbers}, optional={"note": notes}),
            max_size=3,
        )
    )
    measure = {
        "key": key,
        "name": draw(texts),
        "baseline": draw(numbers),
        "target": draw(numbers),
        "direction": draw(st.sampled_from(["increase", "decrease", "Increase"])),
        "readings": readings,
    }
    # The target's date, or its quarter (which means the quarter's last day).
    if draw(st.booleans()):
        measure["target_date"] = iso(draw(dates))
    else:
        measure["target_quarter"] = draw(st.sampled_from(QUARTERS))
    if draw(st.booleans()):
        measure["unit"] = draw(st.sampled_from(["people", "%", "", "dollars (USD)"]))
    if draw(st.booleans()):
        measure["owner"] = draw(st.sampled_from(owners))
    return measure


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A plan file that should import: every reference declared, every value in range."""
    people_ids = draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=4, unique=True))
    people = []
    for user_id in people_ids:
        person: dict[str, Any] = {"user_id": user_id}
        if draw(st.booleans()):
            person["name"] = draw(texts)
        if draw(st.booleans()):
            person["tz"] = draw(st.sampled_from(["America/New_York", "UTC", "Asia/Kolkata"]))
        if draw(st.booleans()):
            person["department"] = "OIT"
            person["role"] = draw(st.sampled_from(["member", "coordinator", "Coordinator"]))
        people.append(person)
    start = draw(dates)
    strategy_keys = draw(
        st.lists(
            st.sampled_from(["equity", "workplace", "digital", "s.1"]), min_size=1, max_size=3, unique=True
        )
    )
    measure_keys = iter(["hires", "devices", "pay-gap", "m.1"])
    taken: set[str] = set()  # item keys are unique in a department

    def fresh(drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [i for i in drawn if i["key"] not in taken]
        taken.update(i["key"] for i in kept)
        return kept

    strategies = []
    for key in strategy_keys:
        strategy: dict[str, Any] = {"key": key, "name": draw(texts)}
        if draw(st.booleans()):
            strategy["description"] = draw(notes)
        strategy["items"] = fresh(draw(st.lists(items(people_ids), max_size=3, unique_by=lambda i: i["key"])))
        strategy["measures"] = [
            draw(measures(next(measure_keys), people_ids)) for _ in range(draw(st.integers(0, 1)))
        ]
        strategies.append(strategy)
    flat = draw(
        st.lists(
            items(people_ids, draw(st.sampled_from(strategy_keys))), max_size=2, unique_by=lambda i: i["key"]
        )
    )
    plan: dict[str, Any] = {
        "key": "OIT-REAP",
        "department": "OIT",
        "title": draw(texts),
        "start": iso(start),
        "end": iso(start + timedelta(days=draw(st.integers(0, 2000)))),
        "strategies": strategies,
        "items": fresh(flat),
    }
    if draw(st.booleans()):
        plan["cadence"] = draw(
            st.dictionaries(st.sampled_from(CADENCE_KEYS), st.integers(0, 365), max_size=3)
        )
    document: dict[str, Any] = {
        "version": 1,
        "people": people,
        "departments": [{"key": "OIT", "name": draw(texts), "report_channel": "C0OIT"}],
        "plans": [plan],
    }
    if draw(st.booleans()):
        document["meetings"] = draw(st.dictionaries(st.sampled_from(QUARTERS), dates.map(iso), max_size=2))
    return document


# --- spoiling them ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """Text written into the file as it is, where a value goes (YAML syntax, or a number Python
    would not print)."""

    text: str


CONTROLS = [
    "\x00",
    "\x01",
    "\x07",
    "\x1b[2J\x1b[31m",
    "\x0b",
    "\r",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9b",
    "\ud800",
    "\udfff",
]
HOSTILE: list[Any] = [
    float("inf"),
    float("-inf"),
    float("nan"),
    10**23,
    -0.0,
    True,
    None,
    "",
    "   ",
    [],
    {},
    [1, 2],
    {"value": 1},
    3.5,
    -1,
    101,
    "x" * 5_000,
    "🚀" * 2_001,
    "unknown",
    "U0NOBODY",
    "2027-02-30",
    "2027-1-1",
    "FY2027-Q5",
    "OIT\x00",
    Raw("1" * 5_000),
    Raw("-" + "9" * 4_400),
    Raw("1.0e+309"),
    Raw("-.inf"),
    Raw(".NaN"),
    Raw("0x1F"),
    Raw("1_000"),
    Raw("2027-01-15 10:00:00"),
    Raw("!!python/object/apply:os.system ['true']"),
    Raw("!!binary aGVsbG8="),
    Raw("*nowhere"),
    Raw("&loop [*loop]"),
    Raw("{a: 1, a: 2}"),
]


def spots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in the document."""
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += spots(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += spots(value, (*path, index))
    return found


def at(document: Any, path: tuple[Any, ...]) -> Any:
    """The value at `path`."""
    for part in path:
        document = document[part]
    return document


@st.composite
def spoiled(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A document with up to three values replaced, removed or added; and what was done."""
    document = draw(documents())
    done: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(spots(document)))
        parent, last = at(document, path[:-1]), path[-1]
        how = draw(st.sampled_from(["replace", "replace", "control", "remove", "unknown field", "repeat"]))
        if how == "control" and isinstance(parent[last], str):
            piece = draw(st.sampled_from(CONTROLS))
            where = draw(st.integers(0, len(parent[last])))
            parent[last] = parent[last][:where] + piece + parent[last][where:]
        elif how == "remove" and isinstance(parent, dict):
            del parent[last]
        elif how == "unknown field" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["owner_email", "Title", "strategy", "priority", "ref"]))] = draw(
                texts
            )
        elif how == "repeat" and isinstance(parent, list):
            parent.append(parent[last])
        else:
            parent[last] = draw(st.sampled_from(HOSTILE))
        done.append(f"{how} {'.'.join(map(str, path))}")
    return document, done


def written(document: dict[str, Any], fmt: str) -> str:
    """The document as YAML or JSON text, with Raw values put in verbatim."""
    raws: dict[str, str] = {}

    def swap(node: Any) -> Any:
        if isinstance(node, Raw):
            token = f"RAWTOKEN{len(raws)}X"
            raws[token] = node.text
            return token
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    plain = swap(document)
    if fmt == "json":
        text = json.dumps(plain, indent=1)
        for token, raw in raws.items():
            text = text.replace(f'"{token}"', raw)
    else:
        text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, width=100)
        for token, raw in raws.items():
            text = text.replace(token, raw)
    return text


@st.composite
def plan_files(draw: st.DrawFn) -> str:
    """A plan file's text: spoiled values, and sometimes a spoiled text (a repeated key, a BOM, a
    cut-off end, a NUL byte)."""
    document, _ = draw(spoiled())
    text = written(document, draw(st.sampled_from(["yaml", "json"])))
    damage = draw(st.sampled_from(["none"] * 6 + ["repeat version", "bom", "cut", "nul", "tab indent"]))
    if damage == "repeat version":
        text += "\nversion: 1\n" if not text.lstrip().startswith("{") else ""
    elif damage == "bom":
        text = "\ufeff" + text
    elif damage == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "nul":
        where = draw(st.integers(0, len(text)))
        text = text[:where] + "\x00" + text[where:]
    elif damage == "tab indent":
        text = text.replace("\n  ", "\n\t", 1)
    return text


# --- what an import must leave behind ----------------------------------------------------------------

BASE = {
    "version": 1,
    "people": [
        {"user_id": "U0COORD", "name": "Coordinator", "department": "OIT", "role": "coordinator"},
        {"user_id": "U0OWNER", "name": "Owner", "tz": "America/New_York"},
    ],
    "departments": [{"key": "OIT", "name": "Office of Innovation and Technology", "report_channel": "C0OIT"}],
    "plans": [
        {
            "key": "OIT-REAP",
            "department": "OIT",
            "title": "OIT Racial Equity Action Plan",
            "start": "2023-07-01",
            "end": "2027-06-30",
            "strategies": [
                {
                    "key": "equity",
                    "name": "Equity projects",
                    "items": [
                        {"key": "scoring-matrix", "title": "Develop a scoring matrix", "owner": "U0OWNER"},
                        {
                            "key": "wifi-map",
                            "title": "Map the Wi-Fi gaps",
                            "status": "on_track",
                            "progress": 40,
                        },
                    ],
                    "measures": [
                        {
                            "key": "hires",
                            "name": "Hires",
                            "baseline": 3,
                            "target": 12,
                            "target_date": "2027-06-30",
                            "direction": "increase",
                            "readings": {"FY2027-Q1": 5},
                        }
                    ],
                },
                {"key": "workplace", "name": "Workplace equity"},
            ],
        }
    ],
    "meetings": {"FY2027-Q2": "2027-01-21"},
}


MEASURE_PATH: tuple[Any, ...] = ("plans", 0, "strategies", 0, "measures", 0)


def replaced(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of `document` with the value at `path` replaced."""
    copy = deepcopy(document)
    at(copy, path[:-1])[path[-1]] = value
    return copy


async def counts(sessions: Sessions) -> dict[str, int]:
    """Rows per table, every workspace together."""
    async with sessions() as session:
        return {
            table.name: int((await session.exec(select(func.count()).select_from(table))).one())
            for table in SQLModel.metadata.sorted_tables
        }


async def run_import(sessions: Sessions, text: str, team: str, now: datetime = NOW) -> bool:
    """Parse and import `text` into `team` in one transaction; whether anything changed."""
    async with transaction(sessions) as session:
        document = parse_plan_file(text, filename=FILENAME)
        return (await import_plan(session, document=document, team_id=team, now=now)).changed


async def export(sessions: Sessions, team: str, fmt: Any) -> str:
    """The workspace's plan written out."""
    async with sessions() as session:
        return await export_plan(session, team_id=team, fmt=fmt)


def plain(text: str | None) -> str | None:
    """Empty text and none are the same to the database."""
    return text or None


def meaning(document: PlanDocument) -> dict[str, Any]:
    """What an import takes from a document, with the defaults it applies (item position, refs and
    nesting aside)."""
    out: dict[str, Any] = {
        "people": {
            p.user_id: (p.name or "", p.title, p.tz, p.department, p.role or "member")
            for p in document.people
        },
        "departments": {d.key: (d.name, d.report_channel) for d in document.departments},
        "meetings": dict(document.meetings),
        "plans": {},
        "strategies": {},
        "items": {},
        "measures": {},
    }
    for index, plan in enumerate(document.plans):
        cadence = {k: v for k, v in (plan.cadence or {}).items() if k in CADENCE_KEYS}
        out["plans"][plan.key] = (plan.department, plan.title, plan.start, plan.end, cadence or None)
        for strategy in plan.strategies:
            out["strategies"][(plan.key, strategy.key)] = (strategy.name, plain(strategy.description))
            for measure in strategy.measures:
                readings = {q: (r.value, r.note) for q, r in measure.readings.items()}
                out["measures"][measure.key] = (
                    strategy.key,
                    measure.name,
                    plain(measure.unit),
                    measure.baseline,
                    measure.target,
                    measure.due_date(document.start_month),
                    measure.direction,
                    measure.owner,
                    readings,
                )
        for _, strategy_key, item in document.plan_items(index):
            status = item.status or ItemStatus.NOT_STARTED.value
            out["items"][(plan.department, item.key)] = (
                strategy_key,
                item.title,
                item.owner,
                item.due,
                status,
                item.progress if item.progress is not None else 0,
                item.note,
                plain(item.description),
            )
    return out


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def no_constant(name: str) -> Any:
    """json.loads' hook for NaN and Infinity, which are not JSON."""
    raise AssertionError(f"the JSON export carries {name}")


async def check_refused(sessions: Sessions, text: str, team: str) -> PlanFileError | None:
    """Import `text` over the base plan: the PlanFileError if refused (having changed nothing)."""
    await run_import(sessions, written(BASE, "yaml"), team)
    before = await counts(sessions)
    try:
        await run_import(sessions, text, team, now=LATER)
    except PlanFileError as exc:
        message = str(exc)
        assert message.startswith(f"{FILENAME}: ") and exc.reason, message
        assert "\n" not in message and not CONTROL.search(message), f"not one clean line: {message!r}"
        assert await counts(sessions) == before, f"refused ({message}) yet rows changed"
        return exc
    assert not await run_import(sessions, text, team, now=LATER), "importing the same file twice changed rows"
    return None


async def check_round_trip(sessions: Sessions, text: str, team: str) -> None:
    """Import `text` into an empty workspace; its export says what the file said, and reimports
    as no change, in YAML and JSON; the CSV export carries no controls and no live formulas."""
    await run_import(sessions, text, team)
    wanted = meaning(parse_plan_file(text, filename=FILENAME))
    for fmt in ("yaml", "json"):
        out = await export(sessions, team, fmt)
        if fmt == "json":
            json.loads(out, parse_constant=no_constant)
        assert not CONTROL.search(out), f"the {fmt} export carries a control character"
        assert meaning(parse_plan_file(out, filename=f"export.{fmt}")) == wanted, fmt
        assert not await run_import(sessions, out, team, now=LATER), (
            f"re-importing the {fmt} export changed rows"
        )
    for row in csv.reader(io.StringIO(await export(sessions, team, "csv"))):
        assert not any(CONTROL.search(cell) for cell in row), row
        assert not any(cell[:1] in ("=", "+", "-", "@") for cell in row[2:6] + row[9:10]), row


@FUZZ
@given(text=plan_files())
@example(text=written(BASE, "yaml"))
@example(text=written(BASE, "json"))
@example(text="version: 1\nversion: 1\n")
@example(text="version: 1\npeople: &loop [*loop]\n")
# Found by this test: Python's 4,300-digit limit raised ValueError out of the YAML reader.
@example(text="version: 1\npeople:\n  - user_id: U0A\n    name: " + "1" * 5_000 + "\n")
@example(text="version: " + "9" * 4_301 + "\n")
# Found by this test: the refusal quoted ESC sequences and BEL raw, to be printed to a terminal.
@example(text='version: 1\npeople:\n  - user_id: U0A\n    tz: "\\e]0;owned\\a"\n')
@example(text='version: 1\ndepartments:\n  - key: "OIT\\e[2J"\n    name: x\n')
# Found by this test: a NUL byte gave PyYAML's two-line message without the line.
@example(text="version: 1\npeople: []\x00\n")
# Found by this test: the JSON export wrote 5e-324, which the YAML 1.1 reader took for text; and
# once it reads such numbers, text like 0E0 must be quoted in the YAML export.
@example(text=written(replaced(BASE, (*MEASURE_PATH, "target"), 5e-324), "yaml"))
@example(text=written(replaced(BASE, (*MEASURE_PATH, "name"), "0E0"), "json"))
async def test_a_plan_file_imports_whole_and_round_trips_or_is_refused_naming_where(
    sessions: Sessions, text: str
):
    workspace = next(_workspaces)
    refused = await check_refused(sessions, text, f"T0FUZZ{workspace}A")
    event("refused" if refused else "imported")
    if refused is None:
        await check_round_trip(sessions, text, f"T0FUZZ{workspace}B")
