"""The quarterly record: a closed quarter frozen as it stood, and amendments that never rewrite it.

A report for a closed quarter is rendered from its snapshot, so it reads the same every time,
whatever happened to the plan afterwards. A late correction is an Amendment (what, old, new,
why, who, when) shown beside the frozen value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import NotFound
from domain.fiscal import FiscalQuarter
from domain.frozen import from_data, to_data
from domain.rollup import AmendmentLine, Rollup
from storage.amendments import get_snapshot
from storage.audit import record
from storage.models import (
    ActionItem,
    Amendment,
    CheckInCycle,
    CheckInResponse,
    Measure,
    MeasureReading,
    QuarterSnapshot,
    Strategy,
)
from storage.permissions import SYSTEM_ACTOR, Actor
from storage.queries.rollup import build_rollup


@dataclass(frozen=True)
class FrozenQuarter:
    """A closed quarter: its rollup as frozen, when and by whom, and the amendments since."""

    rollup: Rollup
    frozen_at: datetime
    frozen_by: str
    amendments: list[AmendmentLine]
    snapshot: QuarterSnapshot  # the row itself: the items, readings and answers as frozen


async def freeze_quarter(
    session: AsyncSession,
    *,
    actor: Actor,
    quarter: FiscalQuarter,
    now: datetime,
    zone: ZoneInfo | None = None,
) -> QuarterSnapshot:
    """Freeze the quarter as it stands now (once: freezing again returns the first snapshot)."""
    team_id = actor.team_id
    if (existing := await get_snapshot(session, team_id=team_id, quarter=quarter.label)) is not None:
        return existing
    today = now.astimezone(zone).date() if zone else now.date()
    as_of = min(today, quarter.end)
    rollup = await build_rollup(session, team_id=team_id, quarter=quarter, as_of=as_of, zone=zone)
    items = [
        {
            "ref": i.ref,
            "title": i.title,
            "status": i.status,
            "progress": i.progress,
            "due": i.due.isoformat() if i.due else None,
            "owner": i.owner_id,
            "evidence": i.evidence_url,
            "verified": i.verified_at is not None,
            "note": i.last_note,
            # What the public dashboard shows of the quarter is frozen with it (domain.public).
            "strategy": strategy,
            "title_es": i.title_es,
            "public_update": i.public_update,
            "public_update_es": i.public_update_es,
        }
        for i, strategy in await session.exec(
            select(ActionItem, Strategy.key)
            .join(Strategy, col(Strategy.id) == col(ActionItem.strategy_id))
            .where(ActionItem.team_id == team_id)
            .order_by(col(ActionItem.id))
        )
    ]
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
    responses = [
        {"item": ref, "responder": r.responder, "status": r.status, "progress": r.progress, "note": r.note}
        for r, ref in await session.exec(
            select(CheckInResponse, ActionItem.ref)
            .join(CheckInCycle, col(CheckInCycle.id) == col(CheckInResponse.cycle_id))
            .join(ActionItem, col(ActionItem.id) == col(CheckInResponse.item_id))
            .where(CheckInCycle.team_id == team_id)
            .where(CheckInCycle.quarter == quarter.label)
            .order_by(col(CheckInResponse.id))
        )
    ]
    snapshot = QuarterSnapshot(
        team_id=team_id,
        quarter=quarter.label,
        as_of=as_of,
        frozen_at=now,
        frozen_by=actor.user_id,
        rollup=to_data(rollup),
        items=items,
        readings=readings,
        responses=responses,
    )
    session.add(snapshot)
    await session.flush()
    record(
        session,
        team_id=team_id,
        entity="quarter",
        entity_id=snapshot.id,
        actor=actor.user_id,
        at=now,
        action="freeze",
        field=quarter.label,
        new=f"{len(items)} items, {len(readings)} readings, {len(responses)} answers"
        f" as of {as_of.isoformat()}",
    )
    return snapshot


async def frozen_quarter(session: AsyncSession, *, team_id: str, quarter: str) -> FrozenQuarter | None:
    """The closed quarter as frozen, with its amendments; None if it was never frozen."""
    snapshot = await get_snapshot(session, team_id=team_id, quarter=quarter)
    if snapshot is None:
        return None
    rows = await session.exec(
        select(Amendment)
        .where(Amendment.team_id == team_id)
        .where(Amendment.quarter == quarter)
        .order_by(col(Amendment.amended_at), col(Amendment.id))
    )
    amendments = [
        AmendmentLine(
            subject=a.subject,
            old=a.old,
            new=a.new,
            reason=a.reason,
            amended_by=a.amended_by,
            amended_on=a.amended_at.date(),
        )
        for a in rows
    ]
    rollup = from_data(Rollup, snapshot.rollup)
    who = (
        "the scheduled close"
        if snapshot.frozen_by == SYSTEM_ACTOR
        else rollup.names.get(snapshot.frozen_by) or snapshot.frozen_by
    )
    basis = f"frozen on {snapshot.frozen_at.date().isoformat()} by {who}"
    return FrozenQuarter(
        rollup=replace(rollup, basis=basis, amendments=amendments),
        frozen_at=snapshot.frozen_at,
        frozen_by=snapshot.frozen_by,
        amendments=amendments,
        snapshot=snapshot,
    )


async def quarter_rollup(
    session: AsyncSession,
    *,
    team_id: str,
    quarter: FiscalQuarter,
    as_of: date,
    department_key: str | None = None,
    zone: ZoneInfo | None = None,
) -> Rollup:
    """The quarter's rollup: as frozen when it was closed (one department's part, if asked), else computed."""
    frozen = await frozen_quarter(session, team_id=team_id, quarter=quarter.label)
    if frozen is None:
        return await build_rollup(
            session, team_id=team_id, quarter=quarter, as_of=as_of, department_key=department_key, zone=zone
        )
    if department_key is None:
        return frozen.rollup
    wanted = department_key.strip().upper()
    found = [d for d in frozen.rollup.departments if d.key == wanted]
    if not found:
        raise NotFound("department", wanted)
    (department,) = found
    # One department's figures are its own tallies, as build_rollup gives them for one department.
    return replace(
        frozen.rollup,
        departments=found,
        counts=department.counts,
        percent_complete=department.percent_complete,
        on_time_rate=department.on_time_rate,
        response_rate=department.response_rate,
    )
