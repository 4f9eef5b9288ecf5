"""Decisions recorded at the quarterly DEI meeting; one with an owner and a due date becomes a
follow-up action item with its own reminders, which the next agenda reports on."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import InvalidChange, NotFound
from domain.text import NOTE_MAX, TITLE_MAX, check_text
from storage.audit import record
from storage.items import create_item, get_item
from storage.models import ActionItem, ActionItemCreate, CheckInCycle, Decision, Person, Plan, Strategy
from storage.permissions import Actor, ensure_coordinator

FOLLOW_UP = "Follow-up: "


async def meeting_quarter(session: AsyncSession, *, team_id: str, today: date) -> CheckInCycle:
    """The quarter whose DEI meeting was held most recently (today's included)."""
    cycle = (
        await session.exec(
            select(CheckInCycle)
            .where(CheckInCycle.team_id == team_id)
            .where(col(CheckInCycle.meeting_date) <= today)
            .order_by(col(CheckInCycle.meeting_date).desc())
        )
    ).first()
    if cycle is None:
        raise InvalidChange(
            "No DEI meeting has been held yet, so there is no meeting to record a decision for. "
            "Set the date with /reap checkin schedule <quarter> <date>."
        )
    return cycle


async def _followup_strategy(
    session: AsyncSession, *, team_id: str, about: ActionItem | None, owner: str
) -> int:
    if about is not None:
        return about.strategy_id
    person = (
        await session.exec(select(Person).where(Person.team_id == team_id).where(Person.user_id == owner))
    ).first()
    if person is None or person.department_id is None:
        raise InvalidChange(
            f"<@{owner}> has no department, so I cannot tell which plan the follow-up belongs to; "
            "add `item <ref>` to say what it is about."
        )
    strategy = (
        await session.exec(
            select(Strategy)
            .join(Plan, col(Plan.id) == col(Strategy.plan_id))
            .where(Plan.department_id == person.department_id)
            .order_by(col(Plan.end_date).desc(), col(Strategy.position))
        )
    ).first()
    if strategy is None or strategy.id is None:
        raise NotFound("plan for the department of", f"<@{owner}>")
    return strategy.id


async def record_decision(
    session: AsyncSession,
    *,
    actor: Actor,
    text: str,
    ref: str | None,
    owner: str | None,
    due: date | None,
    today: date,
    now: datetime,
) -> tuple[Decision, ActionItem | None]:
    """Record a decision at the latest DEI meeting; with an owner and a due date, create its follow-up."""
    if not text.strip():
        raise InvalidChange('A decision needs its text: /reap decision "what was decided"')
    check_text(text, field="decision", limit=NOTE_MAX, multiline=True)
    await ensure_coordinator(session, actor=actor, department_id=None, action="record a decision")
    if (owner is None) != (due is None):
        raise InvalidChange(
            "A follow-up needs both an owner and a due date (or neither, for a decision alone)."
        )
    if due is not None and due < today:
        raise InvalidChange(f"{due.isoformat()} is in the past; give the follow-up a due date from today on.")
    cycle = await meeting_quarter(session, team_id=actor.team_id, today=today)
    about = await get_item(session, team_id=actor.team_id, ref=ref) if ref else None
    followup = None
    if owner is not None and due is not None:
        strategy_id = await _followup_strategy(session, team_id=actor.team_id, about=about, owner=owner)
        title = (FOLLOW_UP + " ".join(text.split()))[:TITLE_MAX]
        followup = await create_item(
            session,
            data=ActionItemCreate(
                strategy_id=strategy_id,
                title=title,
                description=f"Decided at the {cycle.quarter} DEI meeting: {text}"[:4000],
                owner_id=owner,
                due=due,
            ),
            actor=actor,
            now=now,
        )
    decision = Decision(
        team_id=actor.team_id,
        quarter=cycle.quarter,
        text=text.strip(),
        item_id=about.id if about else None,
        owner_id=owner,
        due=due,
        followup_item_id=followup.id if followup else None,
        decided_by=actor.user_id,
        decided_at=now,
    )
    session.add(decision)
    await session.flush()
    record(
        session,
        team_id=actor.team_id,
        entity="decision",
        entity_id=decision.id,
        item_id=about.id if about else None,
        actor=actor.user_id,
        at=now,
        action="decide",
        field=cycle.quarter,
        new=text.strip()[:4000],
    )
    return decision, followup
