"""Measures and the scoring matrix in Slack: the measure list, a measure's trend and gaps, scores, ranking."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.equity import BreakdownKind
from domain.numbers import format_gap, format_number, format_ratio, one_line, with_unit
from domain.rollup import MeasureLine, RankedLine
from domain.scoring import Criterion, Score
from domain.status import label, style
from domain.text import NOTE_MAX
from messages.primitives import (
    MAX_VIEW_BLOCKS,
    Block,
    build_list_sections,
    clip,
    context,
    escape,
    plain,
    section,
)
from storage.queries.rollup import PlacedMeasure


def measure_value(line: MeasureLine, value: float | None) -> str:
    """A value of this measure with its unit, escaped for mrkdwn."""
    return escape(with_unit(value, one_line(line.unit)))


def trend_text(line: MeasureLine) -> str:
    """The series as a sparkline with its first and last values and the value expected now."""
    points = line.readings
    if not line.sparkline:
        return ""
    expected = line.series[-1].expected
    tail = (
        f"; expected {measure_value(line, expected)} by {line.series[-1].quarter}"
        if expected is not None
        else ""
    )
    return (
        f"trend {line.sparkline} {measure_value(line, points[0].value)} ({points[0].quarter})"
        f" → {measure_value(line, points[-1].value)} ({points[-1].quarter}){tail}"
    )


def gap_text(line: MeasureLine) -> str:
    """The largest gap to parity and whether it narrowed since last quarter and since baseline, in words."""
    b = line.breakdown
    if b is None:
        return ""
    widest = b.current.largest_gap
    if widest is None:
        return f"by {escape(b.dimension_name)}: no gap can be shown yet"
    points = b.kind == BreakdownKind.REPRESENTATION
    figure = format_ratio(widest.index if points else widest.ratio)
    what = "index" if points else "ratio"
    trend = {True: "narrowed", False: "widened or held", None: "no earlier figure"}
    return (
        f"largest gap by {escape(b.dimension_name)}: {escape(b.name(widest.key))}"
        f" {format_gap(widest.gap, points=points)} ({what} {figure});"
        f" since last quarter: {trend[b.narrowed_since_last]};"
        f" since baseline: {trend[b.narrowed_since_baseline]}"
    )


def _measure_line_text(placed: PlacedMeasure) -> str:
    m = placed.line
    owner = f"<@{m.owner_id}>" if m.owner_id else "no owner"
    latest = measure_value(m, m.latest) + (f" ({m.latest_quarter})" if m.latest_quarter else "")
    due = f" by {m.target_quarter}" if m.target_quarter else ""
    status = f"{style(m.status).slack_emoji} {label(m.status)}"
    if m.problem:
        status += f" ({escape(one_line(m.problem))})"
    text = (
        f"• *{escape(one_line(m.name))}* `{escape(m.key)}` · {owner}\n"
        f"   latest {latest} · target {measure_value(m, m.target)}{due} · {status}"
    )
    extra = [t for t in (trend_text(m), gap_text(m)) if t]
    if extra:
        text += "\n   " + " · ".join(extra)
    return text


def build_measure_list(measures: Sequence[PlacedMeasure], *, title: str, quarter: str) -> list[Block]:
    """Every measure with its key, owner, latest value, target and status, grouped by strategy."""
    if not measures:
        return [section(f"*{escape(title)}*"), context("No measures here yet. A plan file declares them.")]
    blocks: list[Block] = [
        section(f"*{escape(title)}* · {len(measures)} at {quarter}"),
        context("Record one with `/reap measure <key> <value>`."),
    ]
    groups: dict[tuple[str, str], list[str]] = {}
    for placed in measures:
        groups.setdefault((placed.department, placed.strategy), []).append(_measure_line_text(placed))
    for (department, strategy), lines in groups.items():
        blocks += build_list_sections(f"{department} · {strategy}", lines)
    return blocks


@dataclass(frozen=True)
class ScoreCard:
    """An item's scores against its plan's criteria, with the total and the most it could score."""

    ref: str
    title: str
    criteria: Sequence[Criterion]
    scores: Sequence[Score]
    total: float
    top: float


def build_score_reply(card: ScoreCard) -> list[Block]:
    """What an item now scores, criterion by criterion."""
    by_key = {s.criterion: s for s in card.scores}
    lines = []
    for criterion in card.criteria:
        score = by_key.get(criterion.key)
        if score is None:
            lines.append(f"• {escape(criterion.question)}: not scored yet")
            continue
        level = criterion.levels[score.level] if score.level < len(criterion.levels) else str(score.level)
        lines.append(
            f"• {escape(criterion.question)}: {score.level} {escape(level)}"
            f" × {format_number(score.weight)} = {format_number(score.level * score.weight)}"
        )
    head = (
        f"*{escape(card.ref)}* {escape(one_line(card.title))} scores"
        f" *{format_number(card.total)}* of {format_number(card.top)}"
    )
    return [section(head), *build_list_sections("Equity scoring matrix", lines)]


SCORE_MODAL = "score_item_modal"
# A criterion's input block is named after it, so the form's answer says which criterion it scores.
CRITERION_BLOCK = "criterion:"
# Slack's limits: 100 options in a select, 100 blocks in a view (the heading and the note take two).
MAX_OPTIONS = 100
MAX_CRITERIA_SHOWN = MAX_VIEW_BLOCKS - 3


def build_score_modal(card: ScoreCard, *, metadata: dict[str, Any]) -> dict[str, Any]:
    """The Score form: one choice of level per criterion, each set to the item's current level."""
    by_key = {s.criterion: s for s in card.scores}
    shown = list(card.criteria)[:MAX_CRITERIA_SHOWN]
    blocks: list[Block] = [
        section(
            f"*{escape(card.ref)}* {escape(clip(one_line(card.title), 300))} scores"
            f" *{format_number(card.total)}* of {format_number(card.top)}. Choose a level for each"
            " criterion to score; a criterion left empty keeps no score."
        )
    ]
    for criterion in shown:
        options = [
            {"text": plain(f"{level} {name}"), "value": str(level)}
            for level, name in enumerate(criterion.levels[:MAX_OPTIONS])
        ]
        element: dict[str, Any] = {"type": "static_select", "action_id": "value", "options": options}
        score = by_key.get(criterion.key)
        if score is not None and score.level < len(options):
            element["initial_option"] = options[score.level]
        blocks.append(
            {
                "type": "input",
                "block_id": f"{CRITERION_BLOCK}{criterion.key}",
                "optional": True,
                "label": plain(criterion.question, 2000),
                "hint": plain(f"Weight {format_number(criterion.weight)}", 2000),
                "element": element,
            }
        )
    if len(card.criteria) > len(shown):
        blocks.append(
            context(
                f"The form shows the first {len(shown)} of {len(card.criteria)} criteria; score the rest"
                f" with `/reap score {escape(card.ref)} criterion=level`."
            )
        )
    blocks.append(
        {
            "type": "input",
            "block_id": "note",
            "optional": True,
            "label": plain("Why these levels (a note kept with the scores)", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": "value",
                "multiline": True,
                "max_length": NOTE_MAX,
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": SCORE_MODAL,
        "title": plain(f"Score {card.ref}", 24),
        "submit": plain("Score", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({**metadata, "ref": card.ref})[:3000],
        "blocks": blocks,
    }


def build_ranked_list(ranked: Sequence[RankedLine], *, title: str, unscored: int) -> list[Block]:
    """Candidates by weighted score, highest first; ties go to the earlier due date."""
    blocks: list[Block] = [section(f"*{escape(title)}* · by equity score, ties by due date")]
    if not ranked:
        blocks.append(context("Nothing is scored yet. Score a candidate in a form with `/reap score <ref>`."))
        return blocks
    lines = [
        f"{r.rank}. *{escape(r.ref)}* {escape(one_line(r.title))} · score {format_number(r.score)}"
        f" of {format_number(r.top)} · due {r.due.isoformat() if r.due else 'no date'}"
        f" · {style(r.status).slack_emoji} {label(r.status)}"
        for r in ranked
    ]
    blocks += build_list_sections("Ranked", lines)
    if unscored:
        blocks.append(context(f"{unscored} more not scored yet: `/reap score <ref>` opens the Score form."))
    return blocks
