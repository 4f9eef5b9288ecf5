"""The public record of a quarter, read for the dashboard: frozen if the quarter was closed, else "as of".

Only what domain.public declares public leaves here: items are cut down by `public_item`, measure
lines lose their owner, amendments lose their author, and readings are broken down with the same
small-group suppression as every report, so a suppressed group's numbers never reach the site.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.equity import BreakdownKind, GroupInput, breakdown
from domain.fiscal import FiscalQuarter
from domain.public import (
    DimensionInfo,
    Edition,
    GroupInfo,
    PublicAmendment,
    PublicDepartment,
    PublicItem,
    PublicSettings,
    PublicStrategy,
    ReadingRow,
    Text,
    public_item,
    public_measure,
    public_requests,
)
from domain.rollup import DepartmentRollup, Rollup
from storage.models import (
    ActionItem,
    Amendment,
    Department,
    Dimension,
    Measure,
    MeasureReading,
    Plan,
    QuarterSnapshot,
    Strategy,
)
from storage.queries.rollup import build_rollup
from storage.snapshots import frozen_quarter


async def frozen_quarters(session: AsyncSession, *, team_id: str) -> list[str]:
    """Every closed (frozen) quarter of the workspace, oldest first."""
    rows = await session.exec(
        select(QuarterSnapshot.quarter)
        .where(QuarterSnapshot.team_id == team_id)
        .order_by(col(QuarterSnapshot.quarter))
    )
    return list(rows)


async def record_changed_at(session: AsyncSession, *, team_id: str) -> datetime | None:
    """When the public record last changed: the newest freeze or amendment (None: nothing frozen)."""
    frozen = (
        await session.exec(
            select(QuarterSnapshot.frozen_at)
            .where(QuarterSnapshot.team_id == team_id)
            .order_by(col(QuarterSnapshot.frozen_at).desc())
            .limit(1)
        )
    ).first()
    amended = (
        await session.exec(
            select(Amendment.amended_at)
            .where(Amendment.team_id == team_id)
            .order_by(col(Amendment.amended_at).desc())
            .limit(1)
        )
    ).first()
    found = [t for t in (frozen, amended) if t is not None]
    return max(found) if found else None


def _choose_plan(plans: Sequence[Plan], as_of: date) -> Plan | None:
    covering = [p for p in plans if p.start_date <= as_of <= p.end_date]
    started = [p for p in plans if p.start_date <= as_of]
    pool = covering or started
    if pool:
        return max(pool, key=lambda p: p.start_date)
    return min(plans, key=lambda p: p.start_date) if plans else None


async def public_settings(session: AsyncSession, *, team_id: str, as_of: date) -> dict[str, PublicSettings]:
    """Each department's publishing choices (its current plan's), by department key."""
    departments = {
        d.id: d.key for d in await session.exec(select(Department).where(Department.team_id == team_id))
    }
    plans: dict[int, list[Plan]] = defaultdict(list)
    for plan in await session.exec(select(Plan).where(Plan.team_id == team_id)):
        plans[plan.department_id].append(plan)
    out: dict[str, PublicSettings] = {}
    for department_id, group in plans.items():
        chosen = _choose_plan(group, as_of)
        if chosen is not None and department_id in departments:
            out[departments[department_id]] = PublicSettings.from_mapping(chosen.public)
    return out


def _item_data(item: ActionItem, strategy: str) -> dict[str, Any]:
    # The shape storage.snapshots freezes, so a live "as of" edition reads like a frozen one.
    return {
        "ref": item.ref,
        "title": item.title,
        "status": item.status,
        "progress": item.progress,
        "due": item.due.isoformat() if item.due else None,
        "owner": item.owner_id,
        "evidence": item.evidence_url,
        "verified": item.verified_at is not None,
        "note": item.last_note,
        "strategy": strategy,
        "title_es": item.title_es,
        "public_update": item.public_update,
        "public_update_es": item.public_update_es,
    }


def _ref_number(ref: str) -> int:
    number = ref.rpartition("-")[2]
    return int(number) if number.isdigit() else 0


async def public_edition(
    session: AsyncSession,
    *,
    team_id: str,
    quarter: FiscalQuarter,
    today: date,
    zone: ZoneInfo,
    provisional: bool = False,
) -> Edition | None:
    """The quarter as the public may see it: frozen (None if it was never closed), or with
    `provisional` the live quarter as of `today`, for the departments whose plan opts in to that."""
    if provisional:
        as_of = min(today, quarter.end)
        rollup = await build_rollup(session, team_id=team_id, quarter=quarter, as_of=as_of, zone=zone)
        rows = await session.exec(
            select(ActionItem, Strategy.key)
            .join(Strategy, col(Strategy.id) == col(ActionItem.strategy_id))
            .where(ActionItem.team_id == team_id)
            .order_by(col(ActionItem.id))
        )
        items = [_item_data(item, key) for item, key in rows]
        readings = [
            {"measure": key, "quarter": r.quarter, "value": r.value, "groups": r.groups, "note": r.note}
            for r, key in await session.exec(
                select(MeasureReading, Measure.key)
                .join(Measure, col(Measure.id) == col(MeasureReading.measure_id))
                .where(MeasureReading.team_id == team_id)
                .where(col(MeasureReading.quarter) <= quarter.label)
                .order_by(col(Measure.key), col(MeasureReading.quarter))
            )
        ]
        amendments: list[PublicAmendment] = []
        frozen_on = None
    else:
        frozen = await frozen_quarter(session, team_id=team_id, quarter=quarter.label)
        if frozen is None:
            return None
        snapshot = frozen.snapshot
        rollup, as_of = frozen.rollup, snapshot.as_of
        items, readings = list(snapshot.items), list(snapshot.readings)
        amendments = [
            PublicAmendment(subject=a.subject, old=a.old, new=a.new, reason=a.reason, amended_on=a.amended_on)
            for a in frozen.amendments
        ]
        frozen_on = frozen.frozen_at.astimezone(zone).date()
        if any("strategy" not in i for i in items):
            # Frozen before the record kept each item's strategy: the item's strategy now.
            items = await _with_strategies(session, team_id=team_id, items=items)
    settings = await public_settings(session, team_id=team_id, as_of=as_of)
    return await _edition(
        session,
        team_id=team_id,
        rollup=rollup,
        as_of=as_of,
        provisional=provisional,
        frozen_on=frozen_on,
        items=items,
        readings=readings,
        amendments=amendments,
        settings=settings,
    )


async def _with_strategies(
    session: AsyncSession, *, team_id: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = await session.exec(
        select(ActionItem.ref, Strategy.key)
        .join(Strategy, col(Strategy.id) == col(ActionItem.strategy_id))
        .where(ActionItem.team_id == team_id)
    )
    strategy_of = dict(rows.all())
    return [i if "strategy" in i else {**i, "strategy": strategy_of.get(i["ref"], "")} for i in items]


async def _edition(
    session: AsyncSession,
    *,
    team_id: str,
    rollup: Rollup,
    as_of: date,
    provisional: bool,
    frozen_on: date | None,
    items: list[dict[str, Any]],
    readings: list[dict[str, Any]],
    amendments: list[PublicAmendment],
    settings: Mapping[str, PublicSettings],
) -> Edition:
    plans = {p.id: p for p in await session.exec(select(Plan).where(Plan.team_id == team_id))}
    departments = {
        d.key: d for d in await session.exec(select(Department).where(Department.team_id == team_id))
    }
    strategies = list(await session.exec(select(Strategy).where(Strategy.team_id == team_id)))
    measures = {m.key: m for m in await session.exec(select(Measure).where(Measure.team_id == team_id))}
    dimension_rows = list(await session.exec(select(Dimension).where(Dimension.team_id == team_id)))
    plan_of_strategy = {s.id: s.plan_id for s in strategies}
    by_department: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_department[str(item["ref"]).rpartition("-")[0]].append(item)
    published: list[PublicDepartment] = []
    measure_plan: dict[str, Plan] = {}
    for rolled in rollup.departments:
        chosen = settings.get(rolled.key, PublicSettings())
        if provisional and not chosen.as_of:
            continue  # only plans that opt in show their quarter before it closes
        row = departments.get(rolled.key)
        dept_plans = [p for p in plans.values() if row is not None and p.department_id == row.id]
        plan = _choose_plan(dept_plans, as_of)
        described = {s.key: s for s in strategies if plan is not None and s.plan_id == plan.id}
        department = _department(
            rolled,
            rollup=rollup,
            as_of=as_of,
            settings=chosen,
            plan=plan,
            items=by_department.get(rolled.key, []),
            descriptions={k: s.description for k, s in described.items()},
        )
        published.append(department)
        for line in department.measures:
            stored = measures.get(line.key)
            owner_plan = plans.get(plan_of_strategy.get(stored.strategy_id)) if stored else None
            if owner_plan is not None:
                measure_plan[line.key] = owner_plan
    used_plans = {p.id for p in measure_plan.values()}
    dimensions = {(d.plan_id, d.key): d for d in dimension_rows if d.plan_id in used_plans}
    rows = _reading_rows(
        published, readings=readings, measures=measures, measure_plan=measure_plan, dimensions=dimensions
    )
    measure_es = {
        line.key: name
        for department in published
        for line in department.measures
        if (name := settings.get(department.key, PublicSettings()).es("measures", line.key))
    }
    licences = {settings.get(d.key, PublicSettings()).licence for d in published}
    return Edition(
        quarter=rollup.quarter,
        as_of=as_of,
        provisional=provisional,
        frozen_on=frozen_on,
        departments=published,
        amendments=amendments,
        dimensions=[
            DimensionInfo(
                key=d.key,
                name=d.name,
                source=d.source,
                groups=tuple(
                    GroupInfo(
                        key=str(g["key"]),
                        name=str(g.get("name") or g["key"]),
                        population_share=_finite(g.get("population_share")),
                    )
                    for g in d.groups
                ),
            )
            for d in sorted(dimensions.values(), key=lambda d: (d.plan_id, d.id or 0))
        ],
        readings=rows,
        min_group_count=min((p.min_group_count for p in measure_plan.values()), default=10),
        licence=licences.pop() if len(licences) == 1 else PublicSettings().licence,
        measure_es=measure_es,
    )


def _department(
    rolled: DepartmentRollup,
    *,
    rollup: Rollup,
    as_of: date,
    settings: PublicSettings,
    plan: Plan | None,
    items: list[dict[str, Any]],
    descriptions: Mapping[str, str],
) -> PublicDepartment:
    show = settings.show
    by_strategy: dict[str, list[PublicItem]] = defaultdict(list)
    for data in sorted(items, key=lambda i: _ref_number(str(i["ref"]))):
        by_strategy[str(data.get("strategy") or "")].append(
            public_item(data, as_of=as_of, show=show, names=rollup.names)
        )
    strategies = [
        PublicStrategy(
            key=s.key,
            name=Text(s.name, settings.es("strategies", s.key)),
            description=descriptions.get(s.key, ""),
            counts=dict(s.counts),
            percent_complete=s.percent_complete,
            items=by_strategy.get(s.key, []),
            measures=[public_measure(m) for m in s.measures],
        )
        for s in rolled.strategies
    ]
    return PublicDepartment(
        key=rolled.key,
        name=Text(rolled.name, settings.es("department")),
        plan_title=Text(plan.title if plan else rolled.name, settings.es("title")),
        strategies=strategies,
        counts=dict(rolled.counts),
        percent_complete=rolled.percent_complete,
        on_time_rate=rolled.on_time_rate,
        verified=rolled.verified,
        overdue=sum(1 for s in strategies for i in s.items if i.days_overdue > 0),
        show=show,
        history=rolled.changes if show.history else None,
        requests=public_requests(rolled.requests, show),
        licence=settings.licence,
    )


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _reading_rows(
    departments: list[PublicDepartment],
    *,
    readings: list[dict[str, Any]],
    measures: Mapping[str, Measure],
    measure_plan: Mapping[str, Plan],
    dimensions: Mapping[tuple[int, str], Dimension],
) -> list[ReadingRow]:
    """Each published measure's readings: the overall value, and each group's through the same
    breakdown (and small-group suppression) the reports use."""
    department_of = {m.key: d for d in departments for m in d.measures}
    rows: list[ReadingRow] = []
    for reading in readings:
        key = str(reading.get("measure"))
        department = department_of.get(key)
        measure = measures.get(key)
        if department is None or measure is None:
            continue
        value = _finite(reading.get("value"))
        note = (reading.get("note") or None) if department.show.notes else None
        quarter = str(reading.get("quarter"))
        rows.append(ReadingRow(department.key, key, quarter, "", "", value, note=note))
        plan = measure_plan.get(key)
        groups = reading.get("groups")
        if plan is None or not measure.breakdown_dimension or not isinstance(groups, dict):
            continue
        dimension = dimensions.get((plan.id or 0, measure.breakdown_dimension))
        if dimension is None:
            continue
        inputs = [
            GroupInput(
                key=str(g["key"]),
                value=_finite((groups.get(str(g["key"])) or {}).get("value")),
                n=_finite((groups.get(str(g["key"])) or {}).get("n")),
                population_share=_finite(g.get("population_share")),
            )
            for g in dimension.groups
        ]
        result = breakdown(
            measure.breakdown_kind or BreakdownKind.RATE.value,
            inputs,
            overall=value,
            reference_group=measure.reference_group,
            min_count=plan.min_group_count,
        )
        names = {str(g["key"]): str(g.get("name") or g["key"]) for g in dimension.groups}
        for group in result.groups:
            if group.value is None and not group.suppressed:
                continue  # no reading for that group this quarter
            rows.append(
                ReadingRow(
                    department=department.key,
                    measure=key,
                    quarter=quarter,
                    group=group.key,
                    group_name=names.get(group.key, group.key),
                    value=group.value,
                    gap=group.gap,
                    ratio=group.ratio,
                    index=group.index,
                    share=group.share,
                    suppressed=group.suppressed,
                )
            )
    return rows
