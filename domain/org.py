"""The organisation's standing choices that rules and messages need: zone, fiscal year, calendar.

`bot/` builds one from the settings at start-up and hands it to commands and reminders, so
nothing below the process reads the environment or knows the settings class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Organisation:
    """Where the organisation is and how it keeps time; the first admins before roles exist."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/New_York"))
    fiscal_year_start_month: int = 7
    reminder_hour: int = 9
    quiet_hour: int = 18
    holidays: tuple[str, ...] = ()
    holidays_file: Path | None = None
    dei_channel: str | None = None
    admins: frozenset[str] = frozenset()
    agenda_business_days: int = 3  # the DEI meeting agenda goes out this many business days ahead
