"""The rollup chart as one PNG: item status by strategy, measure progress, and a trend panel per measure.

Readable without colour: status bars carry a hatch per status as well as its colour, progress bars
say their status in words, and in a trend panel the readings are a solid line with round markers
and their values written beside them, the expected line is dashed with square markers, and the
target a dotted line, each labelled. The trend palette is Okabe-Ito, as in the HTML report.
"""

from __future__ import annotations

import io
import math
import textwrap
import warnings
from typing import TYPE_CHECKING

from domain.numbers import format_number, with_unit
from domain.rollup import STATUSES, TREND_PANELS, MeasureLine, Rollup
from domain.status import label, style
from reports.trend import ACTUAL, EXPECTED, TARGET

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

# Beyond this many bars a panel stops growing and its labels shrink, so the PNG stays postable.
MAX_ROWS_AT_FULL_SIZE = 60
MAX_HEIGHT_INCHES = 40.0
LABEL_LIMIT = 48
WIDTH_INCHES = 14.0
# Trend panels: a grid of small charts under the bars, at most TREND_PANELS (the HTML report has all).
TREND_COLUMNS = 4
TREND_PANEL_INCHES = 2.2
TREND_HEADING_INCHES = 0.6
# Every point's value is written beside it up to this many readings; beyond, the first, last,
# lowest and highest are, so labels never pile up.
LABEL_EVERY_POINT_UP_TO = 8
# A second signal beside colour for each status's part of a bar.
HATCH = {
    "not_started": "",
    "on_track": "",
    "at_risk": "//",
    "off_track": "xx",
    "blocked": "..",
    "done": "\\\\",
    "dropped": "--",
}
TREND_LEGEND = (
    "Trend per measure: readings as a solid line with round markers and their values;"
    " expected progress dashed with square markers; target dotted."
)


def _short(text: str, limit: int = LABEL_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trend_measures(rollup: Rollup) -> tuple[list[tuple[str, MeasureLine]], int]:
    """The measures that get a trend panel (department key, line), in report order, and how many do not."""
    every = rollup.measure_lines()
    return every[:TREND_PANELS], max(0, len(every) - TREND_PANELS)


def _points(values: list[float | None]) -> list[tuple[int, float]]:
    """(position, value) of every finite value; a quarter without one leaves a gap."""
    return [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]


def _trend_panel(axes: Axes, department: str, m: MeasureLine, font: float) -> None:
    """One measure's readings against its expected line and target, every line labelled directly."""
    unit = " ".join(m.unit.split())
    axes.set_title(
        f"{department} · {_short(m.name, 38)}\n{label(m.status)}"
        + (f" · {_short(unit, 20)}" if unit else ""),
        fontsize=font,
        loc="left",
    )
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    series = m.series
    readings = _points([p.value for p in series])
    if not readings:
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_frame_on(False)
        why = f"needs attention: {_short(m.problem or '', 120)}" if m.problem else "no readings yet"
        axes.text(
            0.5,
            0.5,
            textwrap.fill(why, 40),
            ha="center",
            va="center",
            fontsize=font,
            transform=axes.transAxes,
        )
        return
    expected = _points([p.expected for p in series])
    target = _points([m.target])
    values = [v for _, v in readings + expected + target]
    low, high = min(values), max(values)
    pad = (high - low) * 0.2 or max(1.0, abs(high) * 0.1)
    axes.set_ylim(low - pad, high + pad)
    last = len(series) - 1
    axes.set_xlim(-0.4, last + 1.6)  # room on the right for the line labels
    for _, goal in target:
        due = f" by {m.target_quarter}" if m.target_quarter else ""
        axes.axhline(goal, color=TARGET, linestyle=":", linewidth=1.2)
        axes.text(
            last + 1.55,
            goal,
            f"target {format_number(goal)}{due}",
            ha="right",
            va="bottom",
            fontsize=font - 1,
            color=TARGET,
        )
    if expected:
        axes.plot(
            [i for i, _ in expected],
            [v for _, v in expected],
            color=EXPECTED,
            linestyle="--",
            marker="s",
            markersize=3.5,
            linewidth=1.5,
            label="expected",
        )
        end_i, end_v = expected[-1]
        axes.annotate(
            f"expected {format_number(end_v)}",
            (end_i, end_v),
            xytext=(6, -10),
            textcoords="offset points",
            fontsize=font - 1,
            color=EXPECTED,
        )
    axes.plot(
        [i for i, _ in readings],
        [v for _, v in readings],
        color=ACTUAL,
        linestyle="-",
        marker="o",
        markersize=4.5,
        linewidth=2.2,
        label="readings",
    )
    labelled = readings
    if len(readings) > LABEL_EVERY_POINT_UP_TO:
        ends = {
            readings[0],
            readings[-1],
            min(readings, key=lambda r: r[1]),
            max(readings, key=lambda r: r[1]),
        }
        labelled = sorted(ends)
    for i, v in labelled:
        axes.annotate(
            with_unit(v, unit if unit == "%" else ""),
            (i, v),
            xytext=(0, 6),
            textcoords="offset points",
            ha="center",
            fontsize=font - 1,
            color="#1b1b1b",
        )
    ticks = list(range(len(series))) if len(series) <= 4 else sorted({0, last})
    axes.set_xticks(ticks, [series[i].quarter for i in ticks], fontsize=font - 1.5)
    axes.tick_params(axis="y", labelsize=font - 1.5)


def _status_panels(top: Figure | SubFigure, rollup: Rollup, font: float) -> None:
    strategy_rows = [
        (f"{d.key} · {_short(s.name)}", s.counts) for d in rollup.departments for s in d.strategies
    ]
    measure_rows = [
        (f"{d.key} · {_short(m.name)}", m)
        for d in rollup.departments
        for s in d.strategies
        for m in s.measures
    ]
    status_axes, measure_axes = top.subplots(1, 2, width_ratios=[3, 2])

    positions = list(range(len(strategy_rows)))
    left = [0] * len(strategy_rows)
    for status in STATUSES:
        values = [counts.get(status, 0) for _, counts in strategy_rows]
        status_axes.barh(
            positions,
            values,
            left=left,
            color=style(status).colour,
            hatch=HATCH.get(status, ""),
            edgecolor="white",
            label=label(status),
        )
        left = [a + b for a, b in zip(left, values, strict=True)]
    status_axes.set_yticks(positions, [name for name, _ in strategy_rows], fontsize=font)
    status_axes.invert_yaxis()
    status_axes.set_xlabel("items")
    status_axes.set_title("Items by status")
    handles, labels = status_axes.get_legend_handles_labels()
    # Outside the panels, so a long plan's bars never hide under it.
    top.legend(handles, labels, loc="outside lower center", ncols=len(STATUSES), fontsize=8)
    if not strategy_rows:
        status_axes.text(0.5, 0.5, "no strategies", ha="center", transform=status_axes.transAxes)

    mpos = list(range(len(measure_rows)))
    progress = [max(-50.0, min(150.0, (m.progress or 0.0) * 100)) for _, m in measure_rows]
    colours = [style(m.status).colour for _, m in measure_rows]
    measure_axes.barh(mpos, progress, color=colours)
    for y, (_, m), reached in zip(mpos, measure_rows, progress, strict=True):
        # The status in words at the bar's end: the colour is never the only signal.
        words = "no reading" if m.progress is None else f"{round(reached)}% · {label(m.status)}"
        if m.progress is None and m.problem:
            words = label(m.status)
        # Right of both the bar and the expected tick, so neither hides the words.
        at = max(reached, (m.expected or 0.0) * 100, 0.0) + 2
        measure_axes.text(at, y, words, va="center", fontsize=font - 1, color="#1b1b1b")
        if m.expected is not None:
            # The tick marks where the measure should be by the quarter's end.
            measure_axes.plot([m.expected * 100] * 2, [y - 0.4, y + 0.4], color="black", lw=1.5)
    measure_axes.set_yticks(mpos, [name for name, _ in measure_rows], fontsize=font)
    measure_axes.invert_yaxis()
    measure_axes.axvline(100, color="#555", ls="--", lw=1)
    measure_axes.set_xlim(min(0.0, *progress) - 5 if progress else -5, 175)
    measure_axes.set_xlabel("% of the way from baseline to target (tick: expected)")
    measure_axes.set_title("Measure progress")
    if not measure_rows:
        measure_axes.text(0.5, 0.5, "no measures", ha="center", transform=measure_axes.transAxes)


def rollup_chart_figure(rollup: Rollup) -> Figure:
    """The chart as a matplotlib Figure: status and progress bars on top, a trend panel per measure below."""
    import matplotlib

    matplotlib.use("Agg")
    # User text may hold "$"; mathtext would try to typeset it (and can raise), so turn it off.
    with matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):
        return _figure(rollup)


def _figure(rollup: Rollup) -> Figure:
    from matplotlib.figure import Figure

    rows = max(
        sum(len(d.strategies) for d in rollup.departments),
        sum(len(s.measures) for d in rollup.departments for s in d.strategies),
        1,
    )
    font = 9 if rows <= MAX_ROWS_AT_FULL_SIZE else max(3.0, 9 * MAX_ROWS_AT_FULL_SIZE / rows)
    trends, untold = trend_measures(rollup)
    grid_rows = -(-len(trends) // TREND_COLUMNS)
    trend_height = grid_rows * TREND_PANEL_INCHES + (TREND_HEADING_INCHES if trends else 0.0)
    top_height = min(MAX_HEIGHT_INCHES - trend_height, 1.8 + 0.32 * rows)

    figure = Figure(figsize=(WIDTH_INCHES, top_height + trend_height), layout="constrained")
    figure.suptitle(f"REAP rollup {rollup.quarter} (as of {rollup.as_of.isoformat()})")
    if not trends:
        _status_panels(figure, rollup, font)
        return figure
    rows_of = figure.add_gridspec(2, 1, height_ratios=[top_height, trend_height])
    top, bottom = figure.add_subfigure(rows_of[0]), figure.add_subfigure(rows_of[1])
    _status_panels(top, rollup, font)
    heading = TREND_LEGEND
    if untold:
        more = "1 more measure is" if untold == 1 else f"{untold} more measures are"
        heading += f" {more} charted in the HTML report."
    bottom.suptitle(heading, fontsize=9)
    grid = bottom.subplots(grid_rows, TREND_COLUMNS, squeeze=False)
    panels = list(grid.flat)
    for axes, (department, line) in zip(panels, trends, strict=False):
        _trend_panel(axes, department, line, 8.0)
    for spare in panels[len(trends) :]:
        spare.set_visible(False)
    return figure


def rollup_chart_png(rollup: Rollup) -> bytes:
    """The rollup chart (status by strategy, measure progress, a trend panel per measure) as PNG."""
    import matplotlib

    figure = rollup_chart_figure(rollup)
    with matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            # A title in a script the default font lacks should cost a box glyph, not the report.
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
            figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
