"""The quarterly DEI meeting's agenda as value types: headline numbers, what needs a decision,
measures to discuss, and how last meeting's follow-ups turned out. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Headline:
    """The quarter in five numbers."""

    items: int
    percent_complete: float
    on_time_rate: float | None
    overdue: int
    response_rate: float | None


@dataclass(frozen=True)
class AgendaItem:
    """An item the meeting should decide on, and why."""

    ref: str
    title: str
    department: str
    owner_id: str | None
    status: str
    due: date | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class AgendaMeasure:
    """A measure the meeting should discuss, and why."""

    key: str
    name: str
    department: str
    status: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class FollowUp:
    """A decision taken at an earlier meeting and how it turned out."""

    text: str
    quarter: str
    ref: str | None  # the follow-up item, if the decision made one
    owner_id: str | None
    due: date | None
    outcome: str  # done | overdue | open | dropped | recorded (no follow-up item)


@dataclass(frozen=True)
class Agenda:
    """Everything the quarterly DEI meeting needs, as of a day before it."""

    quarter: str
    meeting_date: date
    as_of: date
    headline: Headline
    decisions_needed: list[AgendaItem] = field(default_factory=list)
    measures: list[AgendaMeasure] = field(default_factory=list)
    followups: list[FollowUp] = field(default_factory=list)
    decisions: list[FollowUp] = field(default_factory=list)  # taken at this meeting so far
