"""What the public dashboard may show: the public record's value types and the rules that fill them.

Public by choice, never by accident: a public value type has a field only for what is declared
public (titles, statuses, dates, measures, verified evidence links, the public update a
coordinator wrote), and the few things a plan may opt in to (owners' names, notes, the quarter's
history, change requests) are copied in only when `Disclosure` says so. Slack ids are never
copied, whatever the plan says. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from domain.rollup import Changes, MeasureLine, RequestLine, evidence_link
from domain.status import ItemStatus

DEFAULT_LICENCE = "CC-BY-4.0"
# Licences the data package can name with a title and a link; a plan may declare one of these.
LICENCES: dict[str, tuple[str, str]] = {
    "CC-BY-4.0": ("Creative Commons Attribution 4.0", "https://creativecommons.org/licenses/by/4.0/"),
    "CC0-1.0": ("CC0 1.0 Public Domain Dedication", "https://creativecommons.org/publicdomain/zero/1.0/"),
    "ODC-By-1.0": (
        "Open Data Commons Attribution License 1.0",
        "https://opendatacommons.org/licenses/by/1-0/",
    ),
    "PDDL-1.0": (
        "Open Data Commons Public Domain Dedication and License 1.0",
        "https://opendatacommons.org/licenses/pddl/1-0/",
    ),
}
# What a plan may opt in to publishing, field by field (nothing is published by default).
OPT_INS = ("owners", "notes", "history", "requests")
LANGUAGES = ("en", "es")


@dataclass(frozen=True)
class Disclosure:
    """Which otherwise private fields a plan opts in to publishing."""

    owners: bool = False  # owners' display names (never their Slack ids)
    notes: bool = False  # items' latest notes and readings' notes
    history: bool = False  # what changed in the quarter (status changes, completions, new dates)
    requests: bool = False  # change requests waiting for a coordinator

    @classmethod
    def of(cls, names: object) -> Disclosure:
        """The disclosure a plan's `show` list asks for; anything not named stays private."""
        wanted = {str(n) for n in names} if isinstance(names, list | tuple) else set()
        return cls(**{name: name in wanted for name in OPT_INS})

    def names(self) -> list[str]:
        """The opted-in fields, in OPT_INS order."""
        return [name for name in OPT_INS if getattr(self, name)]


@dataclass(frozen=True)
class PublicSettings:
    """A plan's choices for the dashboard: the data licence, opt-ins, the daily "as of", Spanish names."""

    licence: str = DEFAULT_LICENCE
    show: Disclosure = field(default_factory=Disclosure)
    as_of: bool = False  # also publish the current quarter as of today, updated by the tick
    spanish: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, stored: Mapping[str, Any] | None) -> PublicSettings:
        """The settings stored on a plan (None: every default)."""
        if not stored:
            return cls()
        licence = stored.get("licence")
        spanish = stored.get("es")
        return cls(
            licence=licence if isinstance(licence, str) and licence in LICENCES else DEFAULT_LICENCE,
            show=Disclosure.of(stored.get("show") or []),
            as_of=stored.get("as_of") is True,
            spanish=spanish if isinstance(spanish, dict) else {},
        )

    def es(self, kind: str, key: str | None = None) -> str | None:
        """The plan's Spanish for a name: kind `department` or `title`, or `strategies`/`measures` by key."""
        value = self.spanish.get(kind)
        if key is not None:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class Text:
    """A piece of plan content in English with its Spanish, if the plan gives one."""

    en: str
    es: str | None = None

    def get(self, lang: str) -> str:
        """The text in `lang`, falling back to English."""
        return self.es if lang == "es" and self.es else self.en

    def lang(self, lang: str) -> str:
        """The language the text is actually shown in (for a `lang` attribute on a fallback)."""
        return "es" if lang == "es" and self.es else "en"


@dataclass(frozen=True)
class PublicItem:
    """An action item as the public sees it."""

    ref: str
    title: Text
    status: str
    progress: int
    due: date | None
    days_overdue: int = 0
    evidence_url: str | None = None  # only once a coordinator (or the plan's policy) verified it
    update: Text | None = None  # the public update a coordinator wrote or approved
    owner: str | None = None  # a display name, only when the plan opts in to owners
    note: str | None = None  # only when the plan opts in to notes

    @property
    def shown_status(self) -> str:
        """The status a reader sees: overdue when the calendar says so, whatever was typed."""
        return "overdue" if self.days_overdue > 0 else self.status


@dataclass(frozen=True)
class PublicRequest:
    """A change request waiting for a coordinator, when the plan opts in to publishing them."""

    ref: str
    kind: str
    requested_on: date
    old_due: date | None = None
    new_due: date | None = None
    reason: str | None = None  # only with the notes opt-in as well


@dataclass(frozen=True)
class PublicStrategy:
    """A strategy with its items and measures."""

    key: str
    name: Text
    description: str
    counts: dict[str, int]
    percent_complete: float
    items: list[PublicItem]
    measures: list[MeasureLine]

    @property
    def total(self) -> int:
        """How many items the strategy has."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class PublicDepartment:
    """A department's plan at the quarter, as the public sees it."""

    key: str
    name: Text
    plan_title: Text
    strategies: list[PublicStrategy]
    counts: dict[str, int]
    percent_complete: float
    on_time_rate: float | None
    verified: int
    overdue: int
    show: Disclosure = field(default_factory=Disclosure)
    history: Changes | None = None
    requests: list[PublicRequest] = field(default_factory=list)
    licence: str = DEFAULT_LICENCE

    @property
    def total(self) -> int:
        """How many items the department has."""
        return sum(self.counts.values())

    @property
    def measures(self) -> list[MeasureLine]:
        """Every measure of the department, in strategy order."""
        return [m for s in self.strategies for m in s.measures]

    @property
    def items(self) -> list[PublicItem]:
        """Every item of the department, in strategy order."""
        return [i for s in self.strategies for i in s.items]


@dataclass(frozen=True)
class PublicAmendment:
    """A correction to a closed quarter: what, from what to what, why and when (never who)."""

    subject: str
    old: str | None
    new: str
    reason: str
    amended_on: date


@dataclass(frozen=True)
class GroupInfo:
    """A group of a dimension and its share of the population, for the methodology page."""

    key: str
    name: str
    population_share: float | None


@dataclass(frozen=True)
class DimensionInfo:
    """A dimension measures are broken down by, and where its population shares come from."""

    key: str
    name: str
    source: str | None
    groups: tuple[GroupInfo, ...]


@dataclass(frozen=True)
class ReadingRow:
    """One published reading: a measure's value in a quarter, overall (group '') or for one group."""

    department: str
    measure: str
    quarter: str
    group: str
    group_name: str
    value: float | None
    gap: float | None = None
    ratio: float | None = None
    index: float | None = None
    share: float | None = None
    suppressed: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Edition:
    """One quarter of the public record: frozen (closed) or provisional, as of a date."""

    quarter: str
    as_of: date
    provisional: bool
    frozen_on: date | None
    departments: list[PublicDepartment]
    amendments: list[PublicAmendment]
    dimensions: list[DimensionInfo]
    readings: list[ReadingRow]
    min_group_count: int
    licence: str = DEFAULT_LICENCE
    measure_es: dict[str, str] = field(default_factory=dict)  # Spanish measure names by key

    def measure_name(self, line: MeasureLine) -> Text:
        """A measure's name with its Spanish, if the plan gives one."""
        return Text(line.name, self.measure_es.get(line.key))

    def department(self, key: str) -> PublicDepartment | None:
        """The published department with this key."""
        return next((d for d in self.departments if d.key == key), None)

    def readings_of(self, measure: str) -> list[ReadingRow]:
        """A measure's published readings, overall and by group."""
        return [r for r in self.readings if r.measure == measure]

    @property
    def total(self) -> int:
        """How many items the edition covers."""
        return sum(d.total for d in self.departments)

    def counts(self) -> dict[str, int]:
        """Items by status across departments."""
        out: dict[str, int] = {}
        for department in self.departments:
            for status, n in department.counts.items():
                out[status] = out.get(status, 0) + n
        return out

    @property
    def percent_complete(self) -> float:
        """Average completion across items (0..100)."""
        total = self.total
        return sum(d.percent_complete * d.total for d in self.departments) / total if total else 0.0

    def measure_lines(self) -> list[tuple[PublicDepartment, MeasureLine]]:
        """Every measure with its department."""
        return [(d, m) for d in self.departments for m in d.measures]


def public_measure(line: MeasureLine) -> MeasureLine:
    """A measure line without who owns it (a Slack id): everything else about a measure is public."""
    return replace(line, owner_id=None)


def days_overdue(status: str, due: date | None, as_of: date) -> int:
    """Days an open item is past its due date at `as_of` (0 when done, dropped or not due)."""
    if due is None or status in (ItemStatus.DONE.value, ItemStatus.DROPPED.value):
        return 0
    return max(0, (as_of - due).days)


def public_item(
    frozen: Mapping[str, Any], *, as_of: date, show: Disclosure, names: Mapping[str, str]
) -> PublicItem:
    """An item of the frozen record (storage.snapshots' item shape) cut down to what may be published."""
    status = str(frozen.get("status") or ItemStatus.NOT_STARTED.value)
    due = date.fromisoformat(frozen["due"]) if frozen.get("due") else None
    verified = frozen.get("verified") is True
    update_en = frozen.get("public_update")
    update = Text(update_en, frozen.get("public_update_es") or None) if update_en else None
    owner = None
    if show.owners and frozen.get("owner"):
        # A name only: when the bot never learned it, nothing is shown rather than the Slack id.
        owner = names.get(str(frozen["owner"])) or None
    return PublicItem(
        ref=str(frozen["ref"]),
        title=Text(str(frozen["title"]), frozen.get("title_es") or None),
        status=status,
        progress=int(frozen.get("progress") or 0),
        due=due,
        days_overdue=days_overdue(status, due, as_of),
        evidence_url=evidence_link(frozen.get("evidence")) if verified and status == "done" else None,
        update=update,
        owner=owner,
        note=(frozen.get("note") or None) if show.notes else None,
    )


def public_requests(requests: list[RequestLine], show: Disclosure) -> list[PublicRequest]:
    """Pending change requests, when the plan opts in; who asked is never shown, why only with notes."""
    if not show.requests:
        return []
    return [
        PublicRequest(
            ref=r.ref,
            kind=r.kind,
            requested_on=r.requested_on,
            old_due=r.old_due,
            new_due=r.new_due,
            reason=(r.reason or None) if show.notes else None,
        )
        for r in requests
    ]
