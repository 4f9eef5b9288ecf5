"""How typed dates are read, relative to the person's own today."""

from __future__ import annotations

from datetime import date

import pytest

from commands.dates import ACCEPTED_FORMS, DateError, parse_date, parse_duration_or_date
from commands.grammar import ReapInputError

WED = date(2027, 3, 10)  # a Wednesday in FY2027-Q3 (July fiscal year)
MON = date(2027, 3, 8)
FRI = date(2027, 3, 12)
SAT = date(2027, 3, 13)
SUN = date(2027, 3, 14)


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        # ISO and US numeric forms
        pytest.param("2027-03-31", WED, date(2027, 3, 31), id="iso"),
        pytest.param("2027-3-5", WED, date(2027, 3, 5), id="iso-short-parts"),
        pytest.param("2027/03/31", WED, date(2027, 3, 31), id="iso-slashes"),
        pytest.param("2026-01-15", WED, date(2026, 1, 15), id="past-date-allowed-for-data-entry"),
        pytest.param("3/31", WED, date(2027, 3, 31), id="us-month-day-this-year"),
        pytest.param("3/10", WED, date(2027, 3, 10), id="us-month-day-today-counts"),
        pytest.param("3/9", WED, date(2028, 3, 9), id="us-month-day-passed-means-next-year"),
        pytest.param("1/5", WED, date(2028, 1, 5), id="us-january-rolls-to-next-year"),
        pytest.param("3/31/2027", WED, date(2027, 3, 31), id="us-full-year"),
        pytest.param("3/31/27", WED, date(2027, 3, 31), id="us-two-digit-year"),
        pytest.param("12/1/2026", WED, date(2026, 12, 1), id="us-past-with-year"),
        pytest.param("  3/31  ", WED, date(2027, 3, 31), id="surrounding-spaces"),
        # month names
        pytest.param("Mar 31", WED, date(2027, 3, 31), id="short-month-day"),
        pytest.param("March 31", WED, date(2027, 3, 31), id="long-month-day"),
        pytest.param("MARCH 31", WED, date(2027, 3, 31), id="month-upper-case"),
        pytest.param("31 Mar", WED, date(2027, 3, 31), id="day-month"),
        pytest.param("31 december 2027", WED, date(2027, 12, 31), id="day-month-year"),
        pytest.param("Mar 31 2027", WED, date(2027, 3, 31), id="month-day-year"),
        pytest.param("Mar 31, 2027", WED, date(2027, 3, 31), id="month-day-comma-year"),
        pytest.param("march 31st", WED, date(2027, 3, 31), id="ordinal-suffix"),
        pytest.param("Sept. 5", WED, date(2027, 9, 5), id="sept-with-period"),
        pytest.param("Jan 5", WED, date(2028, 1, 5), id="month-name-passed-means-next-year"),
        # leap days and month ends
        pytest.param("Feb 29", WED, date(2028, 2, 29), id="feb-29-next-leap-year"),
        pytest.param("2/29", date(2028, 1, 10), date(2028, 2, 29), id="feb-29-in-leap-year"),
        pytest.param("Feb 29", date(2028, 3, 1), date(2032, 2, 29), id="feb-29-just-passed"),
        pytest.param("2028-02-29", WED, date(2028, 2, 29), id="iso-leap-day"),
        pytest.param("in 1 month", date(2027, 1, 31), date(2027, 2, 28), id="month-clamps-jan-31"),
        pytest.param("in 1 month", date(2028, 1, 31), date(2028, 2, 29), id="month-clamps-leap"),
        pytest.param("in 1 month", date(2027, 12, 15), date(2028, 1, 15), id="month-crosses-year"),
        pytest.param("end of month", date(2027, 1, 31), date(2027, 1, 31), id="eom-on-jan-31"),
        pytest.param("end of month", date(2028, 2, 10), date(2028, 2, 29), id="eom-leap-feb"),
        pytest.param("end of month", date(2027, 2, 10), date(2027, 2, 28), id="eom-common-feb"),
        pytest.param("end of the month", WED, date(2027, 3, 31), id="eom-with-the"),
        pytest.param("eom", WED, date(2027, 3, 31), id="eom-abbreviation"),
        # relative words and counts
        pytest.param("today", WED, WED, id="today"),
        pytest.param("Today", WED, WED, id="today-capitalised"),
        pytest.param("tomorrow", WED, date(2027, 3, 11), id="tomorrow"),
        pytest.param("tomorrow", date(2027, 12, 31), date(2028, 1, 1), id="tomorrow-new-year"),
        pytest.param("in 3 days", WED, date(2027, 3, 13), id="in-days"),
        pytest.param("3 days", WED, date(2027, 3, 13), id="days-without-in"),
        pytest.param("3d", WED, date(2027, 3, 13), id="compact-days"),
        pytest.param("1 day", WED, date(2027, 3, 11), id="one-day"),
        pytest.param("in 2 weeks", WED, date(2027, 3, 24), id="in-weeks"),
        pytest.param("2w", WED, date(2027, 3, 24), id="compact-weeks"),
        pytest.param("in a week", WED, date(2027, 3, 17), id="in-a-week"),
        pytest.param("in 0 days", WED, WED, id="zero-days-is-today"),
        pytest.param("in 1 month", WED, date(2027, 4, 10), id="in-a-month"),
        # weekdays: `friday` = on or after tomorrow; `next friday` = Friday of next Mon-Sun week
        pytest.param("friday", WED, date(2027, 3, 12), id="friday-from-wednesday"),
        pytest.param("fri", WED, date(2027, 3, 12), id="fri-abbreviation"),
        pytest.param("thursday", WED, date(2027, 3, 11), id="weekday-tomorrow"),
        pytest.param("wednesday", WED, date(2027, 3, 17), id="same-weekday-means-a-week-out"),
        pytest.param("friday", FRI, date(2027, 3, 19), id="friday-on-a-friday"),
        pytest.param("next friday", WED, date(2027, 3, 19), id="next-friday-from-wednesday"),
        pytest.param("next friday", MON, date(2027, 3, 19), id="next-friday-from-monday"),
        pytest.param("friday", MON, date(2027, 3, 12), id="friday-from-monday"),
        pytest.param("next friday", FRI, date(2027, 3, 19), id="next-friday-on-a-friday"),
        pytest.param("next friday", SAT, date(2027, 3, 19), id="next-friday-from-saturday"),
        pytest.param("next friday", SUN, date(2027, 3, 19), id="next-friday-from-sunday"),
        pytest.param("friday", SUN, date(2027, 3, 19), id="friday-from-sunday"),
        pytest.param("next monday", WED, date(2027, 3, 15), id="next-monday"),
        pytest.param("next sunday", MON, date(2027, 3, 21), id="next-sunday-from-monday"),
        pytest.param("Next Wednesday", WED, date(2027, 3, 17), id="next-same-weekday"),
    ],
)
def test_each_accepted_form_reads_as_the_expected_day(text: str, today: date, expected: date) -> None:
    assert parse_date(text, today=today) == expected


@pytest.mark.parametrize(
    ("text", "today", "start_month", "expected"),
    [
        pytest.param("end of quarter", WED, 7, date(2027, 3, 31), id="eoq-july-year"),
        pytest.param("end of quarter", date(2027, 6, 30), 7, date(2027, 6, 30), id="eoq-last-day"),
        pytest.param("end of quarter", date(2027, 7, 1), 7, date(2027, 9, 30), id="eoq-new-fy"),
        pytest.param("end of quarter", date(2027, 8, 1), 10, date(2027, 9, 30), id="eoq-oct-year"),
        pytest.param("end of quarter", date(2027, 10, 1), 10, date(2027, 12, 31), id="eoq-oct-q1"),
        pytest.param("end of year", WED, 7, date(2027, 6, 30), id="eoy-is-fiscal"),
        pytest.param("end of fiscal year", WED, 7, date(2027, 6, 30), id="eofy"),
        pytest.param("end of year", date(2027, 6, 30), 7, date(2027, 6, 30), id="eoy-last-day"),
        pytest.param("end of year", date(2027, 7, 1), 7, date(2028, 6, 30), id="eoy-first-day"),
        pytest.param("end of year", WED, 1, date(2027, 12, 31), id="eoy-calendar-fy"),
        pytest.param("end of fiscal year", date(2027, 12, 31), 1, date(2027, 12, 31), id="eofy-1"),
        pytest.param("FY2027-Q3", WED, 7, date(2027, 3, 31), id="label-july-year"),
        pytest.param("FY2027-Q1", WED, 7, date(2026, 9, 30), id="label-q1-in-prior-calendar"),
        pytest.param("FY2027-Q4", WED, 7, date(2027, 6, 30), id="label-q4"),
        pytest.param("FY2027-Q3", WED, 1, date(2027, 9, 30), id="label-calendar-year"),
        pytest.param("fy2027 q2", WED, 7, date(2026, 12, 31), id="label-lower-with-space"),
        pytest.param("FY2027", WED, 7, date(2027, 6, 30), id="whole-fiscal-year"),
        pytest.param("FY2027", WED, 1, date(2027, 12, 31), id="whole-fiscal-year-calendar"),
        pytest.param("Q3", WED, 7, date(2027, 3, 31), id="short-quarter"),
        pytest.param("q1", WED, 7, date(2026, 9, 30), id="short-quarter-already-past"),
        pytest.param("Q1", date(2027, 7, 1), 7, date(2027, 9, 30), id="short-quarter-new-fy"),
        pytest.param("Q4", WED, 1, date(2027, 12, 31), id="short-quarter-calendar"),
        pytest.param("end of FY2027-Q2", WED, 7, date(2026, 12, 31), id="end-of-label"),
        pytest.param("eoq", WED, 7, date(2027, 3, 31), id="eoq-abbreviation"),
    ],
)
def test_fiscal_forms_follow_the_fiscal_start_month(
    text: str, today: date, start_month: int, expected: date
) -> None:
    assert parse_date(text, today=today, fiscal_start_month=start_month) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("Feb 30", "February has no day 30", id="feb-30"),
        pytest.param("2/30", "February has no day 30", id="feb-30-numeric"),
        pytest.param("April 31", "April has no day 31", id="april-31"),
        pytest.param("4/31/2027", "April 2027 has no day 31", id="april-31-with-year"),
        pytest.param("2027-02-29", "February 2027 has no day 29", id="feb-29-common-year"),
        pytest.param("13/45", "13 is not a month", id="month-13"),
        pytest.param("0/10", "0 is not a month", id="month-0"),
        pytest.param("2027-13-01", "13 is not a month", id="iso-month-13"),
        pytest.param("3/31/1850", "between 1900 and 2999", id="year-too-early"),
        pytest.param("in -3 days", "cannot be negative", id="negative-count"),
        pytest.param("-3d", "cannot be negative", id="negative-compact"),
        pytest.param("yesterday", "write the date itself", id="yesterday"),
        pytest.param("", "no date was given", id="empty"),
        pytest.param("   ", "no date was given", id="blank"),
        pytest.param("FY0999-Q1", "fiscal year must be between", id="fiscal-year-too-early"),
        pytest.param("1/1/3000", "between 1900 and 2999", id="year-too-late"),
    ],
)
def test_impossible_dates_say_why(text: str, reason: str) -> None:
    with pytest.raises(DateError) as caught:
        parse_date(text, today=WED)
    assert caught.value.text == text
    assert reason in str(caught.value)
    assert f'I couldn\'t read "{text.strip() if text.strip() else ""}" as a date' in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "someday",
        "next",
        "Mar",
        "Smarch 3",
        "in 3 fortnights",
        "q5",
        "fy27-q2",
        "２０２７-03-31",  # full-width digits are not silently accepted
        "in 10000 days",
        "99999-01-01",
        "3/31/202",
        "3.31",
        "next week",
        "friday 3pm",
        "{{ 7*7 }}",
        "<!channel>",
    ],
)
def test_unreadable_text_raises_date_error_listing_the_accepted_forms(text: str) -> None:
    with pytest.raises(DateError) as caught:
        parse_date(text, today=WED)
    assert ACCEPTED_FORMS in str(caught.value)
    assert caught.value.problem == str(caught.value)


def test_date_error_is_a_value_error_but_not_a_grammar_input_error() -> None:
    error = DateError("Feb 30")
    assert isinstance(error, ValueError)
    assert not isinstance(error, ReapInputError)
    assert str(error).startswith('I couldn\'t read "Feb 30" as a date')


def test_very_long_text_is_quoted_back_shortened() -> None:
    with pytest.raises(DateError) as caught:
        parse_date("x" * 10_000, today=WED)
    assert len(caught.value.problem) < 400
    assert "…" in caught.value.problem


def test_a_bad_fiscal_start_month_is_a_programming_error_not_a_date_error() -> None:
    with pytest.raises(ValueError, match="fiscal_start_month") as caught:
        parse_date("today", today=WED, fiscal_start_month=13)
    assert not isinstance(caught.value, DateError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1d", date(2027, 3, 11), id="compact-day"),
        pytest.param("2 days", date(2027, 3, 12), id="days"),
        pytest.param("1 week", date(2027, 3, 17), id="week"),
        pytest.param("1w", date(2027, 3, 17), id="compact-week"),
        pytest.param("in 2 weeks", date(2027, 3, 24), id="in-weeks"),
        pytest.param("tomorrow", date(2027, 3, 11), id="tomorrow"),
        pytest.param("friday", date(2027, 3, 12), id="weekday"),
        pytest.param("4/15", date(2027, 4, 15), id="date"),
        pytest.param("3/9", date(2028, 3, 9), id="passed-month-day-is-next-year"),
        pytest.param("end of quarter", date(2027, 3, 31), id="end-of-quarter"),
    ],
)
def test_snooze_lengths_and_dates_land_after_today(text: str, expected: date) -> None:
    assert parse_duration_or_date(text, today=WED) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("today", id="today"),
        pytest.param("0d", id="zero-days"),
        pytest.param("3/10", id="month-day-that-is-today"),
        pytest.param("2027-03-01", id="past-date"),
        pytest.param("3/10/2027", id="today-with-year"),
    ],
)
def test_snoozing_to_today_or_earlier_is_refused(text: str) -> None:
    with pytest.raises(DateError, match="pick a day after today") as caught:
        parse_duration_or_date(text, today=WED)
    assert caught.value.reason == "it is not after today"


def test_snooze_text_that_is_not_a_date_still_lists_accepted_forms() -> None:
    with pytest.raises(DateError) as caught:
        parse_duration_or_date("a while", today=WED)
    assert ACCEPTED_FORMS in str(caught.value)
