"""Measure status is computed: actual progress from baseline against the progress expected by the quarter."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import ReapError
from domain.fiscal import FiscalQuarter
from domain.measures import (
    MeasureDirectionError,
    MeasureInvalid,
    MeasureRule,
    ReadingRefused,
    actual_fraction,
    check_measure,
    check_reading,
    expected_fraction,
    expected_value,
    measure_status,
    reading_window,
)
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
    assert expected_fraction(start=PLAN_START, target_date=TARGET_DATE, as_of=HALFWAY.end) == 0.5


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
    assert expected_fraction(start=PLAN_START, target_date=TARGET_DATE, as_of=as_of) == expected


def test_a_target_date_on_the_plan_start_expects_everything_from_that_day():
    kwargs = {"start": PLAN_START, "target_date": PLAN_START}
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
        start=PLAN_START,
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
        start=PLAN_START,
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
        start=PLAN_START,
        target_date=TARGET_DATE,
        quarter=before_start,
        value=value,
    )
    assert result == status


# --- the line starts at the baseline quarter -------------------------------------------------

DEMO_PLAN_START = D("2023-07-01")
STAFF_TRAINED = MeasureRule(
    key="staff-equity-trained",
    baseline=35,
    target=80,
    direction="increase",
    target_date=D("2027-06-30"),
    baseline_quarter=FiscalQuarter(2026, 4),  # April-June 2026
)


def test_the_expected_line_starts_at_the_end_of_the_baseline_quarter_not_the_plan_start():
    start = STAFF_TRAINED.line_start(DEMO_PLAN_START)
    assert start == D("2026-06-30")
    # One quarter into a four-quarter run: a quarter of the way, 35 + 45 * 92/365.
    expected = expected_value(
        baseline=35, target=80, start=start, target_date=D("2027-06-30"), as_of=D("2026-09-30")
    )
    assert expected == pytest.approx(35 + 45 * 92 / 365)


def test_without_a_baseline_quarter_the_line_starts_at_the_plan_start():
    rule = MeasureRule(key="k", baseline=0, target=1, direction="increase", target_date=D("2027-06-30"))
    assert rule.line_start(DEMO_PLAN_START) == DEMO_PLAN_START


def test_a_measure_that_went_35_to_62_of_80_is_on_track_from_its_baseline_but_was_red_from_the_plan_start():
    kwargs = {"baseline": 35, "target": 80, "direction": "increase", "target_date": D("2027-06-30")}
    q2 = FiscalQuarter(2027, 2)  # ends 2026-12-31: half the year from the baseline is gone
    from_baseline = measure_status(
        **kwargs, start=STAFF_TRAINED.line_start(DEMO_PLAN_START), quarter=q2, value=62
    )
    from_plan = measure_status(**kwargs, start=DEMO_PLAN_START, quarter=q2, value=62)
    assert (from_baseline, from_plan) == (ON, OFF)


# Baseline quarter FY2025-Q1 ends 2024-09-30; target 2025-09-29 is 364 days later, and FY2025-Q3
# ends 2025-03-31, 182 days in: exactly half the distance is expected, so the boundaries are exact.
HALF_RULE = {"baseline": 0, "target": 100, "direction": "increase", "target_date": D("2025-09-29")}
HALF_START = FiscalQuarter(2025, 1).end


@pytest.mark.parametrize(("value", "status"), [(47.5, ON), (47.4, RISK), (42.5, RISK), (42.4, OFF)])
def test_status_boundaries_hold_from_a_baseline_quarter_that_is_not_the_plan_start(
    value: float, status: MeasureStatus
):
    assert (
        expected_fraction(start=HALF_START, target_date=D("2025-09-29"), as_of=FiscalQuarter(2025, 3).end)
        == 0.5
    )
    result = measure_status(**HALF_RULE, start=HALF_START, quarter=FiscalQuarter(2025, 3), value=value)
    assert result == status


@pytest.mark.parametrize(
    ("value", "status"), [(50, ON), (52.5, ON), (47.6, ON), (47, RISK), (42.5, RISK), (42, OFF), (60, OFF)]
)
def test_a_measure_to_maintain_is_judged_on_how_close_it_stays_to_its_target(
    value: float, status: MeasureStatus
):
    result = measure_status(
        baseline=50,
        target=50,
        direction="maintain",
        start=PLAN_START,
        target_date=TARGET_DATE,
        quarter=HALFWAY,
        value=value,
    )
    assert result == status


# --- what a measure may be --------------------------------------------------------------------


def test_a_target_on_the_wrong_side_of_the_baseline_is_refused_naming_the_measure_and_field():
    rule = MeasureRule(
        key="wifi-sites", baseline=40, target=12, direction="increase", target_date=D("2027-06-30")
    )
    with pytest.raises(MeasureInvalid) as caught:
        check_measure(rule)
    assert str(caught.value) == (
        "Measure wifi-sites: target: a measure meant to increase from 40 needs a target above it, not 12"
    )


def test_a_cumulative_measure_must_count_up():
    rule = MeasureRule(
        key="devices",
        baseline=100,
        target=0,
        direction="decrease",
        target_date=D("2027-06-30"),
        kind="cumulative",
    )
    with pytest.raises(MeasureInvalid, match="Measure devices: kind: a cumulative measure counts up"):
        check_measure(rule)


def test_a_target_date_before_the_baseline_quarter_ends_is_refused():
    rule = MeasureRule(
        key="k",
        baseline=0,
        target=1,
        direction="increase",
        target_date=D("2026-05-01"),
        baseline_quarter=FiscalQuarter(2026, 4),
    )
    with pytest.raises(
        MeasureInvalid, match="target_date: 2026-05-01 is not after the baseline quarter FY2026-Q4"
    ):
        check_measure(rule)


# --- which readings a measure takes -----------------------------------------------------------


def test_readings_run_from_the_baseline_quarter_to_four_quarters_after_the_target_quarter():
    assert reading_window(STAFF_TRAINED) == (FiscalQuarter(2026, 4), FiscalQuarter(2028, 4))
    for quarter in (FiscalQuarter(2026, 4), FiscalQuarter(2028, 4)):
        check_reading(STAFF_TRAINED, quarter=quarter, value=40, note=None)


@pytest.mark.parametrize("quarter", [FiscalQuarter(2026, 3), FiscalQuarter(2029, 1), FiscalQuarter(2035, 1)])
def test_a_reading_outside_the_window_is_refused_saying_which_quarters_are_open(quarter: FiscalQuarter):
    with pytest.raises(ReadingRefused) as caught:
        check_reading(STAFF_TRAINED, quarter=quarter, value=40, note=None)
    assert (
        f"{quarter.label} is outside the measure's quarters (readings run from FY2026-Q4 to FY2028-Q4)"
        in str(caught.value)
    )


def test_a_negative_reading_is_refused_on_a_measure_that_counts_from_zero_up():
    with pytest.raises(ReadingRefused, match="-3 is below zero"):
        check_reading(STAFF_TRAINED, quarter=FiscalQuarter(2027, 1), value=-3, note=None)


def test_a_measure_declared_on_a_signed_scale_takes_negative_readings():
    change = MeasureRule(
        key="net-change", baseline=-5, target=5, direction="increase", target_date=D("2027-06-30")
    )
    check_reading(change, quarter=FiscalQuarter(2027, 1), value=-3, note=None)


DEVICES = MeasureRule(
    key="devices",
    baseline=0,
    target=5000,
    direction="increase",
    target_date=D("2027-06-30"),
    kind="cumulative",
)


def test_a_cumulative_count_cannot_fall_without_a_note():
    earlier = [(FiscalQuarter(2027, 1), 1900.0)]
    with pytest.raises(ReadingRefused, match="cannot fall from 1900 to 1800 without a note"):
        check_reading(DEVICES, quarter=FiscalQuarter(2027, 2), value=1800, note=None, earlier=earlier)
    check_reading(
        DEVICES, quarter=FiscalQuarter(2027, 2), value=1800, note="100 returned unused", earlier=earlier
    )
    # A later quarter's reading does not bind an earlier one being corrected.
    check_reading(DEVICES, quarter=FiscalQuarter(2026, 4), value=850, note=None, earlier=earlier)
