"""The quarterly rollup as documents: Markdown, standalone HTML and JSON, from one jinja2 environment."""

from __future__ import annotations

import dataclasses
import html
import json
import math
from datetime import date
from functools import cache
from typing import Any

import jinja2

from domain.equity import BreakdownKind, GroupResult, gap_changes
from domain.errors import NotFinite
from domain.numbers import (
    format_change,
    format_gap,
    format_number,
    format_percent,
    format_rate,
    format_ratio,
    one_line,
)
from domain.rollup import STATUSES, MeasureBreakdown, MeasureLine, Rollup
from domain.status import STYLE, label, style
from reports.trend import alt_text, trend_svg


def _md_line(text: object) -> str:
    # Markdown passes raw HTML through, so user text like <img onerror=...> would run in a viewer;
    # as entities it shows as the text that was typed.
    return html.escape(one_line(text), quote=False)


def _md_cell(text: object) -> str:
    return _md_line(text).replace("|", "\\|")


@cache
def template_env() -> jinja2.Environment:
    """The one Jinja2 environment for rollup templates, built on first use (no I/O at import)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        cell=_md_cell,
        oneline=_md_line,
        num=format_number,
        change=format_change,
        rate=format_rate,
        percent=format_percent,
        label=label,
        gap=lambda value, points: format_gap(value, points=points),
        ratio=format_ratio,
    )
    env.globals.update(
        STATUSES=STATUSES,
        STYLE=STYLE,
        style=style,
        trend_svg=trend_svg,
        trend_alt=alt_text,
        gap_changes=gap_changes,
    )
    return env


def render_markdown(rollup: Rollup) -> str:
    """The quarterly meeting packet as Markdown."""
    return template_env().get_template("rollup.md.j2").render(r=rollup)


def render_html(rollup: Rollup) -> str:
    """The quarterly meeting packet as a standalone HTML page (user text escaped)."""
    return template_env().get_template("rollup.html.j2").render(r=rollup)


def _json_default(value: object) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _non_finite(value: object, path: str) -> tuple[str, float] | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if isinstance(value, dict):
        children: Any = value.items()
    else:
        children = enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _non_finite(child, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}")
        if found:
            return found
    return None


def _group_json(group: GroupResult, breakdown: MeasureBreakdown) -> dict[str, Any]:
    if group.suppressed:
        # Only the key and the fact: a suppressed group's numbers never leave the database.
        return {"key": group.key, "name": breakdown.name(group.key), "suppressed": True}
    data: dict[str, Any] = {"key": group.key, "name": breakdown.name(group.key), "value": group.value}
    data["gap"] = group.gap
    if breakdown.kind == BreakdownKind.REPRESENTATION:
        data["share"] = group.share
        data["index"] = group.index
    else:
        data["ratio"] = group.ratio
        data["reference"] = group.reference
    since_last = gap_changes(breakdown.current, breakdown.last).get(group.key)
    since_baseline = gap_changes(breakdown.current, breakdown.baseline).get(group.key)
    data["gap_change_since_last"] = since_last
    data["gap_change_since_baseline"] = since_baseline
    return data


def measure_json(m: MeasureLine) -> dict[str, Any]:
    """One measure as the JSON report gives it: figures, series and, when broken down, its groups."""
    data: dict[str, Any] = {
        "key": m.key,
        "name": m.name,
        "unit": m.unit,
        "kind": m.kind,
        "direction": m.direction,
        "status": m.status.value,
        "problem": m.problem,
        "baseline": m.baseline,
        "baseline_quarter": m.baseline_quarter,
        "target": m.target,
        "target_quarter": m.target_quarter,
        "target_date": m.target_date,
        "latest": m.latest,
        "latest_quarter": m.latest_quarter,
        "change": m.change,
        "progress": m.progress,
        "expected": m.expected,
        "owner_id": m.owner_id,
        "source": m.source,
        "series": [{"quarter": p.quarter, "value": p.value, "expected": p.expected} for p in m.series],
        "breakdown": None,
    }
    if (b := m.breakdown) is not None:
        widest = b.current.largest_gap
        data["breakdown"] = {
            "dimension": b.dimension,
            "name": b.dimension_name,
            "kind": b.kind,
            "reference": b.current.reference,
            "min_count": b.current.min_count,
            "largest_gap": widest.key if widest is not None else None,
            "narrowed_since_last": b.narrowed_since_last,
            "narrowed_since_baseline": b.narrowed_since_baseline,
        }
        data["groups"] = [_group_json(g, b) for g in b.current.groups]
    return data


def render_json(rollup: Rollup) -> str:
    """The rollup as JSON, for other tools; a non-finite number (inf, nan) is refused, never emitted."""
    data = dataclasses.asdict(rollup)
    data["total"] = rollup.total
    data["verified"] = rollup.verified
    data["awaiting_verification"] = rollup.awaiting_verification
    data["pending_requests"] = rollup.pending_requests
    for department, dept_data in zip(rollup.departments, data["departments"], strict=True):
        # The derived words and flags, so a consumer need not re-derive them from the fields.
        for line, line_data in zip(department.completed, dept_data["completed"], strict=True):
            line_data["verified"] = line.verified
        for request, request_data in zip(department.requests, dept_data["requests"], strict=True):
            request_data["what"] = request.what(rollup.name_of)
            request_data["requested_by_name"] = rollup.name_of(request.requested_by)
        for flag, flag_data in zip(department.stale_status, dept_data["stale_status"], strict=True):
            flag_data["reason"] = flag.reason
        for strategy, strategy_data in zip(department.strategies, dept_data["strategies"], strict=True):
            strategy_data["measures"] = [measure_json(m) for m in strategy.measures]
    if found := _non_finite(data, "rollup"):
        # Only rows stored before readings were checked can hold one; name it so it can be corrected.
        raise NotFinite(*found)
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False, allow_nan=False)
