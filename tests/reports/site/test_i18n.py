"""Numbers and dates are written per language, the same however often a site writes them."""

from __future__ import annotations

from datetime import date

import pytest
from babel.dates import format_date
from babel.numbers import format_decimal

from reports.site.i18n import Words


@pytest.mark.parametrize(
    ("lang", "number", "integer", "percent", "ratio", "day"),
    [
        ("en", "1,234.57", "12,000", "47%", "0.83", "January 6, 2027"),
        ("es", "1.234,57", "12.000", "47\u00a0%", "0,83", "6 de enero de 2027"),
    ],
)
def test_each_language_writes_numbers_and_dates_its_own_way_every_time(
    lang: str, number: str, integer: str, percent: str, ratio: str, day: str
):
    words = Words(lang)
    for _ in range(2):  # the second time comes from what the first one wrote
        assert words.number(1234.567) == number
        assert words.integer(12_000) == integer
        assert words.percent(46.6) == percent
        assert words.ratio(0.8333) == ratio
        assert words.date(date(2027, 1, 6)) == day


def test_a_negative_zero_is_written_as_babel_writes_it_whichever_zero_came_first():
    words = Words("en")
    assert words.ratio(0.0) == format_decimal(0.0, format="0.00", locale="en")
    assert words.ratio(-0.0) == format_decimal(-0.0, format="0.00", locale="en")
    assert words.ratio(0.0) == format_decimal(0.0, format="0.00", locale="en")


def test_a_date_and_a_number_written_in_one_language_do_not_leak_into_the_other():
    assert Words("en").date(date(2027, 3, 1)) == format_date(date(2027, 3, 1), format="long", locale="en")
    assert Words("es").date(date(2027, 3, 1)) == format_date(date(2027, 3, 1), format="long", locale="es")
    assert Words("en").number(1000.5) != Words("es").number(1000.5)
