"""Plan files: parse and validate a REAP plan, import it idempotently, and export it back out.

The file format is documented at the top of examples/oit-reap.yaml. Parsing is pure and reports
the first problem with the file name and the path inside the file; importing writes every change
through the audited storage functions in the caller's transaction, so a dry run is an import
followed by a rollback.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from domain.cadence import CADENCE_KEYS, Cadence, CadenceError
from domain.commitments import ChangeKind, ChangePolicy, check_evidence
from domain.equity import DEFAULT_MIN_COUNT, BreakdownKind
from domain.errors import InvalidChange, NotFinite, ReapError, TextRefused
from domain.fiscal import FiscalQuarter
from domain.measures import (
    MeasureInvalid,
    MeasureKind,
    MeasureRule,
    ReadingRefused,
    check_measure,
    check_reading,
)
from domain.public import LICENCES, OPT_INS
from domain.scoring import Criterion, ScoreRefused
from domain.status import Direction, ItemStatus, Role
from domain.text import (
    DESCRIPTION_MAX,
    NAME_MAX,
    NOTE_MAX,
    TITLE_MAX,
    UNIT_MAX,
    check_finite,
    check_text,
    visible,
)
from storage.audit import event_row, record, record_all
from storage.bulk import insert_rows
from storage.items import (
    add_note,
    audit,
    get_item,
    insert_items,
    reassign_item,
    redate_item,
    set_progress,
    set_status,
    update_item,
)
from storage.measures import parse_quarter
from storage.models import (
    ActionItem,
    ActionItemCreate,
    ActionItemUpdate,
    CheckInCycle,
    Department,
    Dimension,
    ItemScore,
    Measure,
    MeasureReading,
    Person,
    Plan,
    ScoringCriterion,
    Strategy,
)
from storage.permissions import Actor
from storage.public import set_public_update, set_spanish_title

FORMAT_VERSION = 1
CSV_COLUMNS = (
    "ref",
    "department",
    "strategy",
    "title",
    "owner",
    "owner_name",
    "due",
    "status",
    "progress",
    "last_note",
    "updated_at",
)


class PlanFileError(ReapError):
    """A plan file is wrong: which file, where inside it, and why."""

    def __init__(self, filename: str, path: str, reason: str) -> None:
        # Path and reason quote the file, which may hold control characters; the one-line message
        # goes to a terminal, so they are shown as escapes.
        self.filename = filename
        self.path = visible(path)
        self.reason = visible(reason)
        super().__init__(f"{filename}: {self.path}: {self.reason}" if path else f"{filename}: {self.reason}")


# --- Reading YAML -----------------------------------------------------------------------------

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PlanLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader that refuses duplicate keys, keeps dates as text and reads only true/false as bools."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML silently keeps the last of two equal keys, which would hide a copy-paste mistake.
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    problem=f"duplicate key '{key}' (first at line {seen[key].start_mark.line + 1})",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = key_node
        return dict(super().construct_mapping(node, deep=deep))

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        # Python will not read an integer of more than 4,300 digits (a guard against slow
        # conversions); that is a problem at the number's line, not a ValueError.
        try:
            return int(super().construct_yaml_int(node))
        except ValueError:
            raise yaml.constructor.ConstructorError(
                problem=f"a number of {len(node.value)} digits is too large", problem_mark=node.start_mark
            ) from None


# Dates stay text so a bad one (2027-02-30) is reported with its path instead of crashing the
# constructor; YAML 1.1 booleans (yes/no/on/off) would silently turn a note like "no" into False.
_PlanLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_TIMESTAMP_TAG, _BOOL_TAG)]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_PlanLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_PlanLoader.add_constructor("tag:yaml.org,2002:int", _PlanLoader.construct_yaml_int)
# YAML 1.1 wants a dot in a float, so JSON's 1e-05 and 5e-324 (which `reap export --format json`
# writes) would be read as text; YAML 1.2 and JSON read them as numbers, and so do we. The
# export's dumper knows it too, so it quotes text such as '1e5'.
_EXPONENT = re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$")
_PlanLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+0123456789"))


class _PlanDumper(yaml.SafeDumper):
    """A safe dumper that quotes every text _PlanLoader would read as something else."""


_PlanDumper.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+0123456789"))


class _Unusual(Exception):
    """Something read_yaml leaves to the full loader: anchors, aliases, tags, merge keys, duplicates."""


_STR_TAG = "tag:yaml.org,2002:str"
_NO_KEY = object()


def read_yaml(text: str) -> Any:
    """What `yaml.load(text, Loader=_PlanLoader)` returns, read several times faster.

    Composing PyYAML's node graph calls back into Python for every node and then walks it again
    to construct values: for a 10,000-item plan that is most of an import's time. Plan files are
    plain mappings, lists and scalars, so values are built here straight from the parser's events,
    each plain scalar resolved and constructed by the loader's own rules. Anything else, and any
    error, is handed to the full loader, so results and messages are exactly PyYAML's.
    """
    try:
        return _from_events(text)
    except (_Unusual, yaml.YAMLError):
        return yaml.load(text, Loader=_PlanLoader)  # a SafeLoader subclass: no arbitrary objects


def _from_events(text: str) -> Any:
    loader = _PlanLoader(text)
    resolvers = loader.yaml_implicit_resolvers
    # Plain scalars starting with any other character are text (no implicit type starts there).
    typed_first = {first for first, found in resolvers.items() if found}
    any_first = None in typed_first
    constructors = loader.yaml_constructors
    resolve, get_event = loader.resolve, loader.get_event
    scalar_event, mapping_start, sequence_start = (
        yaml.ScalarEvent,
        yaml.MappingStartEvent,
        yaml.SequenceStartEvent,
    )
    scalar_node = yaml.ScalarNode
    root: Any = None
    documents = 0
    # The innermost open mapping or list, the ones around it, and for each open mapping the key
    # waiting for its value (_NO_KEY while none is).
    top: Any = None
    key: Any = _NO_KEY
    outer: list[tuple[Any, Any]] = []
    # This loop runs once per scalar of the file, so it is written for speed: one event at a time,
    # values placed inline.
    try:
        while (event := get_event()) is not None:
            kind = type(event)
            if kind is scalar_event:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual
                value: Any = event.value
                if event.implicit[0] and (not value or any_first or value[0] in typed_first):
                    tag = resolve(scalar_node, value, event.implicit)
                    if tag != _STR_TAG:
                        construct = constructors.get(tag)
                        if construct is None:
                            raise _Unusual
                        value = construct(loader, scalar_node(tag, value, event.start_mark, event.end_mark))
                if type(top) is list:
                    top.append(value)
                elif top is None:
                    root = value
                elif key is _NO_KEY:
                    if value in top:  # a duplicate key: the full loader says where
                        raise _Unusual
                    key = value
                else:
                    top[key] = value
                    key = _NO_KEY
            elif kind is mapping_start or kind is sequence_start:
                if event.anchor is not None or event.tag is not None:
                    raise _Unusual
                container: Any = {} if kind is mapping_start else []
                if type(top) is list:
                    top.append(container)
                elif top is None:
                    root = container
                elif key is _NO_KEY:  # a mapping or list as a key
                    raise _Unusual
                else:
                    top[key] = container
                outer.append((top, key))
                top, key = container, _NO_KEY
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                top, key = outer.pop()
                if type(top) is dict:
                    key = _NO_KEY
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Unusual
            elif kind is yaml.AliasEvent:
                raise _Unusual
    finally:
        loader.dispose()
    return root


# --- Field validators -------------------------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DEPARTMENT_KEY = re.compile(r"[A-Z][A-Z0-9]*")
_USER_ID = re.compile(r"[UW][A-Z0-9]+")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]+")
_TEAM_ID = re.compile(r"[TE][A-Z0-9]+")
_QUARTER = re.compile(r"FY\d{4}-Q[1-4]")
STATUS_NAMES = tuple(s.value for s in ItemStatus)
_BARE = re.compile(r"[\w./:+-]+")  # identifiers and statuses read fine unquoted in reports


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("plan_file", message)


def _kind(value: object) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, str):
        return f"the text '{value[:40]}'"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _text(
    max_length: int, *, optional: bool = False, empty: bool = False, multiline: bool = False
) -> BeforeValidator:
    def check(value: object) -> object:
        if value is None and optional:
            return None
        if value is None:
            raise _problem("must not be empty")
        if not isinstance(value, str):
            raise _problem(f"expected text, not {_kind(value)}")
        try:
            # Controls first, on the text as written: strip() would quietly drop some (\x1f, \x85).
            check_text(value, field="text", limit=len(value), multiline=True)
            value = value.strip()
            if not value and not empty:
                raise _problem("must not be empty")
            return check_text(value, field="text", limit=max_length, multiline=multiline)
        except TextRefused as exc:
            raise _problem(str(exc)) from None

    return BeforeValidator(check)


def _finite(value: float) -> float:
    # YAML reads .inf and .nan as numbers; a report cannot show them and JSON cannot carry them.
    try:
        return check_finite(value, field="value")
    except NotFinite as exc:
        raise _problem(str(exc)) from None


def _pattern(regexp: re.Pattern[str], what: str, *, optional: bool = False, limit: int = 64) -> Any:
    def check(value: object) -> object:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise _problem(f"expected {what}, not {_kind(value)}")
        value = value.strip()
        if len(value) > limit or not regexp.fullmatch(value):
            raise _problem(f"'{value}' is not {what}")
        return value

    return BeforeValidator(check)


def _date(optional: bool = False) -> BeforeValidator:
    def check(value: object) -> object:
        if value is None and optional:
            return None
        if isinstance(value, datetime):
            raise _problem(f"'{value}' has a time of day; write just the date as YYYY-MM-DD")
        if isinstance(value, date):
            return value
        if isinstance(value, str) and _DATE.fullmatch(value.strip()):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        shown = f"'{value}'" if isinstance(value, str) else _kind(value)
        raise _problem(f"{shown} is not a valid date; write it as YYYY-MM-DD")

    return BeforeValidator(check)


def _status(value: object) -> object:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _problem(f"expected a status, not {_kind(value)}")
    normal = re.sub(r"[\s-]+", "_", value.strip().lower())
    if normal not in STATUS_NAMES:
        raise _problem(f"'{value}' is not a status; use one of {', '.join(STATUS_NAMES)}")
    return normal


def _choice(names: tuple[str, ...], what: str) -> BeforeValidator:
    def check(value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str) or value.strip().lower() not in names:
            shown = f"'{value}'" if isinstance(value, str) else _kind(value)
            raise _problem(f"{shown} is not a {what}; use one of {', '.join(names)}")
        return value.strip().lower()

    return BeforeValidator(check)


def _progress(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _problem(f"progress is a whole percentage from 0 to 100, not {_kind(value)}")
    if not 0 <= value <= 100:
        raise _problem(f"progress must be between 0 and 100, not {value}")
    return value


def _time_zone(value: object) -> object:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _problem(f"expected an IANA time zone name, not {_kind(value)}")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _problem(f"'{name}' is not an IANA time zone name (like America/New_York)") from None
    return name


def _version(value: object) -> object:
    if value != FORMAT_VERSION or isinstance(value, bool):
        raise _problem(f"unsupported version {value!r}; this REAP Tracker reads version {FORMAT_VERSION}")
    return value


def _readings(value: object) -> object:
    # `FY2027-Q1: 25` is shorthand for `FY2027-Q1: {value: 25}`.
    if isinstance(value, dict):
        return {
            quarter: {"value": reading}
            if isinstance(reading, int | float) and not isinstance(reading, bool)
            else reading
            for quarter, reading in value.items()
        }
    return value


Key = Annotated[str, _pattern(_KEY, "a key (letters, digits, '.', '_' or '-')")]
ItemKey = Annotated[str, _pattern(_KEY, "a key (letters, digits, '.', '_' or '-')", limit=100)]
DepartmentKey = Annotated[str, _pattern(_DEPARTMENT_KEY, "a department key (like OIT)", limit=16)]
OptionalDepartmentKey = Annotated[
    str | None, _pattern(_DEPARTMENT_KEY, "a department key (like OIT)", optional=True, limit=16)
]
UserId = Annotated[str, _pattern(_USER_ID, "a Slack user id (like U0123ABCD)", limit=32)]
OptionalUserId = Annotated[
    str | None, _pattern(_USER_ID, "a Slack user id (like U0123ABCD)", optional=True, limit=32)
]
ChannelId = Annotated[
    str | None, _pattern(_CHANNEL_ID, "a Slack channel id (like C0123ABCD)", optional=True, limit=32)
]
TeamId = Annotated[
    str | None, _pattern(_TEAM_ID, "a Slack workspace id (like T0123ABCD)", optional=True, limit=32)
]
Quarter = Annotated[str, _pattern(_QUARTER, "a fiscal quarter label (like FY2027-Q2)", limit=10)]
IsoDate = Annotated[date, _date()]
OptionalDate = Annotated[date | None, _date(optional=True)]
Status = Annotated[str | None, BeforeValidator(_status)]
Progress = Annotated[int | None, BeforeValidator(_progress)]
TimeZone = Annotated[str | None, BeforeValidator(_time_zone)]
RoleName = Annotated[str | None, _choice(tuple(r.value for r in Role), "role")]
DirectionName = Annotated[str, _choice(tuple(d.value for d in Direction), "direction")]
Finite = Annotated[float, AfterValidator(_finite)]
Description = Annotated[str | None, _text(DESCRIPTION_MAX, optional=True, empty=True, multiline=True)]


# --- The document -----------------------------------------------------------------------------


class _Doc(BaseModel):
    """Strict parts of a plan file: no unknown fields, no silent type coercion."""

    model_config = ConfigDict(strict=True, extra="forbid")


class PersonDoc(_Doc):
    """Someone named in the plan: an owner, a coordinator or a measure owner."""

    user_id: UserId
    name: Annotated[str | None, _text(NAME_MAX, optional=True, empty=True)] = None
    title: Annotated[str | None, _text(NAME_MAX, optional=True)] = None
    tz: TimeZone = None
    department: OptionalDepartmentKey = None
    role: RoleName = None


class DepartmentDoc(_Doc):
    """A department with its report channel."""

    key: DepartmentKey
    name: Annotated[str, _text(NAME_MAX)]
    report_channel: ChannelId = None


def _cadence(value: dict[str, Any]) -> dict[str, Any]:
    """The plan's cadence overrides, checked by the one Cadence type the policy uses."""
    try:
        Cadence.from_mapping(value)
    except CadenceError as exc:
        raise PydanticCustomError("cadence", str(exc)) from None
    return value


# Reminder cadence overrides: any of Cadence's settings; the others keep their defaults.
CadenceDoc = Annotated[dict[str, Any], AfterValidator(_cadence)]


def _evidence(value: object) -> object:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _problem(f"expected a link (https://...), not {_kind(value)}")
    try:
        return check_evidence(value)
    except InvalidChange:
        raise _problem("expected a link people can open (https://...)") from None


def _level(value: object) -> object:
    # A level is its number or its label; which one is checked against the plan's criteria.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _problem(f"expected a level (a number or a label), not {_kind(value)}")
    return str(value)


Evidence = Annotated[str | None, BeforeValidator(_evidence)]
Level = Annotated[str, BeforeValidator(_level)]


class ItemDoc(_Doc):
    """An action item; `ref` is informational (export writes it, import ignores it)."""

    key: ItemKey
    ref: Annotated[str | None, _text(32, optional=True)] = None
    title: Annotated[str, _text(TITLE_MAX)]
    owner: OptionalUserId = None
    due: OptionalDate = None
    status: Status = None
    progress: Progress = None
    note: Annotated[str | None, _text(NOTE_MAX, optional=True, multiline=True)] = None
    description: Description = None
    created: OptionalDate = None
    evidence: Evidence = None
    scores: dict[Key, Level] = {}
    # The public dashboard (domain.public): a Spanish title and the update a coordinator publishes.
    title_es: Annotated[str | None, _text(TITLE_MAX, optional=True)] = None
    public_update: Annotated[str | None, _text(NOTE_MAX, optional=True, multiline=True)] = None
    public_update_es: Annotated[str | None, _text(NOTE_MAX, optional=True, multiline=True)] = None


class PlanItemDoc(ItemDoc):
    """An item listed under the plan rather than its strategy, naming the strategy by key."""

    strategy: Key


def _group_value(value: object) -> object:
    # `black: 30` is shorthand for `black: {value: 30}`; a rate may add how many it was measured over.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"value": value}
    return value


class GroupValueDoc(_Doc):
    """One group's value in a reading, and (for a rate) how many it was measured over."""

    value: Finite
    n: Annotated[int | None, Field(ge=0)] = None


class ReadingDoc(_Doc):
    """One quarter's reading of a measure: the overall value, and each group's for a broken-down one."""

    value: Finite | None = None
    note: Annotated[str | None, _text(NOTE_MAX, optional=True, multiline=True)] = None
    groups: dict[Key, Annotated[GroupValueDoc, BeforeValidator(_group_value)]] = {}


class BreakdownDoc(_Doc):
    """How a measure is broken down: by which dimension, read as a rate or as representation."""

    dimension: Key
    kind: Annotated[str, _choice(tuple(k.value for k in BreakdownKind), "breakdown kind")]
    reference_group: Key | None = None


class MeasureDoc(_Doc):
    """A performance measure: baseline (value and quarter), target (value and its quarter or date),
    direction, kind, an optional breakdown, and quarterly readings."""

    key: Key
    name: Annotated[str, _text(TITLE_MAX)]
    unit: Annotated[str | None, _text(UNIT_MAX, optional=True, empty=True)] = None
    kind: Annotated[str, _choice(tuple(k.value for k in MeasureKind), "measure kind")] = (
        MeasureKind.LEVEL.value
    )
    baseline: Finite
    baseline_quarter: Quarter | None = None
    target: Finite
    target_quarter: Quarter | None = None
    target_date: OptionalDate = None
    direction: DirectionName
    owner: OptionalUserId = None
    source: Annotated[str | None, _text(NOTE_MAX, optional=True)] = None
    breakdown: BreakdownDoc | None = None
    readings: Annotated[dict[Quarter, ReadingDoc], BeforeValidator(_readings)] = {}

    def due_date(self, start_month: int) -> date:
        """The target date: given, or the last day of the target quarter."""
        if self.target_date is not None:
            return self.target_date
        assert self.target_quarter is not None  # _check_measure refuses a measure with neither
        return parse_quarter(self.target_quarter, start_month=start_month).end


class GroupDoc(_Doc):
    """A group of a dimension, with its share of the relevant population (0 to 1) when known."""

    key: Key
    name: Annotated[str | None, _text(NAME_MAX, optional=True)] = None
    population_share: Annotated[float | None, Field(ge=0, le=1)] = None
    source: Annotated[str | None, _text(NOTE_MAX, optional=True)] = None


class DimensionDoc(_Doc):
    """A way the plan breaks measures down (race and ethnicity, neighbourhood, ZIP code)."""

    key: Key
    name: Annotated[str, _text(NAME_MAX)]
    source: Annotated[str | None, _text(NOTE_MAX, optional=True)] = None
    groups: list[GroupDoc]


class CriterionDoc(_Doc):
    """A question of the equity scoring matrix, its weight, and its levels' labels from 0 up."""

    key: Key
    question: Annotated[str, _text(TITLE_MAX)]
    weight: Annotated[float, Field(gt=0, le=1000)]
    levels: Annotated[list[Annotated[str, _text(NAME_MAX)]], Field(min_length=2, max_length=11)]


class PolicyDoc(_Doc):
    """Which changes to a commitment need a coordinator's approval, and what completion needs."""

    approval: Annotated[
        list[Annotated[str, _choice(tuple(k.value for k in ChangeKind), "change")]],
        AfterValidator(lambda kinds: sorted(set(kinds))),
    ] = sorted(k.value for k in ChangeKind)
    due_allowance_days: Annotated[int, Field(ge=0, le=365)] = 0
    evidence_required: bool = True
    verification: bool = True


class SpanishDoc(_Doc):
    """The plan's own names in Spanish, for the public dashboard; English shows where one is missing."""

    department: Annotated[str | None, _text(NAME_MAX, optional=True)] = None
    title: Annotated[str | None, _text(TITLE_MAX, optional=True)] = None
    strategies: dict[Key, Annotated[str, _text(NAME_MAX)]] = {}
    measures: dict[Key, Annotated[str, _text(TITLE_MAX)]] = {}


class PublicDoc(_Doc):
    """What the public dashboard shows of the plan beyond its always-public fields."""

    licence: Annotated[str, _choice(tuple(k.lower() for k in LICENCES), "licence")] = "cc-by-4.0"
    show: Annotated[
        list[Annotated[str, _choice(OPT_INS, "field to publish")]],
        AfterValidator(lambda names: [n for n in OPT_INS if n in names]),
    ] = []
    as_of: bool = False
    es: SpanishDoc | None = None

    def stored(self) -> dict[str, Any]:
        """The canonical mapping kept on the plan (domain.public.PublicSettings reads it)."""
        licence = next(k for k in LICENCES if k.lower() == self.licence)
        data: dict[str, Any] = {"licence": licence, "show": list(self.show), "as_of": self.as_of}
        if self.es is not None:
            data["es"] = self.es.model_dump(exclude_none=True)
        return data


class StrategyDoc(_Doc):
    """A priority strategy with its items and measures."""

    key: Key
    name: Annotated[str, _text(NAME_MAX)]
    description: Description = None
    items: list[ItemDoc] = []
    measures: list[MeasureDoc] = []


class PlanDoc(_Doc):
    """A department's plan over a date range."""

    key: Key
    department: DepartmentKey
    title: Annotated[str, _text(TITLE_MAX)]
    start: IsoDate
    end: IsoDate
    cadence: CadenceDoc | None = None
    policy: PolicyDoc | None = None
    public: PublicDoc | None = None
    min_group_count: Annotated[int | None, Field(ge=1, le=1000)] = None
    dimensions: list[DimensionDoc] = []
    scoring: list[CriterionDoc] = []
    strategies: list[StrategyDoc] = []
    items: list[PlanItemDoc] = []


class PlanDocument(_Doc):
    """A whole validated plan file; `workspace` optionally names the Slack team it belongs to."""

    version: Annotated[int, BeforeValidator(_version)]
    workspace: TeamId = None
    people: list[PersonDoc] = []
    departments: list[DepartmentDoc] = []
    plans: list[PlanDoc] = []
    meetings: dict[Quarter, IsoDate] = {}

    _filename: str = PrivateAttr(default="plan")
    _start_month: int = PrivateAttr(default=7)

    @property
    def start_month(self) -> int:
        """The month the organisation's fiscal year starts in (quarter labels depend on it)."""
        return self._start_month

    @property
    def filename(self) -> str:
        """The file this document was read from, for error messages."""
        return self._filename

    def plan_items(self, index: int) -> Iterator[tuple[str, str, ItemDoc]]:
        """(path, strategy key, item) for every item of plans[index], nested ones first."""
        plan = self.plans[index]
        for s, strategy in enumerate(plan.strategies):
            for i, item in enumerate(strategy.items):
                yield f"plans[{index}].strategies[{s}].items[{i}]", strategy.key, item
        for i, flat in enumerate(plan.items):
            yield f"plans[{index}].items[{i}]", flat.strategy, flat


_REASONS = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (check the spelling)",
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "list_type": "expected a list",
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
}


def _error_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _error_reason(error: ErrorDetails) -> str:
    if error["type"] == "plan_file":
        return error["msg"]
    reason = _REASONS.get(error["type"], error["msg"])
    if error["type"].endswith("_type") and not isinstance(error["input"], dict | list):
        reason += f", not {_kind(error['input'])}"
    return reason


def parse_plan_file(text: str, *, filename: str, start_month: int = 7) -> PlanDocument:
    """Read and validate a plan file; any problem is a PlanFileError naming its path in the file."""
    try:
        raw = read_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else ""
        raise PlanFileError(filename, where, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:
        # PyYAML's own text runs over two lines and counts characters; a person wants the line.
        line = text.count("\n", 0, exc.position) + 1
        reason = f"invalid YAML: unacceptable character {exc.character!a}: {exc.reason}"
        raise PlanFileError(filename, f"line {line}", reason) from None
    except yaml.YAMLError as exc:
        raise PlanFileError(filename, "", f"invalid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PlanFileError(filename, "", f"expected a mapping starting with `version: {FORMAT_VERSION}`")
    try:
        document = PlanDocument.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PlanFileError(filename, _error_path(first["loc"]), _error_reason(first)) from None
    document._filename = filename
    document._start_month = start_month
    _check_references(document)
    return document


def _first_seen(
    seen: dict[Any, str], key: Any, path: str, what: str, filename: str, *, shown: str = "", scope: str = ""
) -> None:
    if key in seen:
        reason = f"duplicate {what} '{shown or key}'{scope} (first at {seen[key]})"
        raise PlanFileError(filename, path, reason)
    seen[key] = path


def _check_references(doc: PlanDocument) -> None:
    """Cross-field rules pydantic cannot see: duplicates, references, owners, done means 100%."""
    name = doc.filename
    departments: dict[str, str] = {}
    for d, department in enumerate(doc.departments):
        _first_seen(departments, department.key, f"departments[{d}].key", "department key", name)
    people: dict[str, str] = {}
    for p, person in enumerate(doc.people):
        _first_seen(people, person.user_id, f"people[{p}].user_id", "user_id", name)
        if person.department is not None and person.department not in departments:
            raise PlanFileError(name, f"people[{p}].department", f"unknown department '{person.department}'")
        if person.role == Role.COORDINATOR and person.department is None:
            raise PlanFileError(name, f"people[{p}].department", "a coordinator needs a department")

    def owner_known(owner: str | None, path: str) -> None:
        if owner is not None and owner not in people:
            raise PlanFileError(name, path, f"missing owner: {owner} is not declared under people")

    plans: dict[str, str] = {}
    measures: dict[str, str] = {}
    item_keys: dict[tuple[str, str], str] = {}
    for index, plan in enumerate(doc.plans):
        where = f"plans[{index}]"
        _first_seen(plans, plan.key, f"{where}.key", "plan key", name)
        if plan.department not in departments:
            raise PlanFileError(name, f"{where}.department", f"unknown department '{plan.department}'")
        if plan.end < plan.start:
            raise PlanFileError(
                name, f"{where}.end", f"the plan ends ({plan.end}) before it starts ({plan.start})"
            )
        dimensions = _check_dimensions(name, where, plan)
        criteria = _check_criteria(name, where, plan)
        strategies: dict[str, str] = {}
        for s, strategy in enumerate(plan.strategies):
            _first_seen(strategies, strategy.key, f"{where}.strategies[{s}].key", "strategy key", name)
            for m, measure in enumerate(strategy.measures):
                path = f"{where}.strategies[{s}].measures[{m}]"
                _first_seen(measures, measure.key, f"{path}.key", "measure key", name)
                owner_known(measure.owner, f"{path}.owner")
                _check_measure(name, path, measure, dimensions, doc.start_month)
        _check_spanish(name, where, plan)
        for path, strategy_key, item in doc.plan_items(index):
            if strategy_key not in strategies:
                known = ", ".join(strategies) or "none"
                raise PlanFileError(
                    name,
                    f"{path}.strategy",
                    f"unknown strategy '{strategy_key}' in plan {plan.key} (known: {known})",
                )
            key = (plan.department, item.key)
            scope = f" in department {plan.department}"
            _first_seen(item_keys, key, f"{path}.key", "item key", name, shown=item.key, scope=scope)
            owner_known(item.owner, f"{path}.owner")
            for criterion_key, level in item.scores.items():
                criterion = criteria.get(criterion_key)
                if criterion is None:
                    known = ", ".join(criteria) or "none"
                    raise PlanFileError(
                        name, f"{path}.scores.{criterion_key}", f"unknown criterion (plan criteria: {known})"
                    )
                try:
                    criterion.level(level)
                except ScoreRefused as exc:
                    raise PlanFileError(name, f"{path}.scores.{criterion_key}", exc.problem) from None
            if item.status == ItemStatus.DONE:
                if item.progress not in (None, 100):
                    raise PlanFileError(
                        name,
                        f"{path}.progress",
                        f"a done item is 100% complete, not {item.progress}%",
                    )
                item.progress = 100


def _check_spanish(name: str, where: str, plan: PlanDoc) -> None:
    """Spanish names only for the plan's own strategies and measures."""
    spanish = plan.public.es if plan.public is not None else None
    if spanish is None:
        return
    strategies = {s.key for s in plan.strategies}
    measures = {m.key for s in plan.strategies for m in s.measures}
    for kind, keys, known in (
        ("strategies", spanish.strategies, strategies),
        ("measures", spanish.measures, measures),
    ):
        for key in keys:
            if key not in known:
                raise PlanFileError(name, f"{where}.public.es.{kind}.{key}", f"not one of this plan's {kind}")


def _check_dimensions(name: str, where: str, plan: PlanDoc) -> dict[str, DimensionDoc]:
    seen: dict[str, str] = {}
    for d, dimension in enumerate(plan.dimensions):
        _first_seen(seen, dimension.key, f"{where}.dimensions[{d}].key", "dimension key", name)
        groups: dict[str, str] = {}
        for g, group in enumerate(dimension.groups):
            path = f"{where}.dimensions[{d}].groups[{g}]"
            _first_seen(groups, group.key, f"{path}.key", "group key", name, scope=f" in {dimension.key}")
        if not dimension.groups:
            raise PlanFileError(name, f"{where}.dimensions[{d}].groups", "a dimension needs its groups")
        shares = sum(g.population_share or 0.0 for g in dimension.groups)
        if shares > 1.0 + 1e-6:
            raise PlanFileError(
                name,
                f"{where}.dimensions[{d}].groups",
                f"population shares add up to {shares:.3g}, more than 1",
            )
    return {d.key: d for d in plan.dimensions}


def _check_criteria(name: str, where: str, plan: PlanDoc) -> dict[str, Criterion]:
    seen: dict[str, str] = {}
    for c, criterion in enumerate(plan.scoring):
        _first_seen(seen, criterion.key, f"{where}.scoring[{c}].key", "criterion key", name)
    return {c.key: Criterion(c.key, c.question, c.weight, tuple(c.levels)) for c in plan.scoring}


def _check_measure(
    name: str, path: str, measure: MeasureDoc, dimensions: Mapping[str, DimensionDoc], start_month: int
) -> None:
    """Refuse a measure that cannot be tracked, naming the measure and the field."""

    def refuse(field: str, reason: str) -> PlanFileError:
        return PlanFileError(name, f"{path}.{field}", f"measure {measure.key}: {reason}")

    if measure.target_date is None and measure.target_quarter is None:
        raise refuse(
            "target_quarter", "give the quarter the target is due (target_quarter) or its target_date"
        )
    if (
        measure.target_date is not None
        and measure.target_quarter is not None
        and parse_quarter(measure.target_quarter, start_month=start_month).end != measure.target_date
    ):
        raise refuse("target_date", f"{measure.target_date} is not the last day of {measure.target_quarter}")
    base = (
        parse_quarter(measure.baseline_quarter, start_month=start_month) if measure.baseline_quarter else None
    )
    rule = MeasureRule(
        key=measure.key,
        baseline=measure.baseline,
        target=measure.target,
        direction=measure.direction,
        target_date=measure.due_date(start_month),
        kind=measure.kind,
        baseline_quarter=base,
    )
    try:
        check_measure(rule)
    except MeasureInvalid as exc:
        raise refuse(exc.field, exc.problem) from None
    dimension = None
    if measure.breakdown is not None:
        dimension = dimensions.get(measure.breakdown.dimension)
        if dimension is None:
            known = ", ".join(dimensions) or "none"
            raise refuse(
                "breakdown.dimension", f"unknown dimension '{measure.breakdown.dimension}' (plan: {known})"
            )
        group_keys = [g.key for g in dimension.groups]
        if (
            measure.breakdown.reference_group is not None
            and measure.breakdown.reference_group not in group_keys
        ):
            raise refuse(
                "breakdown.reference_group",
                f"'{measure.breakdown.reference_group}' is not a group of {dimension.key}",
            )
    earlier: list[tuple[FiscalQuarter, float]] = []
    for label, reading in sorted(measure.readings.items()):
        where = f"readings.{label}"
        quarter = parse_quarter(label, start_month=start_month)
        value = reading.value
        if reading.groups:
            if dimension is None or measure.breakdown is None:
                raise refuse(f"{where}.groups", "the measure is not broken down, so give one value")
            for group_key, given in reading.groups.items():
                if group_key not in [g.key for g in dimension.groups]:
                    raise refuse(f"{where}.groups.{group_key}", f"not a group of {dimension.key}")
                if given.value < 0:
                    raise refuse(f"{where}.groups.{group_key}", f"{given.value:g} is below zero")
                if (
                    measure.breakdown.kind == BreakdownKind.REPRESENTATION
                    and not float(given.value).is_integer()
                ):
                    raise refuse(f"{where}.groups.{group_key}", f"{given.value:g} is not a count of people")
            if value is None and measure.breakdown.kind == BreakdownKind.REPRESENTATION:
                value = sum(g.value for g in reading.groups.values())
        if value is None:
            raise refuse(f"{where}.value", "the reading needs its value")
        try:
            check_reading(rule, quarter=quarter, value=value, note=reading.note, earlier=earlier)
        except ReadingRefused as exc:
            raise refuse(where, exc.problem) from None
        earlier.append((quarter, value))


# --- Import -----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import changed (or, rolled back, would change): one human line per change."""

    changes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the import wrote anything."""
        return any(n for k, n in self.counts.items() if k.endswith(("_created", "_updated")))

    def count(self, kind: str, outcome: str) -> None:
        """Count one `kind` (item, measure, ...) as created, updated or not_in_file."""
        key = f"{kind}_{outcome}"
        self.counts[key] = self.counts.get(key, 0) + 1

    def summary(self) -> str:
        """One line such as 'item_created=3, item_updated=1', or 'no changes'."""
        if not self.changed:
            return "no changes"
        return ", ".join(f"{k}={n}" for k, n in sorted(self.counts.items()))


def _shown(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, str):
        if _BARE.fullmatch(value):
            return value
        short = value if len(value) <= 60 else value[:57] + "..."
        return f"'{short}'"
    return str(value)


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


# What the import compares of each stored item: read as plain rows, not ORM objects.
_ITEM_COLUMNS = (
    col(ActionItem.id),
    col(ActionItem.department_id),
    col(ActionItem.number),
    col(ActionItem.ref),
    col(ActionItem.import_key),
    col(ActionItem.strategy_id),
    col(ActionItem.title),
    col(ActionItem.description),
    col(ActionItem.status),
    col(ActionItem.progress),
    col(ActionItem.owner_id),
    col(ActionItem.due),
    col(ActionItem.last_note),
)


def _item_differs(row: Any, doc: ItemDoc, strategy: Strategy) -> bool:
    """Whether the file asks for any change to the stored item (the same tests _update_item applies)."""
    return (
        doc.title != row.title
        or doc.description not in (None, row.description)
        or strategy.id != row.strategy_id
        or (doc.status is not None and doc.status != row.status)
        or (doc.progress is not None and doc.progress != row.progress)
        or (doc.owner is not None and doc.owner != row.owner_id)
        or (doc.due is not None and doc.due != row.due)
        or bool(doc.note and doc.note != row.last_note)
    )


_Key = TypeVar("_Key", bound=Hashable)
# Told how far an import has got: (what it is doing, units done, units in all), where a unit is
# one department, person, plan, strategy, item, measure, reading or meeting of the file.
ProgressHook = Callable[[str, int, int], None]
# New items are written this many at a time, so progress moves while a big plan is written.
ITEM_BATCH = 2000
# Compared items are reported this many at a time.
_ITEM_STEP = 500


def _measures(document: PlanDocument) -> Iterator[MeasureDoc]:
    for plan in document.plans:
        for strategy in plan.strategies:
            yield from strategy.measures


def _units(document: PlanDocument) -> int:
    """How many units of progress importing the document makes (see ProgressHook)."""
    items = sum(1 for index in range(len(document.plans)) for _ in document.plan_items(index))
    return (
        len(document.departments)
        + len(document.people)
        + sum(1 + len(p.strategies) for p in document.plans)
        + items
        + sum(1 + len(m.readings) for m in _measures(document))
        + len(document.meetings)
    )


class _Importer:
    """One import run: bulk-loaded existing rows, and the report being written."""

    def __init__(
        self,
        session: AsyncSession,
        document: PlanDocument,
        team_id: str,
        now: datetime,
        progress: ProgressHook | None = None,
    ) -> None:
        self.session = session
        self.doc = document
        self.team_id = team_id
        self.now = now
        self.actor = Actor.system(team_id)
        self.report = ImportReport()
        self.progress = progress
        self.done = 0
        self.total = _units(document)
        self.departments: dict[str, Department] = {}
        self.plans: dict[str, Plan] = {}
        self.strategies: dict[tuple[int, str], Strategy] = {}
        self.strategy_keys: dict[int, str] = {}
        self.criteria: dict[tuple[int, str], Criterion] = {}

    async def _all(self, query: SelectOfScalar[Any]) -> list[Any]:
        return list(await self.session.exec(query))

    def _team(self, model: type[SQLModel]) -> SelectOfScalar[Any]:
        return select(model).where(model.team_id == self.team_id)  # type: ignore[attr-defined]

    def _audit(self, kind: str, row_id: int | None, **fields: Any) -> None:
        record(
            self.session,
            team_id=self.team_id,
            entity=kind,
            entity_id=row_id,
            actor=self.actor.user_id,
            at=self.now,
            action=fields.pop("action"),
            field=fields.pop("field", None),
            old=fields.pop("old", None),
            new=fields.pop("new", None),
        )

    async def _created(
        self, kind: str, model: type[SQLModel], new: list[tuple[Any, str]], key: Callable[[Any], _Key]
    ) -> dict[_Key, Any]:
        """Write the new rows with one statement, read them back (ids) with one more, audit them in bulk.

        Returns the stored rows by `key`, to use in place of the unsaved ones.
        """
        if not new:
            return {}
        columns = [c.key for c in model.__table__.columns if not c.primary_key]  # type: ignore[attr-defined]
        await insert_rows(self.session, model, [{c: getattr(row, c) for c in columns} for row, _ in new])
        stored = {key(row): row for row in await self._all(self._team(model))}
        created: dict[_Key, Any] = {}
        events = []
        for row, line in new:
            saved = created[key(row)] = stored[key(row)]
            events.append(
                event_row(
                    team_id=self.team_id,
                    entity=kind,
                    entity_id=saved.id,
                    actor=self.actor.user_id,
                    at=self.now,
                    action="create",
                    new=line,
                )
            )
            self.report.changes.append(f"create {kind} {line}")
            self.report.count(kind, "created")
        await record_all(self.session, events)
        return created

    def _sync(
        self,
        row: Any,
        *,
        kind: str,
        label: str,
        wanted: Mapping[str, object],
        names: Mapping[str, str] | None = None,
        show: Mapping[str, Callable[[Any], str]] | None = None,
    ) -> None:
        """Set each wanted field that differs (None means the file leaves it alone), auditing each."""
        changed = False
        for attr, value in wanted.items():
            old = getattr(row, attr)
            if value is None or old == value:
                continue
            setattr(row, attr, value)
            self._audit(kind, row.id, action="update", field=attr, old=old, new=value)
            render = (show or {}).get(attr, _shown)
            field_name = (names or {}).get(attr, attr)
            self.report.changes.append(
                f"update {kind} {label} {field_name}: {render(old)} -> {render(value)}"
            )
            changed = True
        if changed:
            self.report.count(kind, "updated")

    def _advance(self, what: str, units: int) -> None:
        self.done += units
        if self.progress is not None and units:
            self.progress(what, self.done, self.total)

    async def run(self) -> ImportReport:
        await self._import_departments()
        self._advance("departments", len(self.doc.departments))
        await self._import_people()
        self._advance("people", len(self.doc.people))
        await self._import_plans()
        self._advance("plans", sum(1 + len(p.strategies) for p in self.doc.plans))
        await self._import_items()
        await self._import_measures()
        self._advance("measures", sum(len(m.readings) + 1 for m in _measures(self.doc)))
        await self._import_meetings()
        self._advance("meetings", len(self.doc.meetings))
        return self.report

    async def _import_departments(self) -> None:
        self.departments = {d.key: d for d in await self._all(self._team(Department))}
        new: list[tuple[Any, str]] = []
        for doc in self.doc.departments:
            row = self.departments.get(doc.key)
            if row is None:
                row = Department(
                    team_id=self.team_id,
                    key=doc.key,
                    name=doc.name,
                    report_channel=doc.report_channel,
                    created_at=self.now,
                )
                self.departments[doc.key] = row
                new.append((row, f"{doc.key} '{doc.name}'"))
            else:
                wanted = {"name": doc.name, "report_channel": doc.report_channel}
                self._sync(row, kind="department", label=doc.key, wanted=wanted)
        self.departments.update(await self._created("department", Department, new, key=lambda d: d.key))

    def _department_key(self, department_id: int | None) -> str:
        keys = {d.id: key for key, d in self.departments.items()}
        return keys.get(department_id, "(none)") if department_id is not None else "(none)"

    async def _import_people(self) -> None:
        existing = {p.user_id: p for p in await self._all(self._team(Person))}
        new: list[tuple[Any, str]] = []
        for doc in self.doc.people:
            department_id = self.departments[doc.department].id if doc.department else None
            row = existing.get(doc.user_id)
            if row is None:
                row = Person(
                    team_id=self.team_id,
                    user_id=doc.user_id,
                    name=doc.name or "",
                    title=doc.title,
                    tz=doc.tz,
                    role=doc.role or Role.MEMBER.value,
                    department_id=department_id,
                    created_at=self.now,
                )
                new.append((row, f"{doc.user_id} '{doc.name or ''}'"))
                continue
            wanted = {
                "name": doc.name,
                "title": doc.title,
                "tz": doc.tz,
                "role": doc.role,
                "department_id": department_id,
            }
            self._sync(
                row,
                kind="person",
                label=doc.user_id,
                wanted=wanted,
                names={"department_id": "department"},
                show={"department_id": self._department_key},
            )
        await self._created("person", Person, new, key=lambda p: p.user_id)

    async def _import_plans(self) -> None:
        self.plans = {p.key: p for p in await self._all(self._team(Plan))}
        new: list[tuple[Any, str]] = []
        for index, doc in enumerate(self.doc.plans):
            department = self.departments[doc.department]
            cadence = dict(doc.cadence) if doc.cadence is not None else None
            row = self.plans.get(doc.key)
            if row is None:
                row = Plan(
                    team_id=self.team_id,
                    department_id=department.id or 0,
                    key=doc.key,
                    title=doc.title,
                    start_date=doc.start,
                    end_date=doc.end,
                    cadence=cadence,
                    policy=_policy(doc.policy),
                    public=doc.public.stored() if doc.public is not None else None,
                    min_group_count=doc.min_group_count or DEFAULT_MIN_COUNT,
                    created_at=self.now,
                )
                self.plans[doc.key] = row
                new.append((row, f"{doc.key} '{doc.title}'"))
                continue
            if row.department_id != department.id:
                raise PlanFileError(
                    self.doc.filename,
                    f"plans[{index}].department",
                    f"plan {doc.key} already belongs to department "
                    f"{self._department_key(row.department_id)}, not {doc.department}",
                )
            # Cadence keys the file does not mention keep their stored values.
            merged = {**(row.cadence or {}), **cadence} if cadence is not None else None
            wanted = {
                "title": doc.title,
                "start_date": doc.start,
                "end_date": doc.end,
                "cadence": merged,
                "policy": _policy(doc.policy),
                "public": doc.public.stored() if doc.public is not None else None,
                "min_group_count": doc.min_group_count,
            }
            self._sync(row, kind="plan", label=doc.key, wanted=wanted)
        self.plans.update(await self._created("plan", Plan, new, key=lambda p: p.key))

        for strategy in await self._all(self._team(Strategy)):
            self.strategies[(strategy.plan_id, strategy.key)] = strategy
        new = []
        for doc in self.doc.plans:
            plan = self.plans[doc.key]
            for position, sdoc in enumerate(doc.strategies):
                srow = self.strategies.get((plan.id or 0, sdoc.key))
                label = f"{doc.key}/{sdoc.key}"
                if srow is None:
                    srow = Strategy(
                        team_id=self.team_id,
                        plan_id=plan.id or 0,
                        key=sdoc.key,
                        name=sdoc.name,
                        description=sdoc.description or "",
                        position=position,
                    )
                    self.strategies[(plan.id or 0, sdoc.key)] = srow
                    new.append((srow, f"{label} '{sdoc.name}'"))
                    continue
                wanted = {"name": sdoc.name, "description": sdoc.description, "position": position}
                self._sync(srow, kind="strategy", label=label, wanted=wanted)
        self.strategies.update(
            await self._created("strategy", Strategy, new, key=lambda s: (s.plan_id, s.key))
        )
        self.strategy_keys = {s.id or 0: key for (_, key), s in self.strategies.items()}
        await self._import_dimensions()
        await self._import_criteria()

    async def _import_dimensions(self) -> None:
        dimensions = {(d.plan_id, d.key): d for d in await self._all(self._team(Dimension))}
        new: list[tuple[Any, str]] = []
        for doc in self.doc.plans:
            plan = self.plans[doc.key]
            for ddoc in doc.dimensions:
                groups = [g.model_dump(exclude_none=True) for g in ddoc.groups]
                row = dimensions.get((plan.id or 0, ddoc.key))
                if row is None:
                    row = Dimension(
                        team_id=self.team_id,
                        plan_id=plan.id or 0,
                        key=ddoc.key,
                        name=ddoc.name,
                        source=ddoc.source,
                        groups=groups,
                    )
                    new.append((row, f"{doc.key}/{ddoc.key} '{ddoc.name}'"))
                    continue
                wanted = {"name": ddoc.name, "source": ddoc.source, "groups": groups}
                self._sync(row, kind="dimension", label=f"{doc.key}/{ddoc.key}", wanted=wanted)
        await self._created("dimension", Dimension, new, key=lambda d: (d.plan_id, d.key))

    async def _import_criteria(self) -> None:
        rows = {(c.plan_id, c.key): c for c in await self._all(self._team(ScoringCriterion))}
        new: list[tuple[Any, str]] = []
        for doc in self.doc.plans:
            plan = self.plans[doc.key]
            for position, cdoc in enumerate(doc.scoring):
                row = rows.get((plan.id or 0, cdoc.key))
                if row is None:
                    row = ScoringCriterion(
                        team_id=self.team_id,
                        plan_id=plan.id or 0,
                        key=cdoc.key,
                        question=cdoc.question,
                        weight=cdoc.weight,
                        levels=list(cdoc.levels),
                        position=position,
                    )
                    new.append((row, f"{doc.key}/{cdoc.key} '{cdoc.question}'"))
                    continue
                # A new weight counts for scores given from now on; earlier ones keep theirs.
                wanted = {
                    "question": cdoc.question,
                    "weight": cdoc.weight,
                    "levels": list(cdoc.levels),
                    "position": position,
                }
                self._sync(row, kind="criterion", label=f"{doc.key}/{cdoc.key}", wanted=wanted)
        created = await self._created("criterion", ScoringCriterion, new, key=lambda c: (c.plan_id, c.key))
        rows.update(created)
        self.criteria = {
            (plan_id, key): Criterion(row.key, row.question, row.weight, tuple(row.levels))
            for (plan_id, key), row in rows.items()
        }

    async def _import_items(self) -> None:
        department_ids = {self.departments[p.department].id for p in self.doc.plans}
        department_ids |= {self.departments[d.key].id for d in self.doc.departments}
        # Only the columns the file can change, as plain rows: an unchanged item costs no ORM object.
        connection = await self.session.connection()
        query = sa.select(*_ITEM_COLUMNS).where(col(ActionItem.department_id).in_(department_ids))
        loaded: list[Any] = list((await connection.execute(query)).all())
        by_key = {(i.department_id, i.import_key): i for i in loaded if i.import_key is not None}
        # Items added in Slack have no key; an export writes their ref as the key.
        by_ref = {(i.department_id, i.ref): i for i in loaded if i.import_key is None}
        seen: set[int] = set()
        new: list[tuple[ItemDoc, Strategy]] = []
        for index, plan_doc in enumerate(self.doc.plans):
            plan = self.plans[plan_doc.key]
            department = self.departments[plan_doc.department]
            for _path, strategy_key, doc in self.doc.plan_items(index):
                strategy = self.strategies[(plan.id or 0, strategy_key)]
                existing = by_key.get((department.id, doc.key)) or by_ref.get(
                    (department.id, doc.key.upper())
                )
                if existing is None:
                    new.append((doc, strategy))
                else:
                    seen.add(existing.id or 0)
                    await self._update_item(existing, doc, strategy)
                    if len(seen) % _ITEM_STEP == 0:
                        self._advance("items", _ITEM_STEP)
        self._advance("items", len(seen) % _ITEM_STEP)
        await self._create_items(new)
        await self._import_scores()
        keys = {d.id: key for key, d in self.departments.items()}
        missing = sorted(
            (i for i in loaded if i.id not in seen), key=lambda i: (keys[i.department_id], i.number)
        )
        for item in missing:
            self.report.changes.append(f"not in file: {item.ref}")
            self.report.count("item", "not_in_file")

    async def _create_items(self, new: list[tuple[ItemDoc, Strategy]]) -> None:
        """Create the file's new items in batches, each audited.

        Refs follow the file's order, except that items carrying an exported ref go first in ref
        order: an export imported into another workspace then gives every item the same ref.
        """
        new = sorted(new, key=_ref_order)
        for start in range(0, len(new), ITEM_BATCH):
            batch = new[start : start + ITEM_BATCH]
            items = await insert_items(
                self.session,
                data=[
                    ActionItemCreate(
                        strategy_id=strategy.id or 0,
                        import_key=doc.key,
                        title=doc.title,
                        description=doc.description or "",
                        owner_id=doc.owner,
                        due=doc.due,
                        status=ItemStatus(doc.status or ItemStatus.NOT_STARTED.value),
                        progress=doc.progress if doc.progress is not None else 0,
                        created_at=_noon(doc.created) if doc.created else None,
                        evidence_url=doc.evidence,
                    )
                    for doc, strategy in batch
                ],
                actor=self.actor,
                now=self.now,
                notes=[doc.note for doc, _ in batch],
            )
            for item in items:
                self.report.changes.append(f"create item {item.ref} '{item.title}'")
                self.report.count("item", "created")
            self._advance("items", len(batch))

    def _item_state(self, item: Any) -> dict[str, object]:
        return {
            "title": item.title,
            "description": item.description,
            "strategy": self.strategy_keys.get(item.strategy_id, str(item.strategy_id)),
            "status": item.status,
            "progress": item.progress,
            "owner": item.owner_id,
            "due": item.due,
            "note": item.last_note,
        }

    async def _update_item(self, row: Any, doc: ItemDoc, strategy: Strategy) -> None:
        """Bring one item in line with the file through the audited storage functions."""
        if not _item_differs(row, doc, strategy):
            return
        ref, actor, now, session = row.ref, self.actor, self.now, self.session
        item = await get_item(session, team_id=self.team_id, ref=ref)
        before = self._item_state(item)
        changes = ActionItemUpdate(
            title=doc.title if doc.title != item.title else None,
            description=doc.description if doc.description not in (None, item.description) else None,
            strategy_id=strategy.id if strategy.id != item.strategy_id else None,
        )
        if changes.model_dump(exclude_none=True):
            await update_item(session, ref=ref, changes=changes, actor=actor, now=now)
        if doc.status is not None and doc.status != item.status:
            await set_status(session, ref=ref, status=ItemStatus(doc.status), actor=actor, now=now)
        if doc.progress is not None and doc.progress != item.progress:
            await set_progress(session, ref=ref, percent=doc.progress, actor=actor, now=now)
        if doc.owner is not None and doc.owner != item.owner_id:
            await reassign_item(session, ref=ref, owner_id=doc.owner, actor=actor, now=now)
        if doc.due is not None and doc.due != item.due:
            await redate_item(session, ref=ref, due=doc.due, actor=actor, now=now)
        if doc.note and doc.note != item.last_note:
            await add_note(session, ref=ref, text=doc.note, actor=actor, now=now)
        after = self._item_state(item)
        lines = [
            f"update {ref} {name}: {_shown(before[name])} -> {_shown(after[name])}"
            for name in before
            if before[name] != after[name]
        ]
        if lines:
            self.report.changes.extend(lines)
            self.report.count("item", "updated")

    async def _import_scores(self) -> None:
        wanted: list[tuple[str, str, ItemDoc, int]] = []
        for index, plan_doc in enumerate(self.doc.plans):
            plan = self.plans[plan_doc.key]
            for _path, _strategy, doc in self.doc.plan_items(index):
                if doc.scores or doc.evidence or doc.title_es or doc.public_update or doc.public_update_es:
                    wanted.append((plan_doc.department, doc.key, doc, plan.id or 0))
        if not wanted:
            return
        department_ids = {self.departments[d].id for d, _, _, _ in wanted}
        items = {
            (i.department_id, i.import_key or i.ref): i
            for i in await self._all(
                select(ActionItem).where(col(ActionItem.department_id).in_(department_ids))
            )
        }
        found = {
            (s.item_id, s.criterion_key): s
            for s in await self._all(select(ItemScore).where(ItemScore.team_id == self.team_id))
        }
        for department, key, doc, plan_id in wanted:
            item = items.get((self.departments[department].id, key)) or items.get(
                (self.departments[department].id, key.upper())
            )
            if item is None:
                continue
            if doc.evidence and doc.evidence != item.evidence_url:
                audit(
                    self.session,
                    item=item,
                    actor=self.actor,
                    now=self.now,
                    action="update",
                    field="evidence_url",
                    old=item.evidence_url,
                    new=doc.evidence,
                )
                self.report.changes.append(
                    f"update {item.ref} evidence: {_shown(item.evidence_url)} -> {doc.evidence}"
                )
                item.evidence_url = doc.evidence
            await self._publish_fields(item, doc)
            for criterion_key, written in doc.scores.items():
                criterion = self.criteria[(plan_id, criterion_key)]
                level = criterion.level(written)
                row = found.get((item.id or 0, criterion_key))
                if row is not None and row.level == level:
                    continue
                old = f"{row.level} (weight {row.weight:g})" if row is not None else None
                if row is None:
                    row = ItemScore(
                        team_id=self.team_id,
                        item_id=item.id or 0,
                        criterion_key=criterion_key,
                        level=level,
                        weight=criterion.weight,
                        scored_by=self.actor.user_id,
                        scored_at=self.now,
                    )
                    self.session.add(row)
                else:
                    row.level, row.weight, row.scored_by, row.scored_at = (
                        level,
                        criterion.weight,
                        self.actor.user_id,
                        self.now,
                    )
                new = f"{level} {criterion.levels[level]} (weight {criterion.weight:g})"
                audit(
                    self.session,
                    item=item,
                    actor=self.actor,
                    now=self.now,
                    action="score",
                    field=criterion_key,
                    old=old,
                    new=new,
                )
                self.report.changes.append(f"score {item.ref} {criterion_key}: {_shown(old)} -> {new}")
                self.report.count("score", "updated" if old else "created")

    async def _publish_fields(self, item: ActionItem, doc: ItemDoc) -> None:
        """The item's Spanish title and public updates, through the audited coordinator writes."""
        session, actor, now = self.session, self.actor, self.now
        if doc.title_es and doc.title_es != item.title_es:
            self.report.changes.append(
                f"update {item.ref} title_es: {_shown(item.title_es)} -> {_shown(doc.title_es)}"
            )
            await set_spanish_title(session, actor=actor, ref=item.ref, title=doc.title_es, now=now)
        for lang, text in (("en", doc.public_update), ("es", doc.public_update_es)):
            field = "public_update" if lang == "en" else "public_update_es"
            if text and text != getattr(item, field):
                self.report.changes.append(
                    f"update {item.ref} {field}: {_shown(getattr(item, field))} -> {_shown(text)}"
                )
                await set_public_update(session, actor=actor, ref=item.ref, text=text, now=now, lang=lang)

    async def _import_measures(self) -> None:
        measures = {m.key: m for m in await self._all(self._team(Measure))}
        new: list[tuple[Any, str]] = []
        for plan_doc in self.doc.plans:
            plan = self.plans[plan_doc.key]
            for sdoc in plan_doc.strategies:
                strategy = self.strategies[(plan.id or 0, sdoc.key)]
                for doc in sdoc.measures:
                    row = measures.get(doc.key)
                    breakdown = doc.breakdown
                    fields = {
                        "name": doc.name,
                        "unit": doc.unit,
                        "kind": doc.kind,
                        "baseline": doc.baseline,
                        "baseline_quarter": doc.baseline_quarter,
                        "target": doc.target,
                        "target_date": doc.due_date(self.doc.start_month),
                        "direction": doc.direction,
                        "owner_id": doc.owner,
                        "source": doc.source,
                        "breakdown_dimension": breakdown.dimension if breakdown else None,
                        "breakdown_kind": breakdown.kind if breakdown else None,
                        "reference_group": breakdown.reference_group if breakdown else None,
                    }
                    if row is None:
                        row = Measure.model_validate(
                            {
                                **fields,
                                "key": doc.key,
                                "team_id": self.team_id,
                                "strategy_id": strategy.id or 0,
                                "unit": doc.unit or "",
                            }
                        )
                        measures[doc.key] = row
                        new.append((row, f"{doc.key} '{doc.name}'"))
                        continue
                    wanted = {**fields, "strategy_id": strategy.id}
                    self._sync(
                        row,
                        kind="measure",
                        label=doc.key,
                        wanted=wanted,
                        names={"owner_id": "owner", "strategy_id": "strategy"},
                        show={"strategy_id": lambda i: self.strategy_keys.get(i, str(i))},
                    )
        measures.update(await self._created("measure", Measure, new, key=lambda m: m.key))

        readings = {(r.measure_id, r.quarter): r for r in await self._all(self._team(MeasureReading))}
        new = []
        for plan_doc in self.doc.plans:
            for sdoc in plan_doc.strategies:
                for doc in sdoc.measures:
                    measure = measures[doc.key]
                    for quarter, reading in doc.readings.items():
                        label = f"{doc.key} {quarter}"
                        row = readings.get((measure.id or 0, quarter))
                        groups = {k: {"value": g.value, "n": g.n} for k, g in reading.groups.items()} or None
                        # A representation breakdown may leave the total to its groups (checked at parse).
                        value = (
                            reading.value
                            if reading.value is not None
                            else sum(g.value for g in reading.groups.values())
                        )
                        if row is None:
                            row = MeasureReading(
                                team_id=self.team_id,
                                measure_id=measure.id or 0,
                                quarter=quarter,
                                value=value,
                                note=reading.note,
                                groups=groups,
                                recorded_by=self.actor.user_id,
                                recorded_at=self.now,
                            )
                            new.append((row, f"{label} = {_number_text(value)}"))
                            continue
                        self._sync(
                            row,
                            kind="reading",
                            label=label,
                            wanted={"value": value, "note": reading.note, "groups": groups},
                        )
        await self._created("reading", MeasureReading, new, key=lambda r: (r.measure_id, r.quarter))

    async def _import_meetings(self) -> None:
        cycles = {c.quarter: c for c in await self._all(self._team(CheckInCycle))}
        new: list[tuple[Any, str]] = []
        for quarter, day in self.doc.meetings.items():
            row = cycles.get(quarter)
            if row is None:
                row = CheckInCycle(team_id=self.team_id, quarter=quarter, meeting_date=day)
                new.append((row, f"{quarter} on {day.isoformat()}"))
                continue
            self._sync(
                row,
                kind="meeting",
                label=quarter,
                wanted={"meeting_date": day},
                names={"meeting_date": "date"},
            )
        await self._created("meeting", CheckInCycle, new, key=lambda c: c.quarter)


async def import_plan(
    session: AsyncSession,
    *,
    document: PlanDocument,
    team_id: str,
    now: datetime,
    progress: ProgressHook | None = None,
) -> ImportReport:
    """Upsert a parsed plan into `team_id` in the caller's transaction (commit it, or roll back a dry run).

    `progress`, if given, is told how far it has got as it goes: (what, units done, units in all).
    """
    # Only what differs is written, each change with its AuditEvent, so a second import of the
    # same file writes nothing. Fields the file leaves out keep their stored values, so status
    # updates owners made in Slack survive; items missing from the file are reported, never
    # deleted. The caller picks team_id: the file's `workspace`, else the installation's.
    return await _Importer(session, document, team_id, now, progress).run()


# --- Export -----------------------------------------------------------------------------------


def _policy(doc: PolicyDoc | None) -> dict[str, Any] | None:
    # Stored in one canonical form, so the order a file lists approvals in is not a change.
    return ChangePolicy.from_mapping(doc.model_dump()).as_mapping() if doc is not None else None


def _ref_order(entry: tuple[ItemDoc, Strategy]) -> tuple[int, int]:
    ref = entry[0].ref or ""
    number = ref.rpartition("-")[2]
    return (0, int(number)) if number.isdigit() and len(number) <= 9 else (1, 0)


def _noon(day: date) -> datetime:
    # Midday UTC is the same calendar day in every US zone, so the date survives any reader's zone.
    return datetime.combine(day, time(12), tzinfo=UTC)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


async def _rows(session: AsyncSession, model: type[SQLModel], team_id: str, *order: Any) -> list[Any]:
    query = select(model).where(model.team_id == team_id)  # type: ignore[attr-defined]
    return list(await session.exec(query.order_by(*order)))


async def _plan_dict(session: AsyncSession, team_id: str, start_month: int) -> dict[str, Any]:
    departments = await _rows(session, Department, team_id, col(Department.id))
    department_keys = {d.id: d.key for d in departments}
    people = await _rows(session, Person, team_id, col(Person.id))
    plans = await _rows(session, Plan, team_id, col(Plan.id))
    strategies = await _rows(session, Strategy, team_id, col(Strategy.position), col(Strategy.id))
    items = await _rows(session, ActionItem, team_id, col(ActionItem.number))
    measures = await _rows(session, Measure, team_id, col(Measure.id))
    readings = await _rows(session, MeasureReading, team_id, col(MeasureReading.quarter))
    cycles = await _rows(session, CheckInCycle, team_id, col(CheckInCycle.quarter))
    dimensions = await _rows(session, Dimension, team_id, col(Dimension.id))
    criteria = await _rows(session, ScoringCriterion, team_id, col(ScoringCriterion.position))
    scores = await _rows(session, ItemScore, team_id, col(ItemScore.id))
    levels_of = {(c.plan_id, c.key): list(c.levels) for c in criteria}
    plan_of_strategy = {s.id: s.plan_id for s in strategies}
    plan_of_item = {i.id: plan_of_strategy.get(i.strategy_id) for i in items}
    scores_of: dict[int, dict[str, int | str]] = {}
    for score in scores:
        labels = levels_of.get((plan_of_item.get(score.item_id) or 0, score.criterion_key), [])
        # The label reads better than the number; a label used twice would be ambiguous, so not then.
        fits = score.level < len(labels) and labels.count(labels[score.level]) == 1
        scores_of.setdefault(score.item_id, {})[score.criterion_key] = (
            labels[score.level] if fits else score.level
        )

    items_of: dict[int, list[ActionItem]] = {}
    for item in items:
        items_of.setdefault(item.strategy_id, []).append(item)
    measures_of: dict[int, list[Measure]] = {}
    for measure in measures:
        measures_of.setdefault(measure.strategy_id, []).append(measure)
    readings_of: dict[int, list[MeasureReading]] = {}
    for reading in readings:
        readings_of.setdefault(reading.measure_id, []).append(reading)

    def item_dict(item: ActionItem) -> dict[str, Any]:
        return _drop_none(
            {
                "key": item.import_key or item.ref,
                "ref": item.ref,
                "title": item.title,
                "owner": item.owner_id,
                "due": item.due,
                "status": item.status,
                "progress": item.progress,
                "note": item.last_note,
                "description": item.description or None,
                "created": item.created_at.date() if item.created_at else None,
                "evidence": item.evidence_url,
                "scores": scores_of.get(item.id or 0) or None,
                "title_es": item.title_es,
                "public_update": item.public_update,
                "public_update_es": item.public_update_es,
            }
        )

    def reading_dict(reading: MeasureReading, measure: Measure) -> dict[str, Any]:
        groups = {
            key: _drop_none({"value": _number(given["value"]), "n": given.get("n")})
            for key, given in (reading.groups or {}).items()
        }
        value: int | float | None = _number(reading.value)
        counted = sum(g["value"] for g in (reading.groups or {}).values())
        if measure.breakdown_kind == BreakdownKind.REPRESENTATION and groups and counted == reading.value:
            value = None  # the total of its groups, as the file wrote it
        if groups and all(set(g) == {"value"} for g in groups.values()):
            short: dict[str, Any] = {key: g["value"] for key, g in groups.items()}
            return _drop_none({"value": value, "note": reading.note, "groups": short})
        return _drop_none({"value": value, "note": reading.note, "groups": groups or None})

    def target_when(measure: Measure) -> dict[str, Any]:
        quarter = FiscalQuarter.containing(measure.target_date, start_month)
        if quarter.end == measure.target_date:
            return {"target_quarter": quarter.label}
        return {"target_date": measure.target_date}

    def measure_dict(measure: Measure) -> dict[str, Any]:
        breakdown = None
        if measure.breakdown_dimension:
            breakdown = _drop_none(
                {
                    "dimension": measure.breakdown_dimension,
                    "kind": measure.breakdown_kind,
                    "reference_group": measure.reference_group,
                }
            )
        return _drop_none(
            {
                "key": measure.key,
                "name": measure.name,
                "unit": measure.unit or None,
                "kind": measure.kind if measure.kind != MeasureKind.LEVEL else None,
                "baseline": _number(measure.baseline),
                "baseline_quarter": measure.baseline_quarter,
                "target": _number(measure.target),
                **target_when(measure),
                "direction": measure.direction,
                "owner": measure.owner_id,
                "source": measure.source,
                "breakdown": breakdown,
                "readings": {
                    r.quarter: reading_dict(r, measure) for r in readings_of.get(measure.id or 0, [])
                },
            }
        )

    def dimension_dict(dimension: Dimension) -> dict[str, Any]:
        return _drop_none(
            {
                "key": dimension.key,
                "name": dimension.name,
                "source": dimension.source,
                "groups": dimension.groups,
            }
        )

    def criterion_dict(criterion: ScoringCriterion) -> dict[str, Any]:
        weight = _number(criterion.weight)
        return {
            "key": criterion.key,
            "question": criterion.question,
            "weight": weight,
            "levels": criterion.levels,
        }

    def plan_dict(plan: Plan) -> dict[str, Any]:
        stored = plan.cadence or {}
        cadence = {k: stored[k] for k in CADENCE_KEYS if k in stored}
        return _drop_none(
            {
                "key": plan.key,
                "department": department_keys.get(plan.department_id),
                "title": plan.title,
                "start": plan.start_date,
                "end": plan.end_date,
                "cadence": cadence or None,
                "policy": ChangePolicy.from_mapping(plan.policy).as_mapping() if plan.policy else None,
                "public": _public_export(plan.public),
                "min_group_count": plan.min_group_count
                if plan.min_group_count != DEFAULT_MIN_COUNT
                else None,
                "dimensions": [dimension_dict(d) for d in dimensions if d.plan_id == plan.id] or None,
                "scoring": [criterion_dict(c) for c in criteria if c.plan_id == plan.id] or None,
                "strategies": [
                    _drop_none(
                        {
                            "key": s.key,
                            "name": s.name,
                            "description": s.description or None,
                            "items": [item_dict(i) for i in items_of.get(s.id, [])],
                            "measures": [measure_dict(m) for m in measures_of.get(s.id, [])],
                        }
                    )
                    for s in strategies
                    if s.plan_id == plan.id
                ],
            }
        )

    return {
        "version": FORMAT_VERSION,
        "people": [
            _drop_none(
                {
                    "user_id": p.user_id,
                    "name": p.name,
                    "title": p.title,
                    "tz": p.tz,
                    "department": department_keys.get(p.department_id),
                    "role": p.role,
                }
            )
            for p in people
        ],
        "departments": [
            _drop_none({"key": d.key, "name": d.name, "report_channel": d.report_channel})
            for d in departments
        ],
        "plans": [plan_dict(p) for p in plans],
        "meetings": {c.quarter: c.meeting_date for c in cycles},
    }


def _public_export(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if not stored:
        return None
    data = {k: v for k, v in stored.items() if k in ("licence", "show", "as_of", "es")}
    if isinstance(data.get("licence"), str):
        data["licence"] = data["licence"].lower()
    return data


def _json_default(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _cell(value: str | None) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula; notes come from Slack users.
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value or ""


async def _csv(session: AsyncSession, team_id: str) -> str:
    departments = {d.id: d.key for d in await _rows(session, Department, team_id, col(Department.id))}
    strategies = {s.id: s.name for s in await _rows(session, Strategy, team_id, col(Strategy.id))}
    names = {p.user_id: p.name for p in await _rows(session, Person, team_id, col(Person.id))}
    items = await _rows(session, ActionItem, team_id, col(ActionItem.number))
    items.sort(key=lambda i: (departments.get(i.department_id, ""), i.number))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow(
            [
                item.ref,
                departments.get(item.department_id, ""),
                _cell(strategies.get(item.strategy_id)),
                _cell(item.title),
                item.owner_id or "",
                _cell(names.get(item.owner_id or "")),
                item.due.isoformat() if item.due else "",
                item.status,
                item.progress,
                _cell(item.last_note),
                item.updated_at.isoformat(),
            ]
        )
    return out.getvalue()


async def export_plan(
    session: AsyncSession, *, team_id: str, fmt: Literal["yaml", "json", "csv"], start_month: int = 7
) -> str:
    """The team's plan as YAML or JSON (the shape import reads) or CSV (one row per item).

    `start_month` is the organisation's fiscal year start, which names the target quarters.
    """
    if fmt == "csv":
        return await _csv(session, team_id)
    document = await _plan_dict(session, team_id, start_month)
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    header = f"# REAP Tracker plan (format version {FORMAT_VERSION}); load it with `reap import`.\n"
    return header + yaml.dump(document, Dumper=_PlanDumper, sort_keys=False, allow_unicode=True, width=100)
