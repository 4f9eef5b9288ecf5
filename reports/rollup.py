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

from domain.errors import NotFinite
from domain.numbers import (
    format_change,
    format_number,
    format_percent,
    format_rate,
    one_line,
)
from domain.rollup import STATUSES, Rollup
from domain.status import STYLE, label, style


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
    )
    env.globals.update(STATUSES=STATUSES, STYLE=STYLE, style=style)
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


def render_json(rollup: Rollup) -> str:
    """The rollup as JSON, for other tools; a non-finite number (inf, nan) is refused, never emitted."""
    data = dataclasses.asdict(rollup)
    data["total"] = rollup.total
    if found := _non_finite(data, "rollup"):
        # Only rows stored before readings were checked can hold one; name it so it can be corrected.
        raise NotFinite(*found)
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False, allow_nan=False)
