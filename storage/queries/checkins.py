"""Reads behind the quarterly check-in: what an owner is asked about."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.status import OPEN_STATUSES
from storage.models import ActionItem, Measure


@dataclass(frozen=True)
class CheckInSubject:
    """What an owner is asked about: their open items and the measures they own."""

    items: list[ActionItem]
    measures: list[Measure]


async def checkin_subject(session: AsyncSession, *, team_id: str, user_id: str) -> CheckInSubject:
    """An owner's open items (soonest due first) and the measures they own."""
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
    return CheckInSubject(items=items, measures=measures)
