"""Item and measure statuses, the roles people hold, and the one table of how each status looks.

Every presentation (Slack blocks, the chart, the Markdown and HTML reports) reads its emoji and
colours from `STYLE`, so a status cannot look one way in Slack and another in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ItemStatus(StrEnum):
    """The lifecycle of an action item."""

    NOT_STARTED = "not_started"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    BLOCKED = "blocked"
    DONE = "done"
    DROPPED = "dropped"

    @property
    def is_open(self) -> bool:
        """Whether the item still needs work (and chasing)."""
        return self not in (ItemStatus.DONE, ItemStatus.DROPPED)

    @property
    def label(self) -> str:
        """Human label, e.g. 'at risk'."""
        return label(self.value)


OPEN_STATUSES: tuple[str, ...] = tuple(s.value for s in ItemStatus if s.is_open)
# The order statuses are counted and charted in: open work first, settled work last.
ITEM_STATUSES: tuple[str, ...] = tuple(s.value for s in ItemStatus)


class MeasureStatus(StrEnum):
    """How a measure stands in a quarter."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    NO_DATA = "no_data"
    MET = "met"
    # Stored data the rules cannot read (say a target on the wrong side of its baseline that
    # reached the database before the check existed): shown with its reason, never a crash.
    NEEDS_ATTENTION = "needs_attention"

    @property
    def label(self) -> str:
        """Human label, e.g. 'off track'."""
        return label(self.value)


class Role(StrEnum):
    """What a person may do: a member owns items; a coordinator runs one department's plan; the
    citywide DEI coordinator runs the quarterly work of every department; an admin runs the bot."""

    MEMBER = "member"
    COORDINATOR = "coordinator"
    DEI = "dei"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        """Human label, e.g. 'DEI coordinator'."""
        return {"dei": "citywide DEI coordinator", "admin": "REAP admin"}.get(self.value, self.value)


class Direction(StrEnum):
    """Which way a performance measure should move."""

    INCREASE = "increase"
    DECREASE = "decrease"
    MAINTAIN = "maintain"


def label(status: str) -> str:
    """The human label of an item or measure status, e.g. 'at risk'."""
    return status.replace("_", " ")


@dataclass(frozen=True)
class Style:
    """How one status looks everywhere: Slack emoji, Unicode symbol, and colours with a shape.

    Colours follow the government convention (green, amber, red) and are never the only signal:
    each style also has a symbol and a text label.
    """

    slack_emoji: str
    symbol: str
    colour: str
    text_colour: str


_GREEN = Style(":large_green_circle:", "🟢", "#2e7d32", "#ffffff")
_AMBER = Style(":large_yellow_circle:", "🟡", "#f9a825", "#1b1b1b")
_RED = Style(":red_circle:", "🔴", "#c62828", "#ffffff")
_DONE = Style(":white_check_mark:", "✅", "#1565c0", "#ffffff")
_NEUTRAL = Style(":white_circle:", "⚪", "#e0e0e0", "#1b1b1b")

STYLE: dict[str, Style] = {
    "not_started": _NEUTRAL,
    "on_track": _GREEN,
    "at_risk": _AMBER,
    "off_track": _RED,
    "blocked": _RED,
    "done": _DONE,
    "dropped": Style(":heavy_minus_sign:", "➖", "#757575", "#ffffff"),
    "met": _DONE,
    "no_data": Style(":grey_question:", "❔", "#e0e0e0", "#1b1b1b"),
    "needs_attention": Style(":warning:", "⚠", "#6a1b9a", "#ffffff"),
}


def style(status: str) -> Style:
    """The style of an item or measure status (an unknown one looks neutral, never fails)."""
    return STYLE.get(status, _NEUTRAL)
