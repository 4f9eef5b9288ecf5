"""The quarterly rollup as frozen value types: what each department's plan looks like at a quarter.

`storage.queries.rollup.build_rollup` fills these in; `messages.rollup` and `reports.rollup`
present them. Nothing here reads a clock or a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from domain.equity import Breakdown, narrowed
from domain.numbers import sparkline
from domain.status import ITEM_STATUSES, MeasureStatus

STALE_DAYS = 60
STATUSES = ITEM_STATUSES


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

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not (
            self.status_transitions or self.completed or self.newly_overdue or self.new_items or self.redated
        )


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

    @property
    def total(self) -> int:
        """How many items the department has."""
        return sum(self.counts.values())

    @property
    def overdue_count(self) -> int:
        """How many of its items are overdue."""
        return sum(len(s.overdue) for s in self.strategies)


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

    @property
    def total(self) -> int:
        """How many items the rollup covers."""
        return sum(self.counts.values())

    @property
    def overdue_count(self) -> int:
        """How many items are overdue across departments."""
        return sum(d.overdue_count for d in self.departments)

    def name_of(self, user_id: str | None) -> str:
        """A person's display name, or their id when the bot does not know them."""
        if not user_id:
            return "no owner"
        return self.names.get(user_id) or user_id
