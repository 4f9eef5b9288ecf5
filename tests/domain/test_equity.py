"""Breakdowns by group: gap, disparity ratio and representation index against hand-computed figures."""

from __future__ import annotations

import pytest

from domain.equity import (
    Breakdown,
    GroupInput,
    gap_changes,
    narrowed,
    rate_breakdown,
    representation_breakdown,
)

# Home internet by neighbourhood need: the overall rate is 80%.
INTERNET = [
    GroupInput("low-need", 90.0, n=400),
    GroupInput("mid-need", 78.0, n=300),
    GroupInput("high-need", 60.0, n=150),
    GroupInput("new-tract", 40.0, n=6),  # too few households surveyed to publish
    GroupInput("unsurveyed", None),
]


def test_a_rate_breakdown_measures_each_group_against_the_overall_rate():
    result = rate_breakdown(INTERNET, overall=80.0, min_count=10)
    low, mid, high = (result.group(k) for k in ("low-need", "mid-need", "high-need"))
    assert low and mid and high
    assert (low.gap, low.ratio) == (pytest.approx(10.0), pytest.approx(1.125))
    assert (mid.gap, mid.ratio) == (pytest.approx(-2.0), pytest.approx(0.975))
    assert (high.gap, high.ratio) == (pytest.approx(-20.0), pytest.approx(0.75))
    assert result.largest_gap == high


def test_a_rate_breakdown_can_measure_against_a_declared_reference_group():
    result = rate_breakdown(INTERNET, overall=80.0, reference_group="low-need", min_count=10)
    high, low = result.group("high-need"), result.group("low-need")
    assert high and low
    assert result.reference == 90.0
    assert (high.gap, high.ratio) == (pytest.approx(-30.0), pytest.approx(60 / 90))
    # The reference group is its own yardstick, never "the largest gap".
    assert low.reference and low.gap == 0.0
    assert result.largest_gap == high


def test_a_small_group_is_suppressed_and_never_shown():
    result = rate_breakdown(INTERNET, overall=80.0, min_count=10)
    small = result.group("new-tract")
    assert small is not None and small.suppressed
    assert (small.value, small.gap, small.ratio) == (None, None, None)
    missing = result.group("unsurveyed")
    assert missing is not None and not missing.suppressed and missing.value is None


# New hires by race against the city's working-age population shares.
HIRES = [
    GroupInput("black", 30, population_share=0.40),
    GroupInput("white", 50, population_share=0.35),
    GroupInput("hispanic", 15, population_share=0.15),
    GroupInput("asian", 5, population_share=0.07),
    GroupInput("other", 20),  # no population share declared
]


def test_a_representation_breakdown_gives_share_gap_in_points_and_index():
    result = representation_breakdown(HIRES, min_count=10)
    assert result.reference == 120  # the total counts every group, hidden ones too
    black, white, other = (result.group(k) for k in ("black", "white", "other"))
    assert black and white and other
    assert black.share == pytest.approx(0.25)
    assert (black.gap, black.index) == (pytest.approx(-15.0), pytest.approx(0.625))
    assert white.share == pytest.approx(50 / 120)
    assert (white.gap, white.index) == (pytest.approx(50 / 120 * 100 - 35), pytest.approx((50 / 120) / 0.35))
    # Without a population share there is a share but no gap or index.
    assert other.share == pytest.approx(20 / 120)
    assert (other.gap, other.index) == (None, None)
    assert result.largest_gap == black


def test_one_hidden_count_takes_the_next_smallest_with_it_so_it_cannot_be_subtracted_out():
    result = representation_breakdown(HIRES, min_count=10)
    asian, hispanic = result.group("asian"), result.group("hispanic")
    assert asian and hispanic
    assert asian.suppressed and asian.value is None
    assert hispanic.suppressed and hispanic.value is None


def test_with_two_small_groups_nothing_else_is_hidden():
    groups = [GroupInput("a", 5), GroupInput("b", 7), GroupInput("c", 50), GroupInput("d", 60)]
    result = representation_breakdown(groups, min_count=10)
    assert [g.suppressed for g in result.groups] == [True, True, False, False]


def _rates(high_need: float) -> Breakdown:
    return rate_breakdown(
        [GroupInput("low", 90.0, n=100), GroupInput("high", high_need, n=100)], overall=80.0, min_count=10
    )


def test_a_gap_that_shrank_is_reported_as_narrowed():
    then, now = _rates(55.0), _rates(65.0)
    assert narrowed(now, then) is True
    assert narrowed(then, now) is False
    assert gap_changes(now, then)["high"] == pytest.approx(-10.0)
    assert narrowed(now, None) is None
