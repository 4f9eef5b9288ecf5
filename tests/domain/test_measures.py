"""Measure status is computed: actual progress from baseline against the progress expected by the quarter."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import ReapError
from domain.fiscal import FiscalQuarter
from domain.measures import MeasureDirectionError, actual_fraction, expected_fraction, measure_status
from domain.status import MeasureStatus

D = date.fromisoformat
# From this start to this target date is 366 days, and FY2025-Q2 ends 183 days in: half the
# distance is expected by then, which keeps the boundary arithmetic exact.
PLAN_START = D("2024-07-01")
TARGET_DATE = D("2025-07-02")
HALFWAY = FiscalQuarter(2025, 2)
ON, RISK, OFF, MET, NONE = (
    MeasureStatus.ON_TRACK,
    MeasureStatus.AT_RISK,
    MeasureStatus.OFF_TRACK,
    MeasureStatus.MET,
    MeasureStatus.NO_DATA,
)


def test_the_fixture_quarter_expects_exactly_half_the_distance():
    assert expected_fraction(plan_start=PLAN_START, target_date=TARGET_DATE, as_of=HALFWAY.end) == 0.5


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (D("2024-01-01"), 0.0),  # before the plan starts
        (PLAN_START, 0.0),
        (D("2024-12-31"), 0.5),
        (TARGET_DATE, 1.0),
        (D("2030-01-01"), 1.0),  # after the target date
    ],
)
def test_expected_fraction_is_linear_and_clamped(as_of: date, expected: float):
    assert expected_fraction(plan_start=PLAN_START, target_date=TARGET_DATE, as_of=as_of) == expected


def test_a_target_date_on_the_plan_start_expects_everything_from_that_day():
    kwargs = {"plan_start": PLAN_START, "target_date": PLAN_START}
    assert expected_fraction(**kwargs, as_of=D("2024-06-30")) == 0.0
    assert expected_fraction(**kwargs, as_of=PLAN_START) == 1.0


@pytest.mark.parametrize(
    ("baseline", "target", "value", "fraction"),
    [
        (0, 100, 25, 0.25),
        (10, 30, 5, -0.25),  # moved the wrong way
        (40, 20, 30, 0.5),  # a decrease: 40 down to 30 is half way to 20
        (40, 20, 50, -0.5),
        (40, 20, 10, 1.5),  # overshot
    ],
)
def test_actual_fraction_follows_the_direction_implied_by_baseline_and_target(
    baseline: float, target: float, value: float, fraction: float
):
    assert actual_fraction(baseline=baseline, target=target, value=value) == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("direction", "value", "fraction"),
    [("increase", 50, 1.0), ("increase", 49, 0.0), ("decrease", 50, 1.0), ("decrease", 51, 0.0)],
)
def test_a_target_equal_to_the_baseline_means_holding_the_line(direction: str, value: float, fraction: float):
    assert actual_fraction(baseline=50, target=50, value=value, direction=direction) == fraction


def test_an_explicit_direction_that_contradicts_the_target_is_refused_with_a_clear_message():
    with pytest.raises(MeasureDirectionError) as caught:
        actual_fraction(baseline=40, target=20, value=30, direction="increase")
    assert isinstance(caught.value, ReapError)
    assert str(caught.value) == "a measure meant to increase from 40 needs a target above it, not 20"


@pytest.mark.parametrize(
    ("direction", "baseline", "target", "value", "status"),
    [
        # increasing 0 -> 100, 50 expected by the quarter: 95% of expected is 47.5, 85% is 42.5
        ("increase", 0, 100, 50, ON),
        ("increase", 0, 100, 47.5, ON),
        ("increase", 0, 100, 47.4, RISK),
        ("increase", 0, 100, 42.5, RISK),
        ("increase", 0, 100, 42.4, OFF),
        ("increase", 0, 100, -5, OFF),
        ("increase", 0, 100, 100, MET),
        ("increase", 0, 100, 120, MET),
        # decreasing 40 -> 20, 30 expected: 95% of the way expected is 30.5, 85% is 31.5
        ("decrease", 40, 20, 30, ON),
        ("decrease", 40, 20, 30.5, ON),
        ("decrease", 40, 20, 30.6, RISK),
        ("decrease", 40, 20, 31.5, RISK),
        ("decrease", 40, 20, 31.6, OFF),
        ("decrease", 40, 20, 45, OFF),
        ("decrease", 40, 20, 20, MET),
        # the direction may be left to the numbers
        (None, 40, 20, 30.5, ON),
        (None, 40, 20, 31.6, OFF),
    ],
)
def test_status_at_and_around_the_95_and_85_percent_boundaries(
    direction: str | None, baseline: float, target: float, value: float, status: MeasureStatus
):
    result = measure_status(
        baseline=baseline,
        target=target,
        direction=direction,
        plan_start=PLAN_START,
        target_date=TARGET_DATE,
        quarter=HALFWAY,
        value=value,
    )
    assert result == status


def test_a_quarter_without_a_reading_has_no_data():
    status = measure_status(
        baseline=0,
        target=100,
        direction="increase",
        plan_start=PLAN_START,
        target_date=TARGET_DATE,
        quarter=HALFWAY,
        value=None,
    )
    assert status == NONE
    assert status.label == "no data"


@pytest.mark.parametrize(("value", "status"), [(0, ON), (3, ON), (-1, OFF)])
def test_before_the_plan_starts_nothing_is_expected_so_only_going_backwards_is_off_track(
    value: float, status: MeasureStatus
):
    before_start = FiscalQuarter(2024, 2)  # October-December 2023
    assert before_start.end < PLAN_START
    result = measure_status(
        baseline=0,
        target=100,
        direction="increase",
        plan_start=PLAN_START,
        target_date=TARGET_DATE,
        quarter=before_start,
        value=value,
    )
    assert result == status
