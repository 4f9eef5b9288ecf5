"""Fiscal-year quarters: FY2027-Q2 is October to December 2026 when the year starts in July."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

_LABEL = re.compile(r"^\s*FY\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.IGNORECASE)
_SHORT = re.compile(r"^\s*Q([1-4])\s*$", re.IGNORECASE)


class QuarterError(ValueError):
    """A quarter was written in a way we cannot read."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"'{text}' is not a quarter; write it like FY2027-Q2, Q2, this or last")


@dataclass(frozen=True, order=True)
class FiscalQuarter:
    """One quarter of a fiscal year; `fiscal_year` is the year the fiscal year ends in."""

    fiscal_year: int
    quarter: int
    start_month: int = field(default=7, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.quarter <= 4:
            raise ValueError(f"quarter must be 1-4, not {self.quarter}")
        if not 1 <= self.start_month <= 12:
            raise ValueError(f"fiscal year start month must be 1-12, not {self.start_month}")

    @property
    def label(self) -> str:
        """The canonical label, e.g. FY2027-Q2."""
        return f"FY{self.fiscal_year}-Q{self.quarter}"

    @property
    def start(self) -> date:
        """First day of the quarter."""
        # FY N begins in calendar year N-1 unless the fiscal year starts in January.
        first_year = self.fiscal_year - (1 if self.start_month > 1 else 0)
        months = (self.start_month - 1) + 3 * (self.quarter - 1)
        return date(first_year + months // 12, months % 12 + 1, 1)

    @property
    def end(self) -> date:
        """Last day of the quarter."""
        return self.next().start - timedelta(days=1)

    def next(self) -> FiscalQuarter:
        """The quarter after this one."""
        if self.quarter == 4:
            return FiscalQuarter(self.fiscal_year + 1, 1, self.start_month)
        return FiscalQuarter(self.fiscal_year, self.quarter + 1, self.start_month)

    def previous(self) -> FiscalQuarter:
        """The quarter before this one."""
        if self.quarter == 1:
            return FiscalQuarter(self.fiscal_year - 1, 4, self.start_month)
        return FiscalQuarter(self.fiscal_year, self.quarter - 1, self.start_month)

    def contains(self, day: date) -> bool:
        """Whether `day` falls inside this quarter."""
        return self.start <= day <= self.end

    def __str__(self) -> str:
        return self.label

    @classmethod
    def containing(cls, day: date, start_month: int = 7) -> FiscalQuarter:
        """The fiscal quarter that contains `day`."""
        offset = (day.month - start_month) % 12
        fy_first_year = day.year if day.month >= start_month else day.year - 1
        fiscal_year = fy_first_year + (1 if start_month > 1 else 0)
        return cls(fiscal_year, offset // 3 + 1, start_month)

    @classmethod
    def parse(cls, text: str, *, today: date, start_month: int = 7) -> FiscalQuarter:
        """Read `FY2027-Q2`, `Q2` (current fiscal year), `this` or `last`."""
        current = cls.containing(today, start_month)
        word = text.strip().lower()
        if word in ("", "this", "current"):
            return current
        if word in ("last", "previous"):
            return current.previous()
        if word == "next":
            return current.next()
        if match := _LABEL.match(text):
            return cls(int(match.group(1)), int(match.group(2)), start_month)
        if match := _SHORT.match(text):
            return cls(current.fiscal_year, int(match.group(1)), start_month)
        raise QuarterError(text)
