"""The quarterly check-in window: it opens and is due a set number of business days before the DEI meeting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from domain.calendar import BusinessCalendar

OPEN_BEFORE_MEETING = 10  # business days
DUE_BEFORE_MEETING = 3  # business days


@dataclass(frozen=True)
class Window:
    """When a quarter's check-in opens and is due, derived from the DEI meeting date."""

    opens_on: date
    due_on: date
    meeting: date


def checkin_window(meeting: date, calendar: BusinessCalendar) -> Window:
    """Opens 10 business days before the meeting, due 3 business days before it."""
    return Window(
        opens_on=calendar.add_business_days(meeting, -OPEN_BEFORE_MEETING),
        due_on=calendar.add_business_days(meeting, -DUE_BEFORE_MEETING),
        meeting=meeting,
    )


# The outbox kind of a check-in prompt: the tick sends it, and the rollup counts as asked only
# the owners it reached.
CHECKIN_PROMPT = "checkin_prompt"

# The DEI meeting's agenda goes out this many business days before the meeting (REAP_AGENDA_DAYS).
AGENDA_BEFORE_MEETING = 3
