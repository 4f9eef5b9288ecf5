"""Performance-measure status, computed from readings: actual progress against the progress expected by now.

Pure: every function takes the dates it needs; nothing reads a clock or a database.
"""

from __future__ import annotations

from datetime import date

from domain.errors import ReapError
from domain.fiscal import FiscalQuarter
from domain.status import Direction, MeasureStatus

ON_TRACK_RATIO = 0.95
AT_RISK_RATIO = 0.85
# Readings are decimals typed by people; a hair of float error must not flip a boundary case.
_EPSILON = 1e-9


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


def expected_fraction(*, plan_start: date, target_date: date, as_of: date) -> float:
    """Share of the baseline-to-target distance expected by `as_of`: linear from plan start, 0..1."""
    span = (target_date - plan_start).days
    if span <= 0:
        return 1.0 if as_of >= target_date else 0.0
    elapsed = (as_of - plan_start).days
    return min(1.0, max(0.0, elapsed / span))


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
    """
    resolved = _check_direction(baseline, target, direction)
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
    plan_start: date,
    target_date: date,
    quarter: FiscalQuarter,
    value: float | None,
) -> MeasureStatus:
    """The status of a measure whose reading for `quarter` is `value` (None: no reading)."""
    if value is None:
        return MeasureStatus.NO_DATA
    actual = actual_fraction(baseline=baseline, target=target, value=value, direction=direction)
    if actual >= 1.0 - _EPSILON:
        return MeasureStatus.MET
    expected = expected_fraction(plan_start=plan_start, target_date=target_date, as_of=quarter.end)
    if expected <= 0.0:
        # Nothing is owed yet (a quarter before the plan starts): holding the baseline is on track.
        return MeasureStatus.ON_TRACK if actual >= -_EPSILON else MeasureStatus.OFF_TRACK
    ratio = actual / expected
    if ratio >= ON_TRACK_RATIO - _EPSILON:
        return MeasureStatus.ON_TRACK
    if ratio >= AT_RISK_RATIO - _EPSILON:
        return MeasureStatus.AT_RISK
    return MeasureStatus.OFF_TRACK
