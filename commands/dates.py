"""Read the dates people type after `/reap ... due` or `snooze`, relative to their own `today`.

Choices worth knowing (they are part of the contract and tested):

* `3/31` is US order (month/day). Without a year it means the next March 31 on or after today.
* `friday` is the next Friday on or after tomorrow: on a Friday it means a week from today.
* `next friday` is the Friday of next week, where weeks run Monday to Sunday. On a Sunday the
  coming week is "next week", so `next friday` and `friday` agree there.
* `end of year` and `end of fiscal year` are both the end of the fiscal year (the plan's
  year), `end of quarter` the end of the fiscal quarter containing today.
* Past dates are fine for data entry (`2026-01-15`), but there is no `yesterday` and no
  negative count (`in -3 days`); snoozing and pausing need a day after today.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from domain.fiscal import FiscalQuarter

MIN_YEAR = 1900
MAX_YEAR = 2999

ACCEPTED_FORMS = (
    "Dates can be 2027-03-31, 3/31, 3/31/2027, Mar 31, 31 Mar, Mar 31 2027, today, tomorrow, "
    "friday, next friday, in 2 weeks, 3d, end of month, end of quarter, end of year, "
    "FY2027-Q3 or Q3."
)

_MONTHS = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}
_WEEKDAYS = {
    "mon": 0,
    "monday": 0,
    "tue": 1,
    "tues": 1,
    "tuesday": 1,
    "wed": 2,
    "weds": 2,
    "wednesday": 2,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "thursday": 3,
    "fri": 4,
    "friday": 4,
    "sat": 5,
    "saturday": 5,
    "sun": 6,
    "sunday": 6,
}
_UNIT_DAYS = {"d": 1, "day": 1, "days": 1, "w": 7, "wk": 7, "wks": 7, "week": 7, "weeks": 7}
_UNIT_MONTHS = {"mo", "mos", "month", "months"}
_UNITS = "days|day|d|weeks|week|wks|wk|w|months|month|mos|mo"

# re.ASCII keeps `\d` to 0-9, so Arabic-Indic or full-width digits are not silently accepted.
_A = re.ASCII
_ISO = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})", _A)
_US = re.compile(r"(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?", _A)
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_NAMES = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_MONTH_DAY = re.compile(rf"({_MONTH_NAMES}) (\d{{1,2}})(?:st|nd|rd|th)?(?: (\d{{4}}))?", _A)
_DAY_MONTH = re.compile(rf"(\d{{1,2}})(?:st|nd|rd|th)? ({_MONTH_NAMES})(?: (\d{{4}}))?", _A)
_WEEKDAY = re.compile(rf"(next )?({_WEEKDAY_NAMES})", _A)
_COUNT = re.compile(rf"(?:in )?(\d{{1,4}}) ?({_UNITS})", _A)
_WORD_COUNT = re.compile(rf"(?:in )?(a|an|one) ({_UNITS})", _A)
_NEGATIVE = re.compile(rf"(?:in )?-\s*\d+ ?({_UNITS})", _A)
_END_OF = re.compile(r"(?:end of|eo)(?: the| this)? ?(.+)", _A)
_FY_QUARTER = re.compile(r"fy ?(\d{4}) ?-? ?q([1-4])", _A)
_FY = re.compile(r"fy ?(\d{4})", _A)
_QUARTER = re.compile(r"q([1-4])", _A)


class DateError(ValueError):
    """Text that is not a date we can read; the message lists the forms we accept."""

    def __init__(self, text: str, reason: str | None = None, *, problem: str | None = None) -> None:
        self.text = text
        self.reason = reason
        if problem is None:
            detail = f" ({reason})" if reason else ""
            problem = f'I couldn\'t read "{snippet(text)}" as a date{detail}. {ACCEPTED_FORMS}'
        self.problem = problem
        super().__init__(problem)


def snippet(text: str, limit: int = 40) -> str:
    """Shorten user text for quoting it back in a message, on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_date(text: str, *, today: date, fiscal_start_month: int = 7) -> date:
    """Read a due date written in any accepted form; raise DateError otherwise."""
    if not 1 <= fiscal_start_month <= 12:
        raise ValueError(f"fiscal_start_month must be 1-12, not {fiscal_start_month}")
    words = _normalise(text)
    if not words:
        raise DateError(text, "no date was given")
    result = _read(words, text, today, fiscal_start_month)
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        raise DateError(text, f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
    return result


def parse_duration_or_date(text: str, *, today: date, fiscal_start_month: int = 7) -> date:
    """Read a snooze length (`1d`, `2 days`, `1w`) or a date; the result must be after today."""
    result = parse_date(text, today=today, fiscal_start_month=fiscal_start_month)
    if result <= today:
        raise DateError(
            text,
            "it is not after today",
            problem=f'"{snippet(text)}" is {result.isoformat()}; pick a day after today'
            f" ({today.isoformat()})",
        )
    return result


def _add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (Jan 31 + 1 -> Feb 28)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise DateError(f"{months} months", f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _normalise(text: str) -> str:
    lowered = text.lower().replace(",", " ")
    # "Mar. 31" and "Sept." carry a period we do not need.
    lowered = re.sub(r"(?<=[a-z])\.", " ", lowered)
    return " ".join(lowered.split())


def _read(words: str, text: str, today: date, start_month: int) -> date:
    if words == "today":
        return today
    if words == "tomorrow":
        return today + timedelta(days=1)
    if match := _ISO.fullmatch(words):
        return _calendar_date(text, int(match[1]), int(match[2]), int(match[3]))
    if match := _US.fullmatch(words):
        year = _year(match[3]) if match[3] else None
        return _month_day(text, int(match[1]), int(match[2]), year, today)
    if match := _COUNT.fullmatch(words):
        return _shift(text, today, int(match[1]), match[2])
    if match := _WORD_COUNT.fullmatch(words):
        return _shift(text, today, 1, match[2])
    if _NEGATIVE.fullmatch(words):
        raise DateError(text, "counts cannot be negative; write a day after today")
    if match := _END_OF.fullmatch(words):
        return _end_of(text, match[1], today, start_month)
    if (quarter := _quarter(text, words, today, start_month)) is not None:
        return quarter.end
    if match := _MONTH_DAY.fullmatch(words):
        year = int(match[3]) if match[3] else None
        return _month_day(text, _MONTHS[match[1]], int(match[2]), year, today)
    if match := _DAY_MONTH.fullmatch(words):
        year = int(match[3]) if match[3] else None
        return _month_day(text, _MONTHS[match[2]], int(match[1]), year, today)
    if match := _WEEKDAY.fullmatch(words):
        return _weekday(today, _WEEKDAYS[match[2]], following_week=bool(match[1]))
    if words == "yesterday":
        raise DateError(text, "write the date itself, like 3/31, for a day in the past")
    raise DateError(text)


def _year(digits: str) -> int:
    return 2000 + int(digits) if len(digits) == 2 else int(digits)


def _calendar_date(text: str, year: int, month: int, day: int) -> date:
    if not 1 <= month <= 12:
        raise DateError(text, f"{month} is not a month")
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise DateError(text, f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise DateError(text, f"{calendar.month_name[month]} {year} has no day {day}")
    return date(year, month, day)


def _month_day(text: str, month: int, day: int, year: int | None, today: date) -> date:
    if year is not None:
        return _calendar_date(text, year, month, day)
    if not 1 <= month <= 12:
        raise DateError(text, f"{month} is not a month")
    # February 29 exists in leap years only; every other month has a fixed longest length.
    longest = 29 if month == 2 else calendar.monthrange(2001, month)[1]
    if not 1 <= day <= longest:
        raise DateError(text, f"{calendar.month_name[month]} has no day {day}")
    # Eight years always reach the next leap year, even across a skipped one like 2100.
    for year_ahead in range(today.year, today.year + 9):
        if day <= calendar.monthrange(year_ahead, month)[1]:
            candidate = date(year_ahead, month, day)
            if candidate >= today:
                return candidate
    raise DateError(text)  # unreachable for valid month/day; kept so every path is a DateError


def _shift(text: str, today: date, count: int, unit: str) -> date:
    if unit in _UNIT_MONTHS:
        try:
            return _add_months(today, count)
        except DateError as err:
            raise DateError(text, err.reason) from None
    try:
        return today + timedelta(days=count * _UNIT_DAYS[unit])
    except OverflowError:
        raise DateError(text, "that is too far away") from None


def _weekday(today: date, weekday: int, *, following_week: bool) -> date:
    if following_week:
        next_monday = today + timedelta(days=7 - today.weekday())
        return next_monday + timedelta(days=weekday)
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _end_of(text: str, what: str, today: date, start_month: int) -> date:
    current = FiscalQuarter.containing(today, start_month)
    if what in ("month", "m"):
        return date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
    if what in ("quarter", "fiscal quarter", "q"):
        return current.end
    if what in ("year", "fiscal year", "fy", "y"):
        return FiscalQuarter(current.fiscal_year, 4, start_month).end
    if (quarter := _quarter(text, what, today, start_month)) is not None:
        return quarter.end
    raise DateError(text)


def _quarter(text: str, words: str, today: date, start_month: int) -> FiscalQuarter | None:
    """A quarter label (`FY2027-Q3`, `Q3`) or fiscal year (`FY2027`), or None if it is neither."""
    if match := _FY_QUARTER.fullmatch(words):
        return FiscalQuarter(_fiscal_year(text, match[1]), int(match[2]), start_month)
    if match := _FY.fullmatch(words):
        return FiscalQuarter(_fiscal_year(text, match[1]), 4, start_month)
    if match := _QUARTER.fullmatch(words):
        current = FiscalQuarter.containing(today, start_month)
        return FiscalQuarter(current.fiscal_year, int(match[1]), start_month)
    return None


def _fiscal_year(text: str, digits: str) -> int:
    year = int(digits)
    # A fiscal year's last day can fall in the calendar year before it is named for.
    if not MIN_YEAR + 1 <= year <= MAX_YEAR:
        raise DateError(text, f"the fiscal year must be between {MIN_YEAR + 1} and {MAX_YEAR}")
    return year
