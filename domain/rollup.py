"""The quarterly rollup as frozen value types: what each department's plan looks like at a quarter.

`storage.queries.rollup.build_rollup` fills these in; `messages.rollup` and `reports.rollup`
present them. Nothing here reads a clock or a database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from domain.commitments import ChangeKind, EvidenceRequired, check_evidence
from domain.equity import Breakdown, narrowed
from domain.numbers import one_line, plural, sparkline, with_unit
from domain.status import ITEM_STATUSES, ItemStatus, MeasureStatus

STALE_DAYS = 60
# "No update for a quarter": thirteen weeks, the length of a fiscal quarter near enough.
QUIET_DAYS = 91
STATUSES = ITEM_STATUSES
# The rollup chart draws a trend panel for this many measures at most (the HTML report has all).
TREND_PANELS = 16


def evidence_link(url: str | None) -> str | None:
    """The evidence link if it is one people can safely open (http/https), else None.

    Writes check links already; this guards every report against a row written some other way.
    """
    if not url:
        return None
    try:
        return check_evidence(url)
    except EvidenceRequired:
        return None


@dataclass(frozen=True)
class ItemLine:
    """One item as a rollup list shows it."""

    ref: str
    title: str
    owner_id: str | None
    owner_name: str
    status: str
    progress: int
    due: date | None
    days_overdue: int
    last_note: str | None
    strategy: str = ""
    updated_on: date | None = None
    owner_state: str = "active"  # active | deactivated | unknown | none
    completed_on: date | None = None
    evidence_url: str | None = None  # only a link evidence_link() accepts
    verified_on: date | None = None
    verified_by: str | None = None

    @property
    def overdue(self) -> bool:
        """Whether the item is open and past its due date (the calendar wins over the typed status)."""
        return self.days_overdue > 0

    @property
    def verified(self) -> bool:
        """Whether the item is done and a coordinator (or the plan's policy) confirmed it."""
        return self.status == ItemStatus.DONE and self.verified_on is not None

    @property
    def awaiting_verification(self) -> bool:
        """Whether the item is done but nobody has verified it yet."""
        return self.status == ItemStatus.DONE and self.verified_on is None


@dataclass(frozen=True)
class SeriesPoint:
    """One quarter of a measure's series: the reading (None: none given) and the expected value."""

    quarter: str
    value: float | None
    expected: float | None


@dataclass(frozen=True)
class MeasureBreakdown:
    """A broken-down measure at the quarter, last quarter and its baseline quarter."""

    dimension: str
    dimension_name: str
    kind: str  # rate | representation
    group_names: dict[str, str]
    current: Breakdown
    last: Breakdown | None = None
    baseline: Breakdown | None = None

    def name(self, key: str) -> str:
        """A group's display name."""
        return self.group_names.get(key, key)

    @property
    def narrowed_since_last(self) -> bool | None:
        """Whether the largest gap is narrower than that group's gap last quarter."""
        return narrowed(self.current, self.last)

    @property
    def narrowed_since_baseline(self) -> bool | None:
        """Whether the largest gap is narrower than that group's gap at the baseline."""
        return narrowed(self.current, self.baseline)


@dataclass(frozen=True)
class MeasureLine:
    """A performance measure at the quarter: baseline, latest reading, target, status and change."""

    key: str
    name: str
    unit: str
    baseline: float | None  # None only on a "needs attention" line whose stored number is unreadable
    latest: float | None
    target: float | None
    status: MeasureStatus
    change: float | None
    latest_quarter: str | None = None
    direction: str = "increase"
    target_date: date | None = None
    owner_id: str | None = None
    progress: float | None = None  # share of baseline->target reached by the latest reading
    expected: float | None = None  # share expected by the end of the quarter
    kind: str = "level"
    baseline_quarter: str | None = None
    target_quarter: str | None = None
    source: str | None = None
    series: tuple[SeriesPoint, ...] = ()
    breakdown: MeasureBreakdown | None = None
    problem: str | None = None  # why the status is "needs attention"

    @property
    def readings(self) -> list[SeriesPoint]:
        """The quarters of the series that have a reading."""
        return [p for p in self.series if p.value is not None]

    @property
    def sparkline(self) -> str:
        """The series as a text sparkline ('' with fewer than two readings)."""
        return sparkline([p.value for p in self.series]) if len(self.readings) >= 2 else ""

    @property
    def trend_words(self) -> str:
        """The trend in plain words for alt text: first and last readings, expected value now, target."""
        points = self.readings
        if not points:
            return "no readings yet"

        def value(number: float | None) -> str:
            return with_unit(number, one_line(self.unit))

        first, last = points[0], points[-1]
        text = f"{value(first.value)} in {first.quarter}"
        if last is not first:
            text = f"from {text} to {value(last.value)} in {last.quarter}"
        expected = self.series[-1].expected if self.series else None
        if expected is not None:
            text += f", {value(expected)} expected by {self.series[-1].quarter}"
        if self.target is not None:
            due = f" by {self.target_quarter}" if self.target_quarter else ""
            text += f", target {value(self.target)}{due}"
        return text


@dataclass(frozen=True)
class StrategyRollup:
    """A strategy's items by status, completion, overdue and blocked items, and measures."""

    key: str
    name: str
    counts: dict[str, int]
    percent_complete: float
    on_time_rate: float | None
    overdue: list[ItemLine]
    blocked: list[ItemLine]
    measures: list[MeasureLine]

    @property
    def total(self) -> int:
        """How many items the strategy has, dropped included."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class Changes:
    """What happened inside the quarter, from the audit trail; transitions are net per item."""

    status_transitions: list[tuple[str, str, str]]
    completed: list[str]
    newly_overdue: list[str]
    new_items: list[str]
    redated: list[tuple[str, date | None, date | None]]
    titles: dict[str, str] = field(default_factory=dict)  # ref -> title, for every ref above
    # ref -> why: the note given with its last status change or re-date (the approved reason,
    # when a coordinator approved it), else the owner's latest note.
    notes: dict[str, str] = field(default_factory=dict)
    # Open items at risk or off track, overdue or not: the meeting should see them either way.
    attention: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not (
            self.status_transitions
            or self.completed
            or self.newly_overdue
            or self.new_items
            or self.redated
            or self.attention
        )

    def about(self, ref: str) -> str:
        """'OIT-7 Title' for a ref."""
        title = self.titles.get(ref)
        return f"{ref} {title}" if title else ref


@dataclass(frozen=True)
class StaleStatus:
    """An item typed "on track" that the calendar contradicts: it is overdue, or silent for a quarter."""

    item: ItemLine
    silent_since: date | None  # the last update, when there has been none for a quarter

    @property
    def reason(self) -> str:
        """Why its status may be stale, in words."""
        reasons = []
        if self.item.overdue:
            reasons.append(f"{plural(self.item.days_overdue, 'day')} overdue")
        if self.silent_since is not None:
            reasons.append(f"no update since {self.silent_since.isoformat()}")
        return " and ".join(reasons)


@dataclass(frozen=True)
class RequestLine:
    """A change request waiting for a coordinator: what, who asked, why and since when."""

    id: int
    ref: str
    title: str
    kind: str  # drop | redate | reassign
    reason: str
    requested_by: str
    requested_on: date
    days_waiting: int
    old_due: date | None = None
    new_due: date | None = None
    old_owner: str | None = None
    new_owner: str | None = None

    def what(self, person: Callable[[str | None], str]) -> str:
        """The change asked for, in words; `person` names a user id as the presentation needs."""
        if self.kind == ChangeKind.REDATE:
            old = self.old_due.isoformat() if self.old_due else "no date"
            new = self.new_due.isoformat() if self.new_due else "no date"
            return f"move the due date from {old} to {new}"
        if self.kind == ChangeKind.REASSIGN:
            return f"reassign from {person(self.old_owner)} to {person(self.new_owner)}"
        if self.kind == ChangeKind.DROP:
            return "drop the item"
        return f"change it ({self.kind})"


@dataclass(frozen=True)
class RankedLine:
    """A candidate on the equity scoring matrix: its rank, weighted score and the most it could score."""

    rank: int
    ref: str
    title: str
    score: float
    top: float
    due: date | None
    status: str
    days_overdue: int = 0  # open and past its due date at the rollup's date


@dataclass(frozen=True)
class DepartmentRollup:
    """One department's part of the rollup."""

    key: str
    name: str
    report_channel: str | None
    coordinators: list[str]
    strategies: list[StrategyRollup]
    changes: Changes
    response_rate: float | None
    non_responders: list[str]
    stale: list[ItemLine]
    orphaned: list[ItemLine]
    counts: dict[str, int] = field(default_factory=dict)
    percent_complete: float = 0.0
    on_time_rate: float | None = None
    checkin_asked: int = 0
    checkin_responded: int = 0
    ranked: list[RankedLine] = field(default_factory=list)
    verified: int = 0  # done items whose completion is confirmed, plan to date
    awaiting_verification: int = 0  # done items nobody has confirmed yet, plan to date
    # Items completed inside the quarter, and any from earlier still awaiting verification.
    completed: list[ItemLine] = field(default_factory=list)
    requests: list[RequestLine] = field(default_factory=list)  # pending, oldest first
    stale_status: list[StaleStatus] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many items the department has."""
        return sum(self.counts.values())

    @property
    def overdue_count(self) -> int:
        """How many of its items are overdue."""
        return sum(len(s.overdue) for s in self.strategies)


@dataclass(frozen=True)
class AmendmentLine:
    """A correction to a closed quarter, shown beside its frozen value."""

    subject: str  # e.g. "measure staff-equity-trained"
    old: str | None
    new: str
    reason: str
    amended_by: str
    amended_on: date


@dataclass(frozen=True)
class Rollup:
    """The whole rollup for a quarter, as of a day inside (or at the end of) it."""

    quarter: str
    as_of: date
    departments: list[DepartmentRollup]
    counts: dict[str, int]
    percent_complete: float
    on_time_rate: float | None
    response_rate: float | None
    previous_quarter: str = ""
    stale_days: int = STALE_DAYS
    names: dict[str, str] = field(default_factory=dict)
    # Which record this is: "frozen on … by …", "reconstructed from the history as of …", or live.
    basis: str = ""
    amendments: list[AmendmentLine] = field(default_factory=list)
    checkin_scheduled: bool = False  # the quarter has a check-in cycle
    checkin_opens_on: date | None = None  # set while that cycle has not opened yet

    def amended(self, subject: str) -> bool:
        """Whether a correction was recorded for this subject (e.g. "measure staff-trained")."""
        return any(a.subject == subject for a in self.amendments)

    @property
    def total(self) -> int:
        """How many items the rollup covers."""
        return sum(self.counts.values())

    @property
    def overdue_count(self) -> int:
        """How many items are overdue across departments."""
        return sum(d.overdue_count for d in self.departments)

    def measure_lines(self) -> list[tuple[str, MeasureLine]]:
        """Every measure with its department's key, in report order."""
        return [(d.key, m) for d in self.departments for s in d.strategies for m in s.measures]

    @property
    def verified(self) -> int:
        """Verified completions across departments."""
        return sum(d.verified for d in self.departments)

    @property
    def awaiting_verification(self) -> int:
        """Done items awaiting verification across departments."""
        return sum(d.awaiting_verification for d in self.departments)

    @property
    def pending_requests(self) -> int:
        """Change requests waiting for a coordinator across departments."""
        return sum(len(d.requests) for d in self.departments)

    def name_of(self, user_id: str | None) -> str:
        """A person's display name, or their id when the bot does not know them."""
        if not user_id:
            return "no owner"
        return self.names.get(user_id) or user_id
