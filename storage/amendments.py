"""Amendments: late corrections to a closed quarter, recorded beside its frozen record, never over it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import InvalidChange
from domain.text import NOTE_MAX, check_text
from storage.audit import record
from storage.models import Amendment, QuarterSnapshot
from storage.permissions import Actor, ensure_coordinator


async def get_snapshot(session: AsyncSession, *, team_id: str, quarter: str) -> QuarterSnapshot | None:
    """The quarter's snapshot row, if it was frozen."""
    query = (
        select(QuarterSnapshot)
        .where(QuarterSnapshot.team_id == team_id)
        .where(QuarterSnapshot.quarter == quarter)
    )
    return (await session.exec(query)).first()


async def amend_quarter(
    session: AsyncSession,
    *,
    actor: Actor,
    quarter: str,
    subject: str,
    old: str | None,
    new: str,
    reason: str,
    now: datetime,
    permitted: bool = False,
) -> Amendment:
    """Record a correction to a closed quarter: coordinators, DEI coordinators and admins, with a reason."""
    snapshot = await get_snapshot(session, team_id=actor.team_id, quarter=quarter)
    if snapshot is None:
        raise InvalidChange(
            f"{quarter} is not closed, so there is nothing to amend: change the item or reading itself."
        )
    if not permitted:  # the caller has not already checked a narrower right (a measure's owner)
        await ensure_coordinator(session, actor=actor, department_id=None, action=f"amend {quarter}")
    if not reason.strip():
        raise InvalidChange(f"Say why {quarter} is amended; the reason is shown with the correction.")
    check_text(reason, field="reason", limit=NOTE_MAX, multiline=True)
    amendment = Amendment(
        team_id=actor.team_id,
        quarter=quarter,
        subject=subject,
        old=old,
        new=new,
        reason=reason.strip(),
        amended_by=actor.user_id,
        amended_at=now,
    )
    session.add(amendment)
    await session.flush()
    record(
        session,
        team_id=actor.team_id,
        entity="quarter",
        entity_id=snapshot.id,
        actor=actor.user_id,
        at=now,
        action="amend",
        field=quarter,
        old=f"{subject}: {old}" if old is not None else None,
        new=f"{subject}: {new}",
        note=reason.strip(),
    )
    return amendment
