"""The business calendar skips weekends and holidays, and local reminder times survive DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import (
    BusinessCalendar,
    CalendarError,
    NaiveInstantError,
    build_calendar,
    local_date_and_hour,
    local_reminder_instant,
    read_holiday_file,
)

NEW_YORK = ZoneInfo("America/New_York")
D = date.fromisoformat


@cache
def pa_calendar() -> BusinessCalendar:
    """The US-PA calendar for 2026-2028, built once (holidays takes a moment to compute)."""
    return build_calendar(["US-PA"], years=range(2026, 2029))


@pytest.fixture
def pa() -> BusinessCalendar:
    """The US-PA holiday calendar with a Saturday/Sunday weekend."""
    return pa_calendar()


# --- business days ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2027-03-31", True),  # an ordinary Wednesday
        ("2027-04-03", False),  # Saturday
        ("2027-04-04", False),  # Sunday
        ("2026-01-01", False),  # New Year's Day
        ("2026-06-19", False),  # Juneteenth
        ("2026-07-03", False),  # Independence Day observed (the 4th is a Saturday)
        ("2026-09-07", False),  # Labor Day
        ("2026-11-26", False),  # Thanksgiving
        ("2026-11-27", False),  # Day after Thanksgiving, a Pennsylvania holiday
        ("2026-12-25", False),  # Christmas
        ("2027-07-05", False),  # Independence Day observed (the 4th is a Sunday)
        ("2027-12-31", False),  # New Year's Day 2028 observed in 2027
        ("2028-02-29", True),  # leap day, a Tuesday
        ("2026-12-24", True),  # Christmas Eve is a working day unless the city file says so
    ],
)
def test_business_days_follow_the_pennsylvania_calendar(
    pa: BusinessCalendar, day: str, expected: bool
) -> None:
    assert pa.is_business_day(D(day)) is expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2027-03-31", "2027-03-31"),  # a business day stays put
        ("2027-04-03", "2027-04-05"),  # Saturday rolls to Monday
        ("2026-09-07", "2026-09-08"),  # Labor Day Monday rolls to Tuesday
        ("2026-11-26", "2026-11-30"),  # Thanksgiving rolls past Friday and the weekend
        ("2027-07-03", "2027-07-06"),  # Saturday, Sunday and the observed Monday
        ("2027-12-31", "2028-01-03"),  # observed New Year's Day, then the weekend
    ],
)
def test_on_or_after_rolls_forward_to_the_next_business_day(
    pa: BusinessCalendar, day: str, expected: str
) -> None:
    assert pa.on_or_after(D(day)) == D(expected)


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        ("2027-03-31", 1, "2027-04-01"),
        ("2027-04-02", 1, "2027-04-05"),  # Friday + 1 is Monday
        ("2027-04-05", -1, "2027-04-02"),  # Monday - 1 is Friday
        ("2027-04-03", -1, "2027-04-02"),  # the business day before a Saturday
        ("2027-04-03", 1, "2027-04-05"),
        ("2027-04-03", 0, "2027-04-05"),  # zero rolls forward
        ("2027-03-31", 0, "2027-03-31"),
        ("2026-11-30", -1, "2026-11-25"),  # back over the Thanksgiving weekend
        ("2026-11-25", 1, "2026-11-30"),
        ("2026-09-04", 1, "2026-09-08"),  # over Labor Day
        ("2026-12-31", 3, "2027-01-06"),  # over New Year's Day into the new year
        ("2027-03-31", 10, "2027-04-14"),
        ("2027-04-14", -10, "2027-03-31"),
    ],
)
def test_add_business_days_counts_only_business_days(
    pa: BusinessCalendar, day: str, n: int, expected: str
) -> None:
    assert pa.add_business_days(D(day), n) == D(expected)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2027-03-31", "2027-03-31", 0),
        ("2027-03-31", "2027-04-01", 1),
        ("2027-04-02", "2027-04-05", 1),  # the weekend counts for nothing
        ("2027-04-03", "2027-04-04", 0),
        ("2026-11-25", "2026-11-30", 1),  # Thanksgiving, the day after and the weekend
        ("2026-12-31", "2027-01-08", 5),  # New Year's Day does not count
        ("2027-04-05", "2027-04-02", -1),  # backwards is negative
        ("2027-04-14", "2027-03-31", -10),
    ],
)
def test_business_days_between_counts_the_half_open_interval(
    pa: BusinessCalendar, start: str, end: str, expected: int
) -> None:
    assert pa.business_days_between(D(start), D(end)) == expected


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
    n=st.integers(min_value=-40, max_value=40),
)
def test_business_days_between_undoes_add_business_days(day: date, n: int) -> None:
    calendar = pa_calendar()
    start = calendar.on_or_after(day)
    moved = calendar.add_business_days(start, n)
    assert calendar.is_business_day(moved)
    assert calendar.business_days_between(start, moved) == n


def test_a_custom_weekend_moves_which_days_are_off() -> None:
    calendar = BusinessCalendar(holidays=frozenset(), weekend=frozenset({4, 5}))
    assert not calendar.is_business_day(D("2027-04-02"))  # Friday off
    assert calendar.is_business_day(D("2027-04-04"))  # Sunday on
    assert calendar.on_or_after(D("2027-04-02")) == D("2027-04-04")


@pytest.mark.parametrize("weekend", [frozenset(range(7)), frozenset({7}), frozenset({-1})])
def test_a_weekend_that_is_not_a_set_of_some_weekdays_is_refused(weekend: frozenset[int]) -> None:
    with pytest.raises(CalendarError, match="weekend"):
        BusinessCalendar(holidays=frozenset(), weekend=weekend)


# --- building calendars -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "day", "expected"),
    [
        (["US-PA"], "2026-11-27", False),
        (["us-pa"], "2026-11-27", False),  # specs are case-insensitive
        (["US"], "2026-11-27", True),  # the day after Thanksgiving is Pennsylvania's, not federal
        (["US"], "2026-11-26", False),
        (["none"], "2026-11-26", True),  # no holidays, only weekends
        ([], "2026-12-25", True),
        (["none"], "2026-11-28", False),  # Saturday is still a weekend
        (["US", "GB-SCT"], "2026-01-02", False),  # several calendars add up
    ],
)
def test_build_calendar_reads_country_and_subdivision_specs(
    specs: list[str], day: str, expected: bool
) -> None:
    calendar = build_calendar(specs, years=range(2026, 2027))
    assert calendar.is_business_day(D(day)) is expected


@pytest.mark.parametrize(
    ("years", "expected"),
    [(range(2027, 2028), False), (range(2028, 2029), True), (range(0), True)],
)
def test_build_calendar_covers_the_dates_observed_in_the_years_asked_for(
    years: range, expected: bool
) -> None:
    # New Year's Day 2028 falls on a Saturday and is observed on Friday 31 December 2027.
    calendar = build_calendar(["US"], years=years)
    assert calendar.is_business_day(D("2027-12-31")) is expected
    assert calendar.is_business_day(D("2027-12-30"))


def test_build_calendar_keeps_holiday_names() -> None:
    calendar = build_calendar(["US-PA"], years=range(2026, 2027))
    assert calendar.name(D("2026-11-26")) == "Thanksgiving Day"
    assert calendar.name(D("2026-11-25")) is None


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("USA", "is not a holiday calendar"),
        ("US-", "is not a holiday calendar"),
        ("", "is not a holiday calendar"),
        ("ZZ", "unknown holiday calendar"),
        ("US-XX", "unknown holiday calendar"),
    ],
)
def test_a_bad_holiday_spec_is_refused_naming_the_spec(spec: str, problem: str) -> None:
    with pytest.raises(CalendarError) as caught:
        build_calendar([spec], years=range(2026, 2027))
    assert repr(spec) in str(caught.value)
    assert problem in str(caught.value)


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    """A plain-text city holiday file with comments, blank lines and unnamed dates."""
    path = tmp_path / "city.txt"
    path.write_text(
        "# Philadelphia closures\n"
        "\n"
        "2026-12-24 Christmas Eve   # city closure\n"
        "2026-12-31\n"
        "2026-11-26 Thanksgiving (city)\n",
        encoding="utf-8",
    )
    return path


def test_a_text_holiday_file_adds_its_dates_to_the_calendar(text_file: Path) -> None:
    calendar = build_calendar(["US-PA"], extra_file=text_file, years=range(2026, 2027))
    assert not calendar.is_business_day(D("2026-12-24"))
    assert not calendar.is_business_day(D("2026-12-31"))
    assert calendar.name(D("2026-12-24")) == "Christmas Eve"
    assert calendar.name(D("2026-11-26")) == "Thanksgiving Day; Thanksgiving (city)"
    # Christmas Eve off means the 23rd is the business day before Christmas week resumes.
    assert calendar.add_business_days(D("2026-12-28"), -1) == D("2026-12-23")


def test_a_yaml_holiday_file_accepts_a_list_or_a_holidays_key(tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text(
        "- {date: 2026-12-24, name: Christmas Eve}\n- date: '2027-01-02'\n- 2027-01-04\n",
        encoding="utf-8",
    )
    keyed = tmp_path / "keyed.yml"
    keyed.write_text("holidays:\n  - date: 2026-12-24\n    name: Christmas Eve\n", "utf-8")
    assert read_holiday_file(listed) == [
        (D("2026-12-24"), "Christmas Eve"),
        (D("2027-01-02"), ""),
        (D("2027-01-04"), ""),
    ]
    assert read_holiday_file(keyed) == [(D("2026-12-24"), "Christmas Eve")]
    assert read_holiday_file(_write(tmp_path / "empty.yaml", "")) == []


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text", "where", "problem"),
    [
        ("bad.txt", "2026-12-24 Eve\n\n2026-13-01 Nope\n", "bad.txt:3", "'2026-13-01' is not a date"),
        ("bad.txt", "# only\nDecember 24\n", "bad.txt:2", "'December' is not a date"),
        ("bad.yaml", "- date: 2026-12-24\n- date: tomorrow\n", "bad.yaml:2", "'tomorrow'"),
        ("bad.yaml", "- date: 2026-12-24\n- name: Eve\n", "bad.yaml:2", "has no 'date'"),
        ("bad.yaml", "- {date: 2026-12-24, when: 9}\n", "bad.yaml:1", "unknown field(s) when"),
        ("bad.yaml", "- date: 2026-12-24 09:00:00\n", "bad.yaml:1", "has a time of day"),
        ("bad.yaml", "closed: 2026-12-24\n", "bad.yaml:1", "expected a list"),
        ("bad.yaml", "- [unclosed\n", "bad.yaml:2", "not valid YAML"),
    ],
)
def test_a_bad_holiday_file_is_refused_naming_file_and_line(
    tmp_path: Path, name: str, text: str, where: str, problem: str
) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(CalendarError) as caught:
        build_calendar(["US-PA"], extra_file=path, years=range(2026, 2027))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / where}: ")
    assert problem in message


def test_a_missing_holiday_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read holiday file") as caught:
        build_calendar([], extra_file=tmp_path / "absent.txt", years=range(2026, 2027))
    assert str(tmp_path / "absent.txt") in str(caught.value)


# --- local instants ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hour", "minute", "expected_utc"),
    [
        # Ordinary days either side of the New York transitions.
        ("America/New_York", "2027-03-13", 9, 0, "2027-03-13T14:00"),
        ("America/New_York", "2027-03-14", 9, 0, "2027-03-14T13:00"),
        ("America/New_York", "2026-10-31", 9, 0, "2026-10-31T13:00"),
        ("America/New_York", "2026-11-01", 9, 0, "2026-11-01T14:00"),
        # Spring forward: 02:00-02:59 do not exist, so 02:00 and 02:30 go at 03:00 EDT.
        ("America/New_York", "2027-03-14", 2, 0, "2027-03-14T07:00"),
        ("America/New_York", "2027-03-14", 2, 30, "2027-03-14T07:00"),
        ("America/New_York", "2027-03-14", 3, 0, "2027-03-14T07:00"),
        # Fall back: 01:00-01:59 happen twice; the first (EDT) one is taken.
        ("America/New_York", "2026-11-01", 1, 30, "2026-11-01T05:30"),
        ("America/New_York", "2026-11-01", 2, 0, "2026-11-01T07:00"),
        # Berlin skips 02:00-02:59 and repeats 02:00-02:59.
        ("Europe/Berlin", "2027-03-28", 2, 30, "2027-03-28T01:00"),
        ("Europe/Berlin", "2026-10-25", 2, 30, "2026-10-25T00:30"),
        ("Europe/Berlin", "2026-10-25", 1, 30, "2026-10-24T23:30"),
        # Helsinki skips 03:00-03:59, so 02:30 exists on its spring-forward day.
        ("Europe/Helsinki", "2027-03-28", 2, 30, "2027-03-28T00:30"),
        ("Europe/Helsinki", "2027-03-28", 3, 30, "2027-03-28T01:00"),
        ("Europe/Helsinki", "2026-10-25", 3, 30, "2026-10-25T00:30"),
        # Lord Howe moves by half an hour: 02:00-02:29 are skipped, 01:30-01:59 repeat.
        ("Australia/Lord_Howe", "2026-10-04", 2, 0, "2026-10-03T15:30"),
        ("Australia/Lord_Howe", "2026-10-04", 2, 30, "2026-10-03T15:30"),
        ("Australia/Lord_Howe", "2027-04-04", 1, 30, "2027-04-03T14:30"),
        # Zones without DST, far from UTC, with odd offsets.
        ("Asia/Kolkata", "2027-03-31", 9, 0, "2027-03-31T03:30"),
        ("Asia/Kathmandu", "2027-03-31", 9, 0, "2027-03-31T03:15"),
        ("Pacific/Kiritimati", "2027-03-31", 9, 0, "2027-03-30T19:00"),
        ("Pacific/Honolulu", "2027-03-31", 9, 0, "2027-03-31T19:00"),
        ("Pacific/Pago_Pago", "2027-03-31", 9, 0, "2027-03-31T20:00"),
        ("America/New_York", "2028-02-29", 9, 0, "2028-02-29T14:00"),
    ],
)
def test_local_reminder_instant_maps_local_wall_time_to_utc(
    zone: str, day: str, hour: int, minute: int, expected_utc: str
) -> None:
    instant = local_reminder_instant(D(day), hour, ZoneInfo(zone), minute=minute)
    assert instant == datetime.fromisoformat(expected_utc).replace(tzinfo=UTC)
    assert instant.tzinfo is UTC


ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Europe/Helsinki",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/Santiago",
]


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
    hour=st.integers(min_value=0, max_value=23),
    minute=st.sampled_from([0, 15, 30, 45]),
)
def test_local_reminder_instant_is_the_first_instant_the_wall_clock_reaches_the_time(
    zone: str, day: date, hour: int, minute: int
) -> None:
    tz = ZoneInfo(zone)
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).replace(tzinfo=None)
    instant = local_reminder_instant(day, hour, tz, minute=minute)
    reached = instant.astimezone(tz).replace(tzinfo=None)
    before = (instant - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None)
    assert reached >= wall
    assert before < wall
    # Only a DST gap may push the time later, and never by more than the gap (at most an hour).
    assert reached - wall <= timedelta(hours=1)


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        ("2027-03-31T03:29", "Asia/Kolkata", ("2027-03-31", 8)),
        ("2027-03-31T03:30", "Asia/Kolkata", ("2027-03-31", 9)),
        ("2027-03-30T19:00", "Pacific/Kiritimati", ("2027-03-31", 9)),
        ("2027-03-31T09:00", "Pacific/Honolulu", ("2027-03-30", 23)),
        ("2026-11-01T05:30", "America/New_York", ("2026-11-01", 1)),
        ("2026-11-01T06:30", "America/New_York", ("2026-11-01", 1)),  # the repeated hour
        ("2027-03-14T07:00", "America/New_York", ("2027-03-14", 3)),  # 02:00 never happens
    ],
)
def test_local_date_and_hour_reads_the_wall_clock_in_the_zone(
    now: str, zone: str, expected: tuple[str, int]
) -> None:
    instant = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert local_date_and_hour(instant, ZoneInfo(zone)) == (D(expected[0]), expected[1])


def test_local_date_and_hour_refuses_a_naive_datetime() -> None:
    naive = datetime(2027, 3, 31, 9, 0, tzinfo=UTC).replace(tzinfo=None)
    with pytest.raises(NaiveInstantError, match="no time zone"):
        local_date_and_hour(naive, NEW_YORK)
