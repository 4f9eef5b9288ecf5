"""Numbers shown one way: sparklines, gaps and ratios."""

from __future__ import annotations

from domain.numbers import format_gap, format_ratio, sparkline


def test_a_sparkline_scales_between_the_lowest_and_highest_value_and_marks_gaps():
    assert sparkline([35, 48, 62]) == "▁▄█"
    assert sparkline([10, None, 10]) == "▁·▁"
    assert sparkline([None, None]) == ""


def test_gaps_are_signed_and_say_points_for_a_representation_breakdown():
    assert format_gap(-15.04, points=True) == "−15 pts"
    assert format_gap(6.666, points=True) == "+6.7 pts"
    assert format_gap(-20.0, points=False) == "−20"
    assert format_gap(None, points=True) == "—"


def test_ratios_have_two_decimals():
    assert (format_ratio(0.625), format_ratio(None)) == ("0.62", "—")
