"""A measure's trend as inline SVG for the public site, in the page's language.

The same drawing as reports.trend (Okabe-Ito palette, readings solid with round markers and
their values, expected line dashed, target dotted) with every word translated, a <title> and a
<desc> the SVG is labelled by, and all text in a colour that passes 4.5:1. The page puts the
same numbers in a table beside it, so nothing is only in the picture.
"""

from __future__ import annotations

from html import escape

from domain.rollup import MeasureLine
from reports.site.i18n import Words
from reports.trend import ACTUAL, EXPECTED

WIDTH, HEIGHT = 420, 160
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 70, 16, 28
INK = "#1b1b1b"
TARGET = "#505050"


def chart_description(line: MeasureLine, words: Words, name: str) -> str:
    """One paragraph saying what the chart shows: first and last readings, expected now, target, status."""
    points = line.readings
    if not points:
        return words.gettext("%(name)s: no readings yet.", name=name)
    unit = " ".join(line.unit.split())
    first, last = points[0], points[-1]
    text = words.gettext(
        "%(name)s went from %(first)s in %(first_q)s to %(last)s in %(last_q)s.",
        name=name,
        first=words.with_unit(first.value, unit),
        first_q=first.quarter,
        last=words.with_unit(last.value, unit),
        last_q=last.quarter,
    )
    expected = line.series[-1].expected if line.series else None
    if expected is not None:
        text += " " + words.gettext(
            "Expected by %(quarter)s: %(value)s.",
            quarter=line.series[-1].quarter,
            value=words.with_unit(expected, unit),
        )
    if line.target is not None:
        text += " " + words.gettext(
            "Target: %(value)s by %(quarter)s.",
            value=words.with_unit(line.target, unit),
            quarter=line.target_quarter or "—",
        )
    return text


def trend_svg(line: MeasureLine, words: Words, *, ident: str, name: str) -> str:
    """The series, expected line and target as an accessible SVG ('' with fewer than two quarters)."""
    series = line.series
    if len(series) < 2 or not line.readings:
        return ""
    values = [p.value for p in series if p.value is not None] + [
        p.expected for p in series if p.expected is not None
    ]
    if line.target is not None:
        values.append(line.target)
    low, high = min(values), max(values)
    if high == low:
        high = low + 1
    inner_w, inner_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + inner_w * i / (len(series) - 1)

    def y(v: float) -> float:
        return _TOP + inner_h * (1 - (v - low) / (high - low))

    title = escape(words.gettext("Trend of %(name)s", name=name))
    # Looked up outside the f-strings below, where the catalog's extractor can see them.
    target_word, expected_word = escape(words.gettext("target")), escape(words.gettext("expected"))
    desc = escape(chart_description(line, words, name))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' class="chart" aria-labelledby="{ident}-title {ident}-desc" focusable="false">'
        f'<title id="{ident}-title">{title}</title><desc id="{ident}-desc">{desc}</desc>'
    ]
    if line.target is not None:
        ty = y(line.target)
        parts.append(
            f'<line x1="{_LEFT}" y1="{ty:.1f}" x2="{WIDTH - _RIGHT}" y2="{ty:.1f}" stroke="{TARGET}"'
            ' stroke-width="1.5" stroke-dasharray="1 3"/>'
            f'<text x="{WIDTH - _RIGHT + 4}" y="{ty + 4:.1f}" font-size="11" fill="{INK}">'
            f"{target_word} {escape(words.number(line.target))}</text>"
        )
    expected = [(i, p.expected) for i, p in enumerate(series) if p.expected is not None]
    if len(expected) >= 2:
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in expected)
        last_i, last_v = expected[-1]
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{EXPECTED}" stroke-width="2"'
            ' stroke-dasharray="6 4" stroke-linecap="square"/>'
            f'<text x="{x(last_i) + 4:.1f}" y="{y(last_v) + 14:.1f}" font-size="11" fill="{INK}">'
            f"{expected_word}</text>"
        )
    actual = [(i, p.value) for i, p in enumerate(series) if p.value is not None]
    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in actual)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{ACTUAL}" stroke-width="2.5"/>')
    for i, v in actual:
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{ACTUAL}"/>'
            f'<text x="{x(i):.1f}" y="{y(v) - 7:.1f}" font-size="11" text-anchor="middle" fill="{INK}">'
            f"{escape(words.number(v))}</text>"
        )
    for i, point in enumerate(series):
        if i in (0, len(series) - 1) or len(series) <= 6:
            parts.append(
                f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle" fill="{INK}">'
                f"{escape(point.quarter)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
