"""The quarterly DEI meeting's agenda, read from the quarter's record and the live plan."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.agenda import Agenda, AgendaItem, AgendaMeasure, FollowUp, Headline
from domain.cadence import Cadence
from domain.errors import InvalidChange
from domain.fiscal import FiscalQuarter
from domain.status import ItemStatus, MeasureStatus
from storage.changes import describe, pending_requests
from storage.models import ActionItem, CheckInCycle, Decision, Department, Plan, Strategy
from storage.snapshots import quarter_rollup

_NEEDS_A_DECISION = (ItemStatus.OFF_TRACK.value, ItemStatus.BLOCKED.value)


def _outcome(item: ActionItem | None, today: date) -> str:
    if item is None:
        return "recorded"
    if item.status in (ItemStatus.DONE.value, ItemStatus.DROPPED.value):
        return item.status
    return "overdue" if item.due is not None and item.due < today else "open"


async def agenda_cycle(session: AsyncSession, *, team_id: str, quarter: FiscalQuarter) -> CheckInCycle:
    """The quarter's check-in cycle, which holds its meeting date; refused if there is none."""
    cycle = (
        await session.exec(
            select(CheckInCycle)
            .where(CheckInCycle.team_id == team_id)
            .where(CheckInCycle.quarter == quarter.label)
        )
    ).first()
    if cycle is None:
        raise InvalidChange(
            f"{quarter.label} has no DEI meeting date, so there is no agenda yet; "
            f"set it with /reap checkin schedule {quarter.label} <date>."
        )
    return cycle


async def build_agenda(
    session: AsyncSession, *, team_id: str, quarter: FiscalQuarter, today: date, zone: ZoneInfo | None = None
) -> Agenda:
    """What the quarter's DEI meeting needs: headline, decisions needed, measures, follow-ups."""
    cycle = await agenda_cycle(session, team_id=team_id, quarter=quarter)
    rollup = await quarter_rollup(session, team_id=team_id, quarter=quarter, as_of=today, zone=zone)
    headline = Headline(
        items=rollup.total,
        percent_complete=rollup.percent_complete,
        on_time_rate=rollup.on_time_rate,
        overdue=rollup.overdue_count,
        response_rate=rollup.response_rate,
    )
    departments = {
        d.id: d.key for d in await session.exec(select(Department).where(Department.team_id == team_id))
    }
    cadences = {
        strategy_id: Cadence.from_mapping(cadence)
        for strategy_id, cadence in await session.exec(
            select(Strategy.id, Plan.cadence).join(Plan, col(Plan.id) == col(Strategy.plan_id))
        )
    }
    requests = {p.item.id: p.request for p in await pending_requests(session, team_id=team_id)}
    needed: list[AgendaItem] = []
    items = await session.exec(
        select(ActionItem)
        .where(ActionItem.team_id == team_id)
        .where(col(ActionItem.status).notin_([ItemStatus.DONE.value, ItemStatus.DROPPED.value]))
        .order_by(col(ActionItem.department_id), col(ActionItem.number))
    )
    for item in items:
        reasons: list[str] = []
        if item.status in _NEEDS_A_DECISION:
            reasons.append(ItemStatus(item.status).label)
        overdue = (today - item.due).days if item.due is not None else 0
        threshold = cadences.get(item.strategy_id, Cadence()).escalate_after
        if overdue > threshold:
            reasons.append(f"{overdue} days overdue")
        if (request := requests.get(item.id)) is not None:
            reasons.append(f"change request #{request.id}: {describe(request)}")
        if reasons:
            needed.append(
                AgendaItem(
                    ref=item.ref,
                    title=item.title,
                    department=departments.get(item.department_id, ""),
                    owner_id=item.owner_id,
                    status=item.status,
                    due=item.due,
                    reasons=tuple(reasons),
                )
            )
    measures: list[AgendaMeasure] = []
    for department, measure in rollup.measure_lines():
        why: list[str] = []
        if measure.status in (MeasureStatus.OFF_TRACK, MeasureStatus.NEEDS_ATTENTION):
            why.append(measure.status.label + (f": {measure.problem}" if measure.problem else ""))
        if measure.breakdown is not None and measure.breakdown.narrowed_since_last is False:
            widest = measure.breakdown.current.largest_gap
            who = measure.breakdown.name(widest.key) if widest else "a group"
            why.append(f"the gap for {who} did not narrow since last quarter")
        if why:
            measures.append(
                AgendaMeasure(
                    key=measure.key,
                    name=measure.name,
                    department=department,
                    status=measure.status.value,
                    reasons=tuple(why),
                )
            )
    decisions = list(
        await session.exec(
            select(Decision)
            .where(Decision.team_id == team_id)
            .where(col(Decision.quarter) <= quarter.label)
            .order_by(col(Decision.decided_at), col(Decision.id))
        )
    )
    followup_ids = [d.followup_item_id for d in decisions if d.followup_item_id is not None]
    followups = {
        i.id: i
        for i in (
            await session.exec(select(ActionItem).where(col(ActionItem.id).in_(followup_ids)))
            if followup_ids
            else []
        )
    }
    previous = quarter.previous().label

    def line(decision: Decision) -> FollowUp:
        item = followups.get(decision.followup_item_id) if decision.followup_item_id else None
        return FollowUp(
            text=decision.text,
            quarter=decision.quarter,
            ref=item.ref if item else None,
            owner_id=decision.owner_id,
            due=decision.due,
            outcome=_outcome(item, today),
        )

    earlier = [line(d) for d in decisions if d.quarter < quarter.label]
    # Last meeting's decisions all come back with their outcome; older ones only while still open.
    carried = [f for f in earlier if f.quarter == previous or f.outcome in ("open", "overdue")]
    return Agenda(
        quarter=quarter.label,
        meeting_date=cycle.meeting_date,
        as_of=today,
        headline=headline,
        decisions_needed=needed,
        measures=measures,
        followups=carried,
        decisions=[line(d) for d in decisions if d.quarter == quarter.label],
    )
