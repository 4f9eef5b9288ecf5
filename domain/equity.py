"""Breakdowns by group and the gap to parity, the two standard ways equity analysis reads them.

- *rate*: each group has its own rate (share of households with home internet). The gap is the
  group's value minus a reference (the overall value, or a declared reference group) and the
  disparity ratio is group / reference.
- *representation*: counts per group (new hires by race). A group's share is its count over
  the total; the gap is that share minus the group's share of the population, in percentage
  points, and the representation index is share / population share.

Small groups are suppressed to protect privacy: a group counted below the plan's minimum (by its
own count for representation, by its stated `n` for a rate) is never shown, and when exactly one
count would be hidden while the total is shown, the next smallest is hidden too so it cannot be
worked out by subtraction. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_MIN_COUNT = 10


class BreakdownKind(StrEnum):
    """How a broken-down measure's group values are read."""

    RATE = "rate"
    REPRESENTATION = "representation"


@dataclass(frozen=True)
class GroupInput:
    """One group's reading: its value, how many it counts (optional for a rate) and its population share."""

    key: str
    value: float | None
    n: float | None = None
    population_share: float | None = None  # 0..1


@dataclass(frozen=True)
class GroupResult:
    """One group's published figures; every number is None when the group is suppressed."""

    key: str
    value: float | None
    gap: float | None = None
    ratio: float | None = None  # rate: group / reference
    index: float | None = None  # representation: share / population share
    share: float | None = None  # representation: the group's share of the total, 0..1
    suppressed: bool = False
    reference: bool = False


@dataclass(frozen=True)
class Breakdown:
    """A quarter's breakdown of one measure: the reference, each group and the largest gap."""

    kind: str
    reference: float | None
    groups: tuple[GroupResult, ...]
    min_count: int = DEFAULT_MIN_COUNT

    @property
    def largest_gap(self) -> GroupResult | None:
        """The published group furthest from parity (ties go to the first declared)."""
        best: GroupResult | None = None
        for group in self.groups:
            if group.gap is None or group.suppressed or group.reference:
                continue
            if best is None or abs(group.gap) > abs(best.gap or 0.0):
                best = group
        return best

    def group(self, key: str) -> GroupResult | None:
        """The result for one group, if the breakdown has it."""
        return next((g for g in self.groups if g.key == key), None)


def rate_breakdown(
    groups: Sequence[GroupInput],
    *,
    overall: float | None,
    reference_group: str | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
) -> Breakdown:
    """Gap and disparity ratio of each group's rate against the overall rate or a reference group."""
    reference = overall
    if reference_group is not None:
        chosen = next((g for g in groups if g.key == reference_group), None)
        reference = chosen.value if chosen is not None else None
    results: list[GroupResult] = []
    for g in groups:
        if g.value is None or (g.n is not None and g.n < min_count):
            results.append(GroupResult(key=g.key, value=None, suppressed=g.value is not None))
            continue
        gap = g.value - reference if reference is not None else None
        ratio = g.value / reference if reference else None
        results.append(
            GroupResult(key=g.key, value=g.value, gap=gap, ratio=ratio, reference=g.key == reference_group)
        )
    return Breakdown(
        kind=BreakdownKind.RATE.value, reference=reference, groups=tuple(results), min_count=min_count
    )


def representation_breakdown(
    groups: Sequence[GroupInput], *, min_count: int = DEFAULT_MIN_COUNT
) -> Breakdown:
    """Each group's share of the total against its share of the population: gap in points and index."""
    counted = [g for g in groups if g.value is not None]
    total = sum(g.value or 0.0 for g in counted)
    hidden = {g.key for g in counted if (g.value or 0.0) < min_count}
    if len(hidden) == 1 and len(counted) > 1:
        # One hidden count plus a shown total would give it away: hide the next smallest as well.
        rest = sorted((g for g in counted if g.key not in hidden), key=lambda g: g.value or 0.0)
        hidden.add(rest[0].key)
    results: list[GroupResult] = []
    for g in groups:
        if g.value is None or g.key in hidden:
            results.append(GroupResult(key=g.key, value=None, suppressed=g.key in hidden))
            continue
        share = g.value / total if total else None
        gap = index = None
        if share is not None and g.population_share is not None:
            gap = (share - g.population_share) * 100.0
            index = share / g.population_share if g.population_share else None
        results.append(GroupResult(key=g.key, value=g.value, gap=gap, index=index, share=share))
    return Breakdown(
        kind=BreakdownKind.REPRESENTATION.value, reference=total, groups=tuple(results), min_count=min_count
    )


def breakdown(
    kind: str,
    groups: Sequence[GroupInput],
    *,
    overall: float | None,
    reference_group: str | None = None,
    min_count: int = DEFAULT_MIN_COUNT,
) -> Breakdown:
    """The breakdown of `kind` (rate or representation) for one quarter's group values."""
    if kind == BreakdownKind.REPRESENTATION:
        return representation_breakdown(groups, min_count=min_count)
    return rate_breakdown(groups, overall=overall, reference_group=reference_group, min_count=min_count)


def gap_changes(current: Breakdown, earlier: Breakdown | None) -> Mapping[str, float | None]:
    """Per group, how much the gap's size changed since `earlier` (negative: narrowed)."""
    changes: dict[str, float | None] = {}
    for group in current.groups:
        before = earlier.group(group.key) if earlier is not None else None
        if group.gap is None or before is None or before.gap is None:
            changes[group.key] = None
        else:
            changes[group.key] = abs(group.gap) - abs(before.gap)
    return changes


def narrowed(current: Breakdown, earlier: Breakdown | None) -> bool | None:
    """Whether the largest gap is smaller than the same group's gap was then (None: cannot tell)."""
    widest = current.largest_gap
    if widest is None or earlier is None:
        return None
    before = earlier.group(widest.key)
    if before is None or before.gap is None or widest.gap is None:
        return None
    return abs(widest.gap) < abs(before.gap)
