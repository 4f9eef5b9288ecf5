"""Whatever a person (or a paste) sends, the parser answers with a command or a UsageError."""

from __future__ import annotations

from datetime import date
from typing import get_args

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from commands.dates import DateError, parse_date
from commands.grammar import (
    MAX_TITLE_LENGTH,
    USAGE,
    Add,
    Command,
    Pause,
    Progress,
    Snooze,
    UsageError,
    parse_command,
)

TODAY = date(2027, 3, 10)
COMMAND_TYPES = get_args(Command)

# Pieces that have broken parsers before: control and bidi characters, Slack markup,
# template syntax, quotes of every kind, keywords, and things that look like dates or numbers.
FRAGMENTS = [
    "\x00",
    "\u202e",
    "\u200f",
    "مرحبا",
    "שלום",
    "🚀",
    "👩🏽‍💻",
    "<!channel>",
    "<!subteam^S1|@leads>",
    "{{ 7*7 }}",
    "${HOME}",
    '"',
    "“",
    "”",
    "„",
    "'",
    "<@U123|maria>",
    "<@W1>",
    "@maria",
    "<#C1|dei>",
    "#dei",
    "<https://x.org|x>",
    "<|>",
    "<|x>",
    "<@>",
    "<#|>",
    "<!>",
    "<!date^1^{date}>",
    "<",
    ">",
    "|",
    "&amp;",
    "&lt;",
    "&gt;",
    "payload",
    "OIT-7",
    "oit-7",
    "due",
    "owner",
    "strategy",
    "page",
    "status",
    "on",
    "track",
    "Q3",
    "FY2027-Q2",
    "FY9999-Q4",
    "this",
    "last",
    "3/31",
    "Feb 29",
    "in -3 days",
    "9999d",
    "40%",
    "1,200",
    "-0",
    "1e999",
    "\n",
    "\t",
    "\xa0",
]

command_texts = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda sub, rest: f"{sub} {rest}",
        st.sampled_from(sorted(USAGE)),
        st.text(max_size=200),
    ),
    st.builds(
        lambda sub, pieces, glue: sub + glue + glue.join(pieces),
        st.sampled_from([*sorted(USAGE), "check-in", "?", "lsit"]),
        st.lists(st.sampled_from(FRAGMENTS), max_size=12),
        st.sampled_from([" ", "", "  "]),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=command_texts, fiscal_start_month=st.integers(min_value=1, max_value=12))
@example(text="add " + "🚀" * 5000, fiscal_start_month=7)
@example(text="note OIT-7 " + "x" * 10_000, fiscal_start_month=7)
@example(text="<!channel> {{ 7*7 }}", fiscal_start_month=7)
@example(text='add "\u202eevil\u202c" owner <@U1>', fiscal_start_month=7)
@example(text="add \x00", fiscal_start_month=7)
@example(text="note OIT-7 <|x> <|> <@> <!>", fiscal_start_month=7)
def test_any_text_parses_to_a_command_or_raises_usage_error(text: str, fiscal_start_month: int) -> None:
    try:
        command = parse_command(text, today=TODAY, fiscal_start_month=fiscal_start_month)
    except UsageError as error:
        assert error.problem
        assert str(error).startswith(error.problem)
        return
    assert isinstance(command, COMMAND_TYPES)
    if isinstance(command, Add) and command.title is not None:
        assert 0 < len(command.title) <= MAX_TITLE_LENGTH
    if isinstance(command, Snooze | Pause) and command.until is not None:
        assert command.until > TODAY
    if isinstance(command, Progress):
        assert 0 <= command.percent <= 100


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.lists(st.sampled_from(FRAGMENTS), max_size=4).map(" ".join),
    )
)
@example(text="x" * 10_000)
@example(text="in 9999 months")
@example(text="FY2999-Q4")
def test_any_text_reads_as_a_date_or_raises_date_error(text: str) -> None:
    try:
        parse_date(text, today=TODAY, fiscal_start_month=1)
    except DateError as error:
        assert error.problem


@pytest.mark.parametrize("length", [4001, 10_000])
def test_huge_pastes_are_refused_as_too_long(length: int) -> None:
    with pytest.raises(UsageError, match="too long"):
        parse_command("note OIT-7 " + "x" * length, today=TODAY)
