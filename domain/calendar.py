"""Business days and local wall-clock instants: the pure calendar arithmetic under the policy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays as holidays_lib
import yaml

from domain.errors import ReapError

_ONE_DAY = timedelta(days=1)
_YAML_SUFFIXES = (".yaml", ".yml")


class CalendarError(ReapError, ValueError):
    """A holiday spec or holiday file cannot be read; the message names the spec or file:line."""

    def __init__(self, source: str, problem: str, *, line: int | None = None) -> None:
        self.source = source
        self.problem = problem
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


class NaiveInstantError(ValueError):
    """A naive datetime was given where an instant (aware datetime) is required."""

    def __init__(self, value: datetime) -> None:
        self.value = value
        super().__init__(f"{value.isoformat()} has no time zone; pass an aware datetime")


@dataclass(frozen=True)
class BusinessCalendar:
    """Which days are working days: not a weekend day and not a holiday."""

    holidays: frozenset[date]
    weekend: frozenset[int] = frozenset({5, 6})
    names: Mapping[date, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "weekend", frozenset(self.weekend))
        if not self.weekend <= frozenset(range(7)):
            raise CalendarError("weekend", f"weekdays are 0-6 (Monday=0), not {sorted(self.weekend)}")
        # With every weekday off no day would ever be a business day and rolling forward never ends.
        if len(self.weekend) == 7:
            raise CalendarError("weekend", "at least one weekday must be a working day")

    def is_business_day(self, day: date) -> bool:
        """Whether `day` is a working day."""
        return day.weekday() not in self.weekend and day not in self.holidays

    def on_or_after(self, day: date) -> date:
        """`day` itself if it is a business day, else the next business day."""
        while not self.is_business_day(day):
            day += _ONE_DAY
        return day

    def add_business_days(self, day: date, n: int) -> date:
        """The n-th business day after `day` (before it if n < 0); n == 0 is on_or_after(day)."""
        if n == 0:
            return self.on_or_after(day)
        step = _ONE_DAY if n > 0 else -_ONE_DAY
        remaining = abs(n)
        while remaining:
            day += step
            if self.is_business_day(day):
                remaining -= 1
        return day

    def business_days_between(self, start: date, end: date) -> int:
        """Business days in (start, end]; if end < start, minus those in (end, start]."""
        if end < start:
            return -self.business_days_between(end, start)
        count = 0
        day = start + _ONE_DAY
        while day <= end:
            if self.is_business_day(day):
                count += 1
            day += _ONE_DAY
        return count

    def name(self, day: date) -> str | None:
        """The holiday's name on `day`, if it is a named holiday."""
        return self.names.get(day)


def build_calendar(specs: Sequence[str], *, extra_file: Path | None = None, years: range) -> BusinessCalendar:
    """A Saturday/Sunday-weekend calendar from specs ("US-PA", "US", "none") plus a city file.

    Holidays are known only for `years`, so build it to cover every date it will be asked about.
    """
    names: dict[date, list[str]] = {}
    for day, name in _spec_holidays(specs, years):
        names.setdefault(day, []).append(name)
    if extra_file is not None:
        for day, name in read_holiday_file(extra_file):
            names.setdefault(day, []).append(name)
    joined = {day: "; ".join(dict.fromkeys(n for n in parts if n)) for day, parts in names.items()}
    return BusinessCalendar(holidays=frozenset(names), names=joined)


@lru_cache(maxsize=8)
def calendar_for_year(specs: tuple[str, ...], extra_file: Path | None, year: int) -> BusinessCalendar:
    """The calendar serving dates around `year`: two years back (overdue look-back), two ahead.

    Cached, so a process builds each year's calendar once however many callers ask.
    """
    return build_calendar(specs, extra_file=extra_file, years=range(year - 2, year + 3))


def _spec_holidays(specs: Sequence[str], years: range) -> Iterable[tuple[date, str]]:
    for raw in specs:
        spec = raw.strip()
        if spec.lower() == "none":
            continue
        country, _, subdiv = spec.upper().partition("-")
        if not (len(country) == 2 and country.isalpha()) or (subdiv == "" and "-" in spec):
            raise CalendarError(repr(raw), "is not a holiday calendar such as US-PA, US or none")
        try:
            table = holidays_lib.country_holidays(country, subdiv=subdiv or None, years=years)
        except NotImplementedError as exc:
            raise CalendarError(repr(raw), f"unknown holiday calendar ({exc})") from None
        yield from table.items()


def read_holiday_file(path: Path) -> list[tuple[date, str]]:
    """Extra closure dates from a YAML list of {date, name} or text lines "YYYY-MM-DD name"."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(str(path), f"cannot read holiday file ({exc})") from None
    if path.suffix.lower() in _YAML_SUFFIXES:
        return _read_yaml_holidays(str(path), text)
    return _read_text_holidays(str(path), text)


def _read_text_holidays(source: str, text: str) -> list[tuple[date, str]]:
    found: list[tuple[date, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        first, _, rest = content.partition(" ")
        found.append((_parse_day(first, source, number), rest.strip()))
    return found


def _read_yaml_holidays(source: str, text: str) -> list[tuple[date, str]]:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise CalendarError(source, f"not valid YAML ({exc})", line=line) from None
    if data is None or root is None:
        return []
    if isinstance(data, dict) and isinstance(root, yaml.MappingNode) and "holidays" in data:
        data = data["holidays"]
        root = next(value for key, value in root.value if key.value == "holidays")
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise CalendarError(source, "expected a list of {date, name} entries", line=root.start_mark.line + 1)
    found: list[tuple[date, str]] = []
    for entry, node in zip(data, root.value, strict=True):
        line = node.start_mark.line + 1
        if isinstance(entry, dict):
            if "date" not in entry:
                raise CalendarError(source, "entry has no 'date'", line=line)
            unknown = sorted(str(key) for key in entry if key not in ("date", "name"))
            if unknown:
                raise CalendarError(source, f"unknown field(s) {', '.join(unknown)}", line=line)
            found.append((_as_day(entry["date"], source, line), str(entry.get("name") or "")))
        else:
            found.append((_as_day(entry, source, line), ""))
    return found


def _as_day(value: object, source: str, line: int) -> date:
    # YAML turns an unquoted 2026-12-24 into a date already; a quoted one stays text.
    if isinstance(value, datetime):
        raise CalendarError(source, f"{value} has a time of day; give just the date", line=line)
    if isinstance(value, date):
        return value
    return _parse_day(str(value), source, line)


def _parse_day(text: str, source: str, line: int) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CalendarError(source, f"'{text}' is not a date like 2026-12-24", line=line) from None


def local_reminder_instant(day: date, hour: int, zone: ZoneInfo, *, minute: int = 0) -> datetime:
    """The UTC instant of `hour`:`minute` local on `day`; a skipped time moves to the gap's end."""
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)  # fold=0: first
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # The wall time is in a spring-forward gap. fold=0 reads it with the offset from before the
    # transition, which lands after the transition; fold=1 lands before it. The first valid
    # instant at or after the wall time is the transition itself, found by bisecting seconds.
    low = local.replace(fold=1).astimezone(UTC)
    high = instant
    wall = local.replace(tzinfo=None)
    while (high - low) > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def local_date_and_hour(now: datetime, zone: ZoneInfo) -> tuple[date, int]:
    """The local calendar date and hour in `zone` at the instant `now`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise NaiveInstantError(now)
    local = now.astimezone(zone)
    return local.date(), local.hour
