"""The one set of rules for text and numbers people give us, whatever door they come through.

The slash-command grammar, the modals, the check-in form, the plan file and the storage writes all
ask this module. Text is refused whole with the limit named, never cut or cleaned, so what is
stored is exactly what the person wrote. Pure: no I/O.
"""

from __future__ import annotations

import math
import re

from domain.errors import ControlCharacter, NotFinite, TextRefused, TextTooLong

# Field limits in characters; storage/models.py declares its columns with these.
TITLE_MAX = 300  # item and plan titles, measure names
NAME_MAX = 200  # people, departments, strategies
NOTE_MAX = 2000  # notes on items, check-in answers and readings
DESCRIPTION_MAX = 4000  # item and strategy descriptions
UNIT_MAX = 40  # a measure's unit

# NUL, C0 controls, DEL, C1 controls and lone surrogates: invisible, break terminals and CSV, and
# PostgreSQL refuses NUL outright. Line feed and tab are allowed only where text may span lines.
_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MULTI_LINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_PERCENT = re.compile(r"[0-9]{1,3}", re.ASCII)


def check_text(value: str, *, field: str, limit: int, multiline: bool = False) -> str:
    """`value` unchanged if it fits `limit` and holds no control characters; else TextRefused."""
    if bad := (_MULTI_LINE if multiline else _ONE_LINE).search(value):
        raise ControlCharacter(field, bad[0])
    if len(value) > limit:
        raise TextTooLong(field, len(value), limit)
    return value


def visible(text: str) -> str:
    """`text` with each control character and lone surrogate written as its escape (\\x1b, \\ud800),
    so quoting what someone wrote can neither drive a terminal nor break a line."""
    return _ONE_LINE.sub(lambda match: ascii(match[0])[1:-1], text)


def check_finite(value: float, *, field: str) -> float:
    """`value` unchanged if it is a real number; inf and nan raise NotFinite."""
    if not math.isfinite(value):
        raise NotFinite(field, value)
    return value


def text_problem(value: str, *, field: str, limit: int, multiline: bool = False) -> str | None:
    """What is wrong with `value` under check_text's rules, or None; for forms that show errors inline."""
    try:
        check_text(value, field=field, limit=limit, multiline=multiline)
    except TextRefused as exc:
        return str(exc)
    return None


def trimmed_problem(value: str, *, field: str, limit: int, multiline: bool = False) -> str | None:
    """What is wrong with `value` once surrounding whitespace is trimmed, or None.

    Control characters are looked for in the text as written: str.strip() takes some of them
    (\\x0b, \\x0c, \\r, \\x1c-\\x1f, \\x85) for whitespace and would quietly drop them.
    """
    return text_problem(value, field=field, limit=len(value), multiline=True) or text_problem(
        value.strip(), field=field, limit=limit, multiline=multiline
    )


def whole_percent(text: str) -> int | None:
    """`text` as a whole percentage from 0 to 100, written in ASCII digits; else None.

    str.isdigit() also takes a superscript two (which int() refuses), and int() refuses 4,300
    digits and more; a number input sends ASCII digits.
    """
    if not _PERCENT.fullmatch(text):
        return None
    percent = int(text)
    return percent if percent <= 100 else None


def number_problem(value: float, *, field: str) -> str | None:
    """What is wrong with `value` under check_finite's rule, or None."""
    try:
        check_finite(value, field=field)
    except NotFinite as exc:
        return str(exc)
    return None
