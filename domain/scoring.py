"""The equity scoring matrix: criteria with weights and labelled levels, weighted totals, ranking.

A plan declares its criteria; an item is scored per criterion at a level (0 up to the criterion's
highest level). A score keeps the weight it was made under, so a later plan version with new
weights never rewrites an earlier total. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from domain.errors import ReapError


class ScoreRefused(ReapError, ValueError):
    """A score that does not fit its criterion; the message names the criterion and its levels."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{problem}; nothing was scored.")


@dataclass(frozen=True)
class Criterion:
    """One question of the matrix, its weight, and its levels' labels (level 0 is levels[0])."""

    key: str
    question: str
    weight: float
    levels: tuple[str, ...]

    @property
    def top(self) -> int:
        """The highest level."""
        return len(self.levels) - 1

    def describe_levels(self) -> str:
        """The levels as `0 none … 3 most` for messages and forms."""
        return ", ".join(f"{i} {label}" for i, label in enumerate(self.levels))

    def level(self, text: str) -> int:
        """Read a level given as its number or its label."""
        word = text.strip()
        if word.isdigit():
            number = int(word)
            if 0 <= number <= self.top:
                return number
        else:
            for i, label in enumerate(self.levels):
                if label.casefold() == word.casefold():
                    return i
        raise ScoreRefused(f"'{text}' is not a level of {self.key} (levels: {self.describe_levels()})")


@dataclass(frozen=True)
class Score:
    """A level given for a criterion, with the weight it counted at."""

    criterion: str
    level: int
    weight: float


def weighted_total(scores: Iterable[Score]) -> float:
    """The sum of each level times the weight it was scored under."""
    return sum(s.level * s.weight for s in scores)


def highest_total(criteria: Iterable[Criterion]) -> float:
    """The total an item scoring the top level everywhere would get."""
    return sum(c.top * c.weight for c in criteria)


@dataclass(frozen=True)
class Candidate:
    """An item in the ranking: its ref, due date and weighted total (None: not scored yet)."""

    ref: str
    due: date | None
    total: float | None


def rank(candidates: Sequence[Candidate]) -> list[tuple[int, Candidate]]:
    """Scored candidates by total, highest first, ties broken by the earlier due date (no date
    last) then ref; unscored ones are left out. Equal total and due date share a rank."""
    scored = [c for c in candidates if c.total is not None]
    scored.sort(key=lambda c: (-(c.total or 0.0), c.due or date.max, _ref_key(c.ref)))
    ranked: list[tuple[int, Candidate]] = []
    for position, candidate in enumerate(scored, start=1):
        if ranked and (ranked[-1][1].total, ranked[-1][1].due) == (candidate.total, candidate.due):
            ranked.append((ranked[-1][0], candidate))
        else:
            ranked.append((position, candidate))
    return ranked


def _ref_key(ref: str) -> tuple[str, int]:
    prefix, _, number = ref.rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (ref, 0)
