"""One set of text and number rules: refused whole with the reason, never cut or cleaned."""

from __future__ import annotations

import pytest

from domain.errors import ControlCharacter, NotFinite, TextTooLong
from domain.text import NOTE_MAX, TITLE_MAX, check_finite, check_text, number_problem, text_problem


@pytest.mark.parametrize(
    ("limit", "length"), [(TITLE_MAX, TITLE_MAX), (NOTE_MAX, NOTE_MAX), (NOTE_MAX, 0)], ids=str
)
def test_text_up_to_the_limit_comes_back_unchanged(limit: int, length: int):
    text = "é" * length
    assert check_text(text, field="note", limit=limit, multiline=True) is text


@pytest.mark.parametrize("over", [1, 2000])
def test_text_over_the_limit_is_refused_naming_the_limit_not_cut(over: int):
    with pytest.raises(TextTooLong) as refused:
        check_text("x" * (NOTE_MAX + over), field="note", limit=NOTE_MAX)
    assert str(refused.value).startswith(f"The note is {NOTE_MAX + over:,} characters")
    assert "the limit is 2,000" in str(refused.value)


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x01", "\x1b", "\r", "\x0b", "\x0c", "\x1f", "\x7f", "\x80", "\x85", "\x9b", "\x9f", "\ud800"],
    ids=lambda c: f"U+{ord(c):04X}",
)
@pytest.mark.parametrize("multiline", [False, True], ids=["one-line", "multi-line"])
def test_control_characters_are_refused_everywhere(char: str, multiline: bool):
    with pytest.raises(ControlCharacter) as refused:
        check_text(f"Fix {char}it", field="title", limit=TITLE_MAX, multiline=multiline)
    assert f"(U+{ord(char):04X})" in str(refused.value)


@pytest.mark.parametrize("char", ["\n", "\t"], ids=["line-feed", "tab"])
def test_line_feed_and_tab_only_where_text_may_span_lines(char: str):
    assert check_text(f"a{char}b", field="note", limit=NOTE_MAX, multiline=True) == f"a{char}b"
    with pytest.raises(ControlCharacter, match="The title contains a"):
        check_text(f"a{char}b", field="title", limit=TITLE_MAX)


@pytest.mark.parametrize("text", ["\xa0non-breaking", "מימין לשמאל", "emoji 👩🏽‍💻", "é and ß"])
def test_printable_unicode_is_kept_as_written(text: str):
    assert check_text(text, field="title", limit=TITLE_MAX) == text


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), float("1e999")], ids=str)
def test_infinite_and_not_a_number_are_refused(value: float):
    with pytest.raises(NotFinite, match="must be a finite number"):
        check_finite(value, field="value")
    assert number_problem(value, field="value")


@pytest.mark.parametrize("value", [0.0, -0.0, 1e308, -1e-308, 1250.5])
def test_finite_numbers_come_back_unchanged(value: float):
    assert check_finite(value, field="value") == value
    assert number_problem(value, field="value") is None


def test_forms_get_the_same_words_as_an_inline_problem():
    assert text_problem("ok", field="note", limit=NOTE_MAX) is None
    assert text_problem("x" * 2001, field="note", limit=NOTE_MAX) == (
        "The note is 2,001 characters, which is too long (the limit is 2,000); nothing was saved."
    )
