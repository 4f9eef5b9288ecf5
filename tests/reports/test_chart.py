"""The rollup chart is a real PNG: items by status, measure progress, and a trend panel per measure."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import date

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import imread

from domain.rollup import (
    STATUSES,
    TREND_PANELS,
    Changes,
    DepartmentRollup,
    MeasureLine,
    Rollup,
    SeriesPoint,
    StrategyRollup,
)
from domain.status import MeasureStatus
from reports.chart import HATCH, MAX_HEIGHT_INCHES, rollup_chart_figure, rollup_chart_png
from reports.trend import ACTUAL, EXPECTED, TARGET

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUARTERS = ("FY2026-Q4", "FY2027-Q1", "FY2027-Q2")


def measure(
    name: str,
    status: MeasureStatus,
    progress: float | None,
    *,
    readings: tuple[float | None, ...] = (),
    problem: str | None = None,
) -> MeasureLine:
    """A 10 -> 30 (%) measure; with `readings`, a series over FY2026-Q4.. with the expected 10, 15, 20."""
    series = tuple(
        SeriesPoint(quarter, value, 10 + 5 * n)
        for n, (quarter, value) in enumerate(zip(QUARTERS, readings, strict=False))
    )
    return MeasureLine(
        key=name.lower(),
        name=name,
        unit="%",
        baseline=10,
        latest=None if progress is None else 10 + 20 * progress,
        target=30,
        status=status,
        change=None,
        progress=progress,
        expected=0.6,
        series=series,
        target_quarter="FY2027-Q4",
        problem=problem,
    )


def strategy(name: str, measures: list[MeasureLine], **counts: int) -> StrategyRollup:
    """A strategy with the given item counts."""
    return StrategyRollup(
        key=name.lower(),
        name=name,
        counts={s: counts.get(s, 0) for s in STATUSES},
        percent_complete=40.0,
        on_time_rate=None,
        overdue=[],
        blocked=[],
        measures=measures,
    )


def rollup_of(strategies: list[StrategyRollup]) -> Rollup:
    """A one-department rollup holding these strategies."""
    department = DepartmentRollup(
        key="OIT",
        name="Office of Innovation and Technology",
        report_channel=None,
        coordinators=[],
        strategies=strategies,
        changes=Changes([], [], [], [], []),
        response_rate=None,
        non_responders=[],
        stale=[],
        orphaned=[],
    )
    return Rollup(
        quarter="FY2027-Q2",
        as_of=date(2026, 11, 20),
        departments=[department],
        counts={},
        percent_complete=40.0,
        on_time_rate=None,
        response_rate=None,
    )


@pytest.fixture
def office_rollup() -> Rollup:
    """Three strategies in every colour, with measures on, behind, past their targets and unreadable."""
    return rollup_of(
        [
            strategy(
                "Equity projects",
                [measure("Contracts to M/WBE firms", MeasureStatus.ON_TRACK, 0.62, readings=(10, 17, 22.4))],
                on_track=4,
                at_risk=2,
                done=3,
            ),
            strategy(
                "Workplace equity",
                [
                    measure("Days to fill roles", MeasureStatus.OFF_TRACK, -0.1, readings=(10, None, 8)),
                    measure(
                        "Broken one",
                        MeasureStatus.NEEDS_ATTENTION,
                        None,
                        problem="its target is on the wrong side of its baseline",
                    ),
                ],
                off_track=1,
                blocked=2,
                not_started=5,
                dropped=1,
            ),
            strategy(
                "Budget $5 $10 for <b>Wi-Fi</b> {{ 7*7 }}",
                [measure("No reading yet", MeasureStatus.NO_DATA, None)],
                on_track=7,
            ),
        ]
    )


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG header, after checking the header chunk's CRC."""
    assert data.startswith(PNG_SIGNATURE)
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert crc == zlib.crc32(kind + body)
    width, height = struct.unpack(">II", body[:8])
    return width, height


def trend_panels(figure: Figure) -> list[Axes]:
    """The visible axes of the trend grid (the second subfigure), in reading order."""
    (_, trends) = figure.subfigs
    return [axes for axes in trends.axes if axes.get_visible()]


def texts(axes: Axes) -> list[str]:
    """Every piece of text drawn inside a panel (labels and annotations)."""
    return [t.get_text() for t in axes.texts]


def test_the_chart_is_a_png_that_opens_at_its_computed_size(office_rollup: Rollup):
    data = rollup_chart_png(office_rollup)
    # Four measure rows: 1.8 + 0.32 * 4 = 3.08 in of bars; one row of four trend panels: 2.2 + 0.6 in.
    assert png_size(data) == (1400, pytest.approx(588, abs=1))
    pixels = imread(io.BytesIO(data), format="png")
    assert pixels.shape[:2] == (png_size(data)[1], 1400)
    assert pixels.std() > 0.05  # bars, lines and labels, not an empty canvas
    assert data.endswith(b"IEND\xaeB`\x82")


def test_each_measure_gets_a_trend_panel_titled_with_its_department_name_and_status(office_rollup: Rollup):
    panels = trend_panels(rollup_chart_figure(office_rollup))
    assert [p.get_title(loc="left") for p in panels] == [
        "OIT · Contracts to M/WBE firms\non track · %",
        "OIT · Days to fill roles\noff track · %",
        "OIT · Broken one\nneeds attention · %",
        "OIT · No reading yet\nno data · %",
    ]


def test_readings_expected_line_and_target_differ_by_line_style_and_marker_not_only_colour(
    office_rollup: Rollup,
):
    contracts = trend_panels(rollup_chart_figure(office_rollup))[0]
    lines = {line.get_label(): line for line in contracts.lines}
    readings, expected = lines["readings"], lines["expected"]
    assert (readings.get_linestyle(), readings.get_marker(), readings.get_color()) == ("-", "o", ACTUAL)
    assert (expected.get_linestyle(), expected.get_marker(), expected.get_color()) == ("--", "s", EXPECTED)
    (target,) = [line for line in contracts.lines if line.get_linestyle() == ":"]
    assert target.get_color() == TARGET and list(target.get_ydata()) == [30, 30]
    assert list(readings.get_ydata()) == [10, 17, 22.4]
    assert list(expected.get_ydata()) == [10, 15, 20]


def test_values_are_labelled_directly_on_the_panel(office_rollup: Rollup):
    contracts, days, broken, empty = trend_panels(rollup_chart_figure(office_rollup))
    assert texts(contracts) == ["target 30 by FY2027-Q4", "expected 20", "10%", "17%", "22.4%"]
    # A quarter without a reading is a gap: two points, two labels.
    assert list(days.lines[-1].get_xdata()) == [0, 2]
    assert texts(days)[-2:] == ["10%", "8%"]
    assert texts(broken) == ["needs attention: its target is on the\nwrong side of its baseline"]
    assert texts(empty) == ["no readings yet"]


def test_status_bars_carry_a_hatch_and_progress_bars_their_status_in_words(office_rollup: Rollup):
    figure = rollup_chart_figure(office_rollup)
    (top, _) = figure.subfigs
    status_axes, measure_axes = top.axes
    hatches = {bar.get_label(): bar.patches[0].get_hatch() for bar in status_axes.containers}
    assert hatches["at risk"] == HATCH["at_risk"] == "//"
    assert len({h for h in hatches.values() if h}) == len([h for h in HATCH.values() if h])
    assert texts(measure_axes) == ["62% · on track", "-10% · off track", "needs attention", "no reading"]


def test_many_measures_keep_the_chart_bounded_and_say_where_the_rest_are():
    def plan(strategies: int) -> Rollup:
        return rollup_of(
            [
                strategy(
                    f"Strategy {n}",
                    [measure(f"M{n}.{k}", MeasureStatus.AT_RISK, 0.4, readings=(10, 12)) for k in range(5)],
                )
                for n in range(strategies)
            ]
        )

    huge = rollup_chart_figure(plan(60))  # 300 measures (built, not drawn: the first test draws one)
    assert len(trend_panels(huge)) == TREND_PANELS
    assert "284 more measures are charted in the HTML report." in huge.subfigs[1].get_suptitle()
    assert huge.get_size_inches()[1] <= MAX_HEIGHT_INCHES
    # 20 measures: 1.8 + 0.32 * 20 in of bars, then four rows of trend panels (4 * 2.2 + 0.6 in).
    assert list(rollup_chart_figure(plan(4)).get_size_inches()) == [14, pytest.approx(17.6)]


def test_more_strategies_make_a_taller_chart(office_rollup: Rollup):
    many = rollup_of([strategy(f"Strategy {n}", [], on_track=n) for n in range(30)])
    assert png_size(rollup_chart_png(many))[1] > png_size(rollup_chart_png(office_rollup))[1]


def test_an_empty_rollup_still_draws_a_chart_without_a_trend_part():
    empty = Rollup(
        quarter="FY2027-Q2",
        as_of=date(2026, 11, 20),
        departments=[],
        counts={},
        percent_complete=0.0,
        on_time_rate=None,
        response_rate=None,
    )
    assert not rollup_chart_figure(empty).subfigs
    width, height = png_size(rollup_chart_png(empty))
    assert (width, height) == (1400, pytest.approx(212, abs=1))
