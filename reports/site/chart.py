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
from reports.trend import WIDTH, draw
from reports.trend import Words as ChartWords

HEIGHT = 160


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
    title = escape(words.gettext("Trend of %(name)s", name=name))
    desc = escape(chart_description(line, words, name))
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' class="chart" aria-labelledby="{ident}-title {ident}-desc" focusable="false">'
        f'<title id="{ident}-title">{title}</title><desc id="{ident}-desc">{desc}</desc>'
    )
    # Looked up here, where the catalog's extractor can see them.
    chart_words = ChartWords(
        target=words.gettext("target"), expected=words.gettext("expected"), number=words.number
    )
    return draw(line, head=head, words=chart_words, height=HEIGHT)
