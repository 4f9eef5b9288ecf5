"""Reads behind the quarterly check-in: what an owner is asked about."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.fiscal import FiscalQuarter
from domain.rollup import MeasureLine
from domain.status import OPEN_STATUSES
from storage.measures import dimension_of
from storage.models import ActionItem, CheckInCycle, CheckInResponse, Department, Measure
from storage.queries.rollup import measure_lines


@dataclass(frozen=True)
class CheckInSubject:
    """What an owner is asked about: their open items and the measures they own, each measure with
    where it stands (last reading, target, expected value) and the groups it is broken down by."""

    items: list[ActionItem]
    measures: list[Measure]
    lines: dict[str, MeasureLine] = field(default_factory=dict)
    groups: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # measure -> (key, name)


async def checkin_subject(
    session: AsyncSession, *, team_id: str, user_id: str, quarter: FiscalQuarter | None = None
) -> CheckInSubject:
    """An owner's open items (soonest due first) and the measures they own (with where each stands
    at `quarter`, when given)."""
    items = list(
        await session.exec(
            select(ActionItem)
            .where(ActionItem.team_id == team_id)
            .where(ActionItem.owner_id == user_id)
            .where(col(ActionItem.status).in_(OPEN_STATUSES))
            .order_by(col(ActionItem.due), col(ActionItem.id))
        )
    )
    measures = list(
        await session.exec(
            select(Measure).where(Measure.team_id == team_id).where(Measure.owner_id == user_id)
        )
    )
    lines: dict[str, MeasureLine] = {}
    if quarter is not None and measures:
        for placed in await measure_lines(session, team_id=team_id, quarter=quarter, owner_id=user_id):
            lines[placed.line.key] = placed.line
    groups: dict[str, list[tuple[str, str]]] = {}
    for measure in measures:
        dimension = await dimension_of(session, measure=measure)
        if dimension is not None:
            groups[measure.key] = [(str(g["key"]), str(g.get("name") or g["key"])) for g in dimension.groups]
    return CheckInSubject(items=items, measures=measures, lines=lines, groups=groups)


@dataclass(frozen=True)
class DepartmentResponses:
    """How one department has answered a workspace's current check-in: owners responded and waiting."""

    team_id: str
    quarter: str
    is_open: bool
    department: str
    responded: int
    waiting: int

    @property
    def rate(self) -> float | None:
        """Share of the owners asked who have responded (None when nobody was asked)."""
        asked = self.responded + self.waiting
        return self.responded / asked if asked else None


async def current_responses(session: AsyncSession) -> list[DepartmentResponses]:
    """Per workspace, its open check-in cycle (else the one opened last), per department.

    Owners are counted as `storage.checkins.cycle_progress` counts them (an owner of open items
    has responded if they answered in the cycle or one of their items was answered), but with
    DISTINCT reads instead of loading every open item, so a metrics scrape stays cheap.
    """
    current: dict[str, CheckInCycle] = {}
    for cycle in await session.exec(select(CheckInCycle).where(col(CheckInCycle.opened_at).is_not(None))):
        known = current.get(cycle.team_id)
        if known is None or _recency(cycle) > _recency(known):
            current[cycle.team_id] = cycle
    found: list[DepartmentResponses] = []
    for team_id, cycle in sorted(current.items()):
        departments = dict(
            (
                await session.exec(select(Department.id, Department.key).where(Department.team_id == team_id))
            ).all()
        )
        owned = select(ActionItem.department_id, col(ActionItem.owner_id)).where(
            ActionItem.team_id == team_id,
            col(ActionItem.status).in_(OPEN_STATUSES),
            col(ActionItem.owner_id).is_not(None),
            ActionItem.owner_id != "",
        )
        owners = set((await session.exec(owned.distinct())).all())
        responders = set(
            await session.exec(
                select(CheckInResponse.responder).where(CheckInResponse.cycle_id == cycle.id).distinct()
            )
        )
        answered = owned.join(CheckInResponse, col(CheckInResponse.item_id) == ActionItem.id).where(
            CheckInResponse.cycle_id == cycle.id
        )
        answered_owners = set((await session.exec(answered.distinct())).all())
        counts: dict[int, list[int]] = {}
        for department_id, owner in owners:
            done = owner in responders or (department_id, owner) in answered_owners
            counts.setdefault(department_id, [0, 0])[0 if done else 1] += 1
        found.extend(
            DepartmentResponses(
                team_id=team_id,
                quarter=cycle.quarter,
                is_open=cycle.closed_at is None,
                department=departments.get(department_id, "?"),
                responded=responded,
                waiting=waiting,
            )
            for department_id, (responded, waiting) in counts.items()
        )
    return sorted(found, key=lambda r: (r.team_id, r.department))


def _recency(cycle: CheckInCycle) -> tuple[bool, datetime]:
    # An open cycle is the current one; otherwise the one opened last.
    return (cycle.closed_at is None, cycle.opened_at or datetime.min.replace(tzinfo=UTC))
