"""Numbers shown to people one way everywhere: measure values, changes, rates and plurals."""

from __future__ import annotations


def format_number(value: float | None) -> str:
    """A measure value for people: thousands separators, at most two decimals, no trailing zeros."""
    if value is None:
        return "—"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_change(value: float | None) -> str:
    """A signed change, e.g. +2.5 or −3."""
    if value is None:
        return "—"
    if value == 0:
        return "±0"
    return ("+" if value > 0 else "−") + format_number(abs(value))


def format_rate(value: float | None) -> str:
    """A 0..1 rate as a whole percentage, or a dash when there is nothing to rate."""
    return "—" if value is None else f"{round(value * 100)}%"


def format_percent(value: float | None) -> str:
    """A 0..100 percentage."""
    return "—" if value is None else f"{round(value)}%"


def plural(count: int, noun: str) -> str:
    """'1 item', '2 items'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def one_line(text: object) -> str:
    """Text folded onto one line (a title or note inside a list line or table cell)."""
    return " ".join(str(text).split())


def with_unit(value: float | None, unit: str) -> str:
    """A measure value with its unit: 27%, 78 days, or a dash when there is no value."""
    if value is None or not unit:
        return format_number(value)
    return f"{format_number(value)}{'' if unit == '%' else ' '}{unit}"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """A text sparkline (▁▃▅█) scaled between the smallest and largest value; a gap shows as ·.

    Always shown beside the labelled values: the shape helps, the numbers carry the meaning.
    """
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    return "".join(
        "·" if v is None else _BARS[0 if span == 0 else round((v - low) / span * (len(_BARS) - 1))]
        for v in values
    )


def format_gap(value: float | None, *, points: bool) -> str:
    """A gap to parity: signed, in percentage points for representation, in the unit for a rate."""
    if value is None:
        return "—"
    return format_change(round(value, 1)) + (" pts" if points else "")


def format_ratio(value: float | None) -> str:
    """A disparity ratio or representation index, two decimals: 0.75."""
    return "—" if value is None else f"{value:.2f}"
