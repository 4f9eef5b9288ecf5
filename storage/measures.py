"""Measure readings (with their breakdown by group) and equity-matrix scores; each write audited.

Every door (slash command, check-in form, plan file) records through here, so the same rules
hold: the measure's quarters, non-negative scales, cumulative counts that only fall with a note,
group keys the plan declares, finite numbers, and the permission check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.equity import BreakdownKind
from domain.errors import NotFound
from domain.fiscal import FiscalQuarter, QuarterError
from domain.measures import MeasureRule, ReadingRefused, check_reading
from domain.rollup import RankedLine
from domain.scoring import Candidate, Criterion, Score, ScoreRefused, highest_total, rank, weighted_total
from domain.text import NOTE_MAX, check_finite, check_text
from storage.amendments import amend_quarter, get_snapshot
from storage.audit import record
from storage.items import audit, get_item
from storage.models import (
    ActionItem,
    Dimension,
    ItemScore,
    Measure,
    MeasureReading,
    ScoringCriterion,
    Strategy,
)
from storage.permissions import Actor, ensure_can_edit, ensure_can_record


@dataclass(frozen=True)
class GroupValue:
    """One group's value in a reading, and (for a rate) how many it was measured over."""

    value: float
    n: float | None = None


def parse_quarter(label: str, *, start_month: int) -> FiscalQuarter:
    """A canonical quarter label (FY2027-Q2) as a FiscalQuarter; anything else is a QuarterError."""
    # `today` only matters for words like `this`, which a canonical label never is.
    parsed = FiscalQuarter.parse(label, today=date(2000, 1, 1), start_month=start_month)
    if parsed.label != label.strip().upper():
        raise QuarterError(label)
    return parsed


def rule_of(measure: Measure, *, start_month: int) -> MeasureRule:
    """The pure rule view of a stored measure."""
    return MeasureRule(
        key=measure.key,
        baseline=measure.baseline,
        target=measure.target,
        direction=measure.direction,
        target_date=measure.target_date,
        kind=measure.kind,
        baseline_quarter=(
            parse_quarter(measure.baseline_quarter, start_month=start_month)
            if measure.baseline_quarter
            else None
        ),
    )


async def get_measure(session: AsyncSession, *, team_id: str, key: str) -> Measure:
    """The measure with this key, or NotFound."""
    measure = (
        await session.exec(select(Measure).where(Measure.team_id == team_id).where(Measure.key == key))
    ).first()
    if measure is None:
        raise NotFound("measure", key)
    return measure


async def dimension_of(session: AsyncSession, *, measure: Measure) -> Dimension | None:
    """The dimension a measure is broken down by (None when it is not broken down)."""
    if not measure.breakdown_dimension:
        return None
    return (
        await session.exec(
            select(Dimension)
            .join(Strategy, col(Strategy.plan_id) == col(Dimension.plan_id))
            .where(Strategy.id == measure.strategy_id)
            .where(Dimension.key == measure.breakdown_dimension)
        )
    ).first()


def check_groups(measure: Measure, dimension: Dimension | None, groups: Mapping[str, GroupValue]) -> None:
    """Refuse group values for a measure that is not broken down, unknown groups, or impossible values."""
    if not groups:
        return
    if dimension is None:
        raise ReadingRefused(measure.key, "it is not broken down by group, so give one value only")
    declared = [str(g["key"]) for g in dimension.groups]
    for key, given in groups.items():
        if key not in declared:
            raise ReadingRefused(
                measure.key, f"'{key}' is not a group of {dimension.key} (groups: {', '.join(declared)})"
            )
        check_finite(given.value, field=f"value of {measure.key} for {key}")
        if given.value < 0:
            raise ReadingRefused(
                measure.key, f"{key} is {given.value:g}; a group's value cannot be below zero"
            )
        if given.n is not None:
            check_finite(given.n, field=f"count of {measure.key} for {key}")
            if given.n < 0 or given.n != int(given.n):
                raise ReadingRefused(
                    measure.key, f"{key} was measured over {given.n:g}, which is not a count"
                )
        if measure.breakdown_kind == BreakdownKind.REPRESENTATION and given.value != int(given.value):
            raise ReadingRefused(measure.key, f"{key} is {given.value:g}, but this breakdown counts people")


async def record_reading(
    session: AsyncSession,
    *,
    actor: Actor,
    key: str,
    quarter: str,
    value: float | None,
    note: str | None,
    now: datetime,
    groups: Mapping[str, GroupValue] | None = None,
    start_month: int = 7,
) -> MeasureReading:
    """Record (or correct) a measure's reading for a quarter: the measure owner, coordinators, admins.

    `value` may be left out for a representation breakdown, whose overall value is the total
    of its groups. Group values given again replace the earlier ones group by group.
    """
    groups = dict(groups or {})
    if note:
        check_text(note, field="note", limit=NOTE_MAX, multiline=True)
    measure = await get_measure(session, team_id=actor.team_id, key=key)
    await ensure_can_record(session, actor=actor, measure=measure)
    check_groups(measure, await dimension_of(session, measure=measure), groups)
    if value is None:
        if measure.breakdown_kind != BreakdownKind.REPRESENTATION or not groups:
            raise ReadingRefused(key, "give the overall value")
        value = sum(g.value for g in groups.values())
    check_finite(value, field=f"value of {key}")
    rule = rule_of(measure, start_month=start_month)
    readings = list(await session.exec(select(MeasureReading).where(MeasureReading.measure_id == measure.id)))
    this = parse_quarter(quarter, start_month=start_month)
    earlier = [
        (parse_quarter(r.quarter, start_month=start_month), r.value) for r in readings if r.quarter != quarter
    ]
    reading = next((r for r in readings if r.quarter == quarter), None)
    check_reading(
        rule, quarter=this, value=value, note=note or (reading.note if reading else None), earlier=earlier
    )
    old = reading.value if reading else None
    if await get_snapshot(session, team_id=actor.team_id, quarter=quarter) is not None:
        # A closed quarter's record stands; the correction goes beside it, with its reason.
        if not note or not note.strip():
            raise ReadingRefused(key, f"{quarter} is closed, so a correction needs a reason in quotes")
        await amend_quarter(
            session,
            actor=actor,
            quarter=quarter,
            subject=f"measure {key}",
            old=f"{old:g}" if old is not None else None,
            new=f"{value:g}",
            reason=note,
            now=now,
            permitted=True,
        )
    stored = {k: {"value": g.value, "n": g.n} for k, g in groups.items()}
    if reading is None:
        reading = MeasureReading(
            team_id=actor.team_id,
            measure_id=measure.id or 0,
            quarter=quarter,
            value=value,
            note=note,
            groups=stored or None,
            recorded_by=actor.user_id,
            recorded_at=now,
        )
        session.add(reading)
    else:
        reading.value = value
        reading.note = note or reading.note
        if stored:
            # A fresh dict: SQLAlchemy tracks JSON columns by assignment, not by mutation.
            reading.groups = {**(reading.groups or {}), **stored}
        reading.recorded_by = actor.user_id
        reading.recorded_at = now
    record(
        session,
        team_id=actor.team_id,
        entity="measure",
        entity_id=measure.id,
        actor=actor.user_id,
        at=now,
        action="reading",
        field=quarter,
        old=old,
        new=value if not stored else f"{value:g} ({_groups_text(stored)})",
        note=note,
    )
    return reading


def _groups_text(groups: Mapping[str, Mapping[str, float | None]]) -> str:
    return ", ".join(f"{k}={v['value']:g}" for k, v in groups.items() if v["value"] is not None)


def criterion_of(row: ScoringCriterion) -> Criterion:
    """The pure view of a stored criterion."""
    return Criterion(key=row.key, question=row.question, weight=row.weight, levels=tuple(row.levels))


async def criteria_for(session: AsyncSession, *, item: ActionItem) -> list[ScoringCriterion]:
    """The scoring criteria of the plan an item belongs to, in the plan's order."""
    return list(
        await session.exec(
            select(ScoringCriterion)
            .join(Strategy, col(Strategy.plan_id) == col(ScoringCriterion.plan_id))
            .where(Strategy.id == item.strategy_id)
            .order_by(col(ScoringCriterion.position))
        )
    )


def no_criteria(ref: str) -> ScoreRefused:
    """The refusal for scoring an item whose plan has no scoring matrix."""
    return ScoreRefused(f"{ref}'s plan has no scoring criteria (add them to the plan file)")


async def score_item(
    session: AsyncSession,
    *,
    actor: Actor,
    ref: str,
    levels: Mapping[str, str],
    note: str | None,
    now: datetime,
) -> list[ItemScore]:
    """Score an item on some of its plan's criteria (level by number or label); the owner or a coordinator.

    Each score keeps the criterion's current weight, so a later reweighting never changes it.
    """
    if not levels:
        raise ScoreRefused("Give at least one criterion=level")
    if note:
        check_text(note, field="note", limit=NOTE_MAX, multiline=True)
    item = await get_item(session, team_id=actor.team_id, ref=ref, lock=True)
    await ensure_can_edit(session, actor=actor, item=item, action=f"score {item.ref}")
    criteria = {row.key: criterion_of(row) for row in await criteria_for(session, item=item)}
    if not criteria:
        raise no_criteria(item.ref)
    chosen: list[tuple[Criterion, int]] = []
    for key, text in levels.items():
        criterion = criteria.get(key)
        if criterion is None:
            raise ScoreRefused(f"'{key}' is not a criterion of this plan (criteria: {', '.join(criteria)})")
        chosen.append((criterion, criterion.level(text)))
    existing = {
        s.criterion_key: s for s in await session.exec(select(ItemScore).where(ItemScore.item_id == item.id))
    }
    written: list[ItemScore] = []
    for criterion, level in chosen:
        row = existing.get(criterion.key)
        old = f"{row.level} (weight {row.weight:g})" if row else None
        if row is None:
            row = ItemScore(
                team_id=item.team_id,
                item_id=item.id or 0,
                criterion_key=criterion.key,
                level=level,
                weight=criterion.weight,
                note=note,
                scored_by=actor.user_id,
                scored_at=now,
            )
            session.add(row)
        else:
            row.level, row.weight, row.note = level, criterion.weight, note
            row.scored_by, row.scored_at = actor.user_id, now
        audit(
            session,
            item=item,
            actor=actor,
            now=now,
            action="score",
            field=criterion.key,
            old=old,
            new=f"{level} {criterion.levels[level]} (weight {criterion.weight:g})",
            note=note,
        )
        written.append(row)
    return written


async def scores_of(session: AsyncSession, *, item_ids: Sequence[int]) -> dict[int, list[Score]]:
    """Each item's scores, as the pure values the totals are computed from."""
    if not item_ids:
        return {}
    found: dict[int, list[Score]] = {}
    rows = await session.exec(select(ItemScore).where(col(ItemScore.item_id).in_(list(item_ids))))
    for row in rows:
        found.setdefault(row.item_id, []).append(Score(row.criterion_key, row.level, row.weight))
    return found


@dataclass(frozen=True)
class Candidates:
    """Items of plans that have a scoring matrix, with their scores and each plan's criteria."""

    items: list[ActionItem]
    scores: dict[int, list[Score]]
    criteria: dict[int, list[Criterion]]  # by plan id
    plan_of: dict[int, int]  # strategy id -> plan id


async def candidates(session: AsyncSession, *, team_id: str, strategy_id: int | None = None) -> Candidates:
    """Every open or done item of a plan with scoring criteria (one strategy's, if given), and its scores."""
    criteria: dict[int, list[Criterion]] = {}
    rows = await session.exec(
        select(ScoringCriterion)
        .where(ScoringCriterion.team_id == team_id)
        .order_by(col(ScoringCriterion.position))
    )
    for row in rows:
        criteria.setdefault(row.plan_id, []).append(criterion_of(row))
    if not criteria:
        return Candidates([], {}, {}, {})
    strategies = await session.exec(
        select(col(Strategy.id), col(Strategy.plan_id)).where(col(Strategy.plan_id).in_(list(criteria)))
    )
    plan_of = {sid: pid for sid, pid in strategies if sid is not None}
    wanted = [strategy_id] if strategy_id is not None else list(plan_of)
    query = (
        select(ActionItem)
        .where(ActionItem.team_id == team_id)
        .where(col(ActionItem.strategy_id).in_([s for s in wanted if s in plan_of]))
        .where(ActionItem.status != "dropped")
    )
    items = list(await session.exec(query))
    scores = await scores_of(session, item_ids=[i.id for i in items if i.id is not None])
    return Candidates(items, scores, criteria, plan_of)


def ranking(found: Candidates) -> list[RankedLine]:
    """The scored candidates ranked by weighted score, ties by the earlier due date."""
    items = {i.ref: i for i in found.items}
    pool = [
        Candidate(i.ref, i.due, weighted_total(found.scores[i.id]) if i.id in found.scores else None)
        for i in found.items
    ]
    lines: list[RankedLine] = []
    for position, candidate in rank(pool):
        item = items[candidate.ref]
        criteria = found.criteria.get(found.plan_of.get(item.strategy_id, 0), [])
        lines.append(
            RankedLine(
                rank=position,
                ref=item.ref,
                title=item.title,
                score=candidate.total or 0.0,
                top=highest_total(criteria),
                due=item.due,
                status=item.status,
            )
        )
    return lines
