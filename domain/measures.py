"""Performance measures: what a measure is allowed to be, which readings it accepts, and its status.

A measure runs from a baseline (a value measured in a quarter) to a target (a value due by a
date, the last day of its target quarter). The progress expected by a quarter is linear from the
end of the baseline quarter to the target date; the status compares the progress a reading shows
against it. Pure: every function takes the dates it needs; nothing reads a clock or a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from domain.errors import ReapError
from domain.fiscal import FiscalQuarter
from domain.status import Direction, MeasureStatus

ON_TRACK_RATIO = 0.95
AT_RISK_RATIO = 0.85
# Readings are accepted up to this many quarters after the target quarter: late data still
# arrives, and a plan that slips is still measured, but a typo of a year is caught.
READING_GRACE_QUARTERS = 4
# Readings are decimals typed by people; a hair of float error must not flip a boundary case.
_EPSILON = 1e-9


class MeasureKind(StrEnum):
    """Whether each reading stands alone (a rate) or counts everything to date (devices handed out)."""

    LEVEL = "level"
    CUMULATIVE = "cumulative"


class MeasureDirectionError(ReapError, ValueError):
    """A measure's target lies on the wrong side of its baseline for its direction."""

    def __init__(self, *, baseline: float, target: float, direction: str) -> None:
        self.baseline = baseline
        self.target = target
        self.direction = direction
        want = "above" if direction == Direction.INCREASE else "below"
        super().__init__(
            f"a measure meant to {direction} from {baseline:g} needs a target {want} it, not {target:g}"
        )


class MeasureInvalid(ReapError, ValueError):
    """A measure definition that cannot be tracked; the message names the measure and the field."""

    def __init__(self, key: str, field: str, problem: str) -> None:
        self.key = key
        self.field = field
        self.problem = problem
        super().__init__(f"Measure {key}: {field}: {problem}")


class ReadingRefused(ReapError, ValueError):
    """A reading the measure cannot take; the message says why and what would be accepted."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"Measure {key}: {problem}; nothing was recorded.")


@dataclass(frozen=True)
class MeasureRule:
    """What the rules need to know about a measure: its baseline, target, direction and kind."""

    key: str
    baseline: float
    target: float
    direction: str
    target_date: date
    kind: str = MeasureKind.LEVEL.value
    baseline_quarter: FiscalQuarter | None = None

    @property
    def target_quarter(self) -> FiscalQuarter:
        """The quarter the target is due in."""
        start_month = self.baseline_quarter.start_month if self.baseline_quarter else 7
        return FiscalQuarter.containing(self.target_date, start_month)

    def line_start(self, plan_start: date) -> date:
        """Where the expected-progress line starts: the end of the baseline quarter, else the plan's start."""
        return self.baseline_quarter.end if self.baseline_quarter is not None else plan_start


def check_measure(rule: MeasureRule) -> None:
    """Refuse a measure whose definition cannot be tracked, naming the measure and the field."""
    try:
        _check_direction(rule.baseline, rule.target, rule.direction)
    except MeasureDirectionError as exc:
        raise MeasureInvalid(rule.key, "target", str(exc)) from None
    if rule.kind not in tuple(MeasureKind):
        raise MeasureInvalid(rule.key, "kind", f"'{rule.kind}' is not one of level, cumulative")
    if rule.kind == MeasureKind.CUMULATIVE and rule.direction != Direction.INCREASE:
        raise MeasureInvalid(rule.key, "kind", "a cumulative measure counts up, so its direction is increase")
    if rule.baseline_quarter is not None and rule.baseline_quarter.end >= rule.target_date:
        raise MeasureInvalid(
            rule.key,
            "target_date",
            f"{rule.target_date.isoformat()} is not after the baseline quarter {rule.baseline_quarter.label}",
        )


def reading_window(rule: MeasureRule) -> tuple[FiscalQuarter | None, FiscalQuarter]:
    """The first and last quarter a reading may be for (no first quarter without a baseline quarter)."""
    last = rule.target_quarter
    for _ in range(READING_GRACE_QUARTERS):
        last = last.next()
    return rule.baseline_quarter, last


def check_reading(
    rule: MeasureRule,
    *,
    quarter: FiscalQuarter,
    value: float,
    note: str | None,
    earlier: Sequence[tuple[FiscalQuarter, float]] = (),
) -> None:
    """Refuse a reading outside the measure's window, below zero on a non-negative scale, or a
    cumulative count going down without a note. `earlier` is the measure's other readings."""
    first, last = reading_window(rule)
    if (first is not None and quarter < first) or quarter > last:
        since = f"from {first.label} " if first is not None else ""
        raise ReadingRefused(
            rule.key,
            f"{quarter.label} is outside the measure's quarters (readings run {since}to {last.label})",
        )
    non_negative = rule.baseline >= 0 and rule.target >= 0
    if value < 0 and (non_negative or rule.kind == MeasureKind.CUMULATIVE):
        raise ReadingRefused(
            rule.key, f"{value:g} is below zero, and this measure counts from {rule.baseline:g}"
        )
    if rule.kind == MeasureKind.CUMULATIVE and not (note and note.strip()):
        before = [v for q, v in earlier if q < quarter]
        if before and value < max(before) - _EPSILON:
            raise ReadingRefused(
                rule.key,
                f"a cumulative count cannot fall from {max(before):g} to {value:g} without a note saying why",
            )


def expected_fraction(*, start: date, target_date: date, as_of: date) -> float:
    """Share of the baseline-to-target distance expected by `as_of`: linear from `start`, 0..1."""
    span = (target_date - start).days
    if span <= 0:
        return 1.0 if as_of >= target_date else 0.0
    elapsed = (as_of - start).days
    return min(1.0, max(0.0, elapsed / span))


def expected_value(*, baseline: float, target: float, start: date, target_date: date, as_of: date) -> float:
    """The value the expected-progress line reaches by `as_of`."""
    return baseline + (target - baseline) * expected_fraction(
        start=start, target_date=target_date, as_of=as_of
    )


def _check_direction(baseline: float, target: float, direction: str | None) -> str:
    if direction is None:
        return Direction.DECREASE.value if target < baseline else Direction.INCREASE.value
    wanted = Direction(direction)
    if (wanted == Direction.INCREASE and target < baseline) or (
        wanted == Direction.DECREASE and target > baseline
    ):
        raise MeasureDirectionError(baseline=baseline, target=target, direction=wanted.value)
    return wanted.value


def actual_fraction(*, baseline: float, target: float, value: float, direction: str | None = None) -> float:
    """Share of the way from baseline to target that `value` has come (negative if it went backwards).

    The direction follows from baseline and target; an explicit `direction` is checked against
    them and decides the degenerate case where the target equals the baseline (hold the line).
    A measure to maintain scores how close it stays to its target: 1 on it, less the further off.
    """
    resolved = _check_direction(baseline, target, direction)
    if resolved == Direction.MAINTAIN:
        scale = abs(target) if target else 1.0
        return 1.0 - abs(value - target) / scale
    span = target - baseline
    if span == 0:
        held = value >= target if resolved == Direction.INCREASE else value <= target
        return 1.0 if held else 0.0
    return (value - baseline) / span


def measure_status(
    *,
    baseline: float,
    target: float,
    direction: str | None,
    start: date,
    target_date: date,
    quarter: FiscalQuarter,
    value: float | None,
) -> MeasureStatus:
    """The status of a measure whose reading for `quarter` is `value` (None: no reading).

    `start` is where the expected line begins: the end of the baseline quarter (see
    `MeasureRule.line_start`).
    """
    if value is None:
        return MeasureStatus.NO_DATA
    actual = actual_fraction(baseline=baseline, target=target, value=value, direction=direction)
    if direction == Direction.MAINTAIN:
        # Holding a level is judged on closeness alone; there is no distance to cover.
        return _by_ratio(actual)
    if actual >= 1.0 - _EPSILON:
        return MeasureStatus.MET
    expected = expected_fraction(start=start, target_date=target_date, as_of=quarter.end)
    if expected <= 0.0:
        # Nothing is owed yet (the baseline quarter itself): holding the baseline is on track.
        return MeasureStatus.ON_TRACK if actual >= -_EPSILON else MeasureStatus.OFF_TRACK
    return _by_ratio(actual / expected)


def _by_ratio(ratio: float) -> MeasureStatus:
    if ratio >= ON_TRACK_RATIO - _EPSILON:
        return MeasureStatus.ON_TRACK
    if ratio >= AT_RISK_RATIO - _EPSILON:
        return MeasureStatus.AT_RISK
    return MeasureStatus.OFF_TRACK
