"""The quarterly DEI meeting agenda as documents for the meeting packet: Markdown and HTML."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from domain.agenda import Agenda
from reports.rollup import template_env


def _namer(names: Mapping[str, str]) -> Callable[[str | None], str]:
    def name(user_id: str | None) -> str:
        if not user_id:
            return "no owner"
        return names.get(user_id) or user_id

    return name


def render_agenda_markdown(agenda: Agenda, *, names: Mapping[str, str]) -> str:
    """The agenda as Markdown (people by name)."""
    return template_env().get_template("agenda.md.j2").render(a=agenda, name=_namer(names))


def render_agenda_html(agenda: Agenda, *, names: Mapping[str, str]) -> str:
    """The agenda as a standalone HTML page (user text escaped)."""
    return template_env().get_template("agenda.html.j2").render(a=agenda, name=_namer(names))
