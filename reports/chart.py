"""The rollup chart: item status by strategy and measure progress, as one PNG."""

from __future__ import annotations

import io
import warnings

from domain.rollup import STATUSES, Rollup
from domain.status import label, style

# Beyond this many bars a panel stops growing and its labels shrink, so the PNG stays postable.
MAX_ROWS_AT_FULL_SIZE = 60
MAX_HEIGHT_INCHES = 40.0
LABEL_LIMIT = 48


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


def rollup_chart_png(rollup: Rollup) -> bytes:
    """Stacked bars of item status per strategy beside each measure's progress (% of target), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    strategy_rows = [
        (f"{d.key} · {_short(s.name)}", s.counts) for d in rollup.departments for s in d.strategies
    ]
    measure_rows = [
        (f"{d.key} · {_short(m.name)}", m)
        for d in rollup.departments
        for s in d.strategies
        for m in s.measures
    ]
    rows = max(len(strategy_rows), len(measure_rows), 1)
    height = min(MAX_HEIGHT_INCHES, 1.8 + 0.32 * rows)
    font = 9 if rows <= MAX_ROWS_AT_FULL_SIZE else max(3.0, 9 * MAX_ROWS_AT_FULL_SIZE / rows)

    # User text may hold "$"; mathtext would try to typeset it (and can raise), so turn it off.
    with matplotlib.rc_context({"text.parse_math": False, "font.size": 9}):
        figure = Figure(figsize=(14, height), layout="constrained")
        status_axes, measure_axes = figure.subplots(1, 2, width_ratios=[3, 2])
        figure.suptitle(f"REAP rollup {rollup.quarter} (as of {rollup.as_of.isoformat()})")

        positions = list(range(len(strategy_rows)))
        left = [0] * len(strategy_rows)
        for status in STATUSES:
            values = [counts.get(status, 0) for _, counts in strategy_rows]
            status_axes.barh(positions, values, left=left, color=style(status).colour, label=label(status))
            left = [a + b for a, b in zip(left, values, strict=True)]
        status_axes.set_yticks(positions, [name for name, _ in strategy_rows], fontsize=font)
        status_axes.invert_yaxis()
        status_axes.set_xlabel("items")
        status_axes.set_title("Items by status")
        handles, labels = status_axes.get_legend_handles_labels()
        # Outside the panels, so a long plan's bars never hide under it.
        figure.legend(handles, labels, loc="outside lower center", ncols=len(STATUSES), fontsize=8)
        if not strategy_rows:
            status_axes.text(0.5, 0.5, "no strategies", ha="center", transform=status_axes.transAxes)

        mpos = list(range(len(measure_rows)))
        progress = [max(-50.0, min(150.0, (m.progress or 0.0) * 100)) for _, m in measure_rows]
        colours = [style(m.status).colour for _, m in measure_rows]
        measure_axes.barh(mpos, progress, color=colours)
        for y, (_, m) in zip(mpos, measure_rows, strict=True):
            if m.progress is None:
                measure_axes.text(1, y, "no reading", va="center", fontsize=font, color="#555")
            if m.expected is not None:
                # The tick marks where the measure should be by the quarter's end.
                measure_axes.plot([m.expected * 100] * 2, [y - 0.4, y + 0.4], color="black", lw=1.5)
        measure_axes.set_yticks(mpos, [name for name, _ in measure_rows], fontsize=font)
        measure_axes.invert_yaxis()
        measure_axes.axvline(100, color="#555", ls="--", lw=1)
        measure_axes.set_xlim(min(0.0, *progress) - 5 if progress else -5, 155)
        measure_axes.set_xlabel("% of the way from baseline to target (tick: expected)")
        measure_axes.set_title("Measure progress")
        if not measure_rows:
            measure_axes.text(0.5, 0.5, "no measures", ha="center", transform=measure_axes.transAxes)

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            # A title in a script the default font lacks should cost a box glyph, not the report.
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
            figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
