"""A measure's trend as a small inline SVG for the HTML report: readings against the expected line.

Readable without colour: the readings are a solid line with round markers and their values
written beside them; the expected line is dashed with square ends and labelled. The palette is
Okabe-Ito (safe for the common colour-vision deficiencies), and every chart carries alt text
saying what it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from domain.numbers import format_number
from domain.rollup import MeasureLine

ACTUAL = "#0072B2"  # Okabe-Ito blue
EXPECTED = "#D55E00"  # Okabe-Ito vermillion
TARGET = "#505050"
INK = "#1b1b1b"  # every label: passes 4.5:1 on white
WIDTH, HEIGHT = 420, 150
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 70, 16, 28


def alt_text(line: MeasureLine) -> str:
    """One sentence saying what the chart shows, for screen readers and for the figure caption."""
    if not line.readings:
        return f"{line.name}: no readings yet."
    return f"{line.name}: {line.trend_words}. Status: {line.status.label}."


@dataclass(frozen=True)
class Words:
    """The chart's words and numbers, so a page can draw it in its own language."""

    target: str = "target"
    expected: str = "expected"
    number: Callable[[float], str] = format_number


def draw(line: MeasureLine, *, head: str, words: Words = Words(), height: int = HEIGHT) -> str:
    """The series, expected line and target as SVG after `head` (the opening tag and its labels).

    '' with fewer than two quarters. All text is in INK, which passes 4.5:1 on white; lines keep
    the palette and differ by style too, so nothing depends on colour alone.
    """
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
    inner_w, inner_h = WIDTH - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + inner_w * i / (len(series) - 1)

    def y(v: float) -> float:
        return _TOP + inner_h * (1 - (v - low) / (high - low))

    parts = [head]
    if line.target is not None:
        ty = y(line.target)
        parts.append(
            f'<line x1="{_LEFT}" y1="{ty:.1f}" x2="{WIDTH - _RIGHT}" y2="{ty:.1f}" stroke="{TARGET}"'
            ' stroke-width="1.5" stroke-dasharray="1 3"/>'
            f'<text x="{WIDTH - _RIGHT + 4}" y="{ty + 4:.1f}" font-size="11" fill="{INK}">'
            f"{escape(words.target)} {escape(words.number(line.target))}</text>"
        )
    expected = [(i, p.expected) for i, p in enumerate(series) if p.expected is not None]
    if len(expected) >= 2:
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in expected)
        last_i, last_v = expected[-1]
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{EXPECTED}" stroke-width="2"'
            ' stroke-dasharray="6 4" stroke-linecap="square"/>'
            f'<text x="{x(last_i) + 4:.1f}" y="{y(last_v) + 14:.1f}" font-size="11" fill="{INK}">'
            f"{escape(words.expected)}</text>"
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
                f'<text x="{x(i):.1f}" y="{height - 8}" font-size="10" text-anchor="middle" fill="{INK}">'
                f"{escape(point.quarter)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def trend_svg(line: MeasureLine) -> str:
    """The trend as an accessible inline SVG for the HTML report, labelled by its alt text."""
    label = escape(alt_text(line))
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{HEIGHT}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{label}"><title>{label}</title>'
    )
    return draw(line, head=head)
