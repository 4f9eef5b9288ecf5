"""Read-side queries over action items and their history; each filter has a supporting index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from domain.status import OPEN_STATUSES
from storage.items import get_item
from storage.models import ActionItem, AuditEvent, Strategy


@dataclass(frozen=True)
class ItemFilter:
    """Which items to list; unset fields do not filter."""

    owner_id: str | None = None
    statuses: Sequence[str] | None = None
    strategy_id: int | None = None
    department_id: int | None = None
    due_from: date | None = None
    due_to: date | None = None
    overdue_as_of: date | None = None
    stale_since: datetime | None = None

    @classmethod
    def open(cls, **kwargs: Any) -> ItemFilter:
        """A filter over open items only."""
        return cls(statuses=OPEN_STATUSES, **kwargs)


def _where(query: SelectOfScalar[Any], team_id: str, f: ItemFilter) -> SelectOfScalar[Any]:
    query = query.where(ActionItem.team_id == team_id)
    if f.owner_id is not None:
        query = query.where(ActionItem.owner_id == f.owner_id)
    if f.statuses is not None:
        query = query.where(col(ActionItem.status).in_(list(f.statuses)))
    if f.strategy_id is not None:
        query = query.where(ActionItem.strategy_id == f.strategy_id)
    if f.department_id is not None:
        query = query.where(ActionItem.department_id == f.department_id)
    if f.due_from is not None:
        query = query.where(col(ActionItem.due) >= f.due_from)
    if f.due_to is not None:
        query = query.where(col(ActionItem.due) <= f.due_to)
    if f.overdue_as_of is not None:
        query = query.where(col(ActionItem.due) < f.overdue_as_of)
        query = query.where(col(ActionItem.status).in_(OPEN_STATUSES))
    if f.stale_since is not None:
        query = query.where(col(ActionItem.updated_at) < f.stale_since)
    return query


async def find_items(
    session: AsyncSession,
    *,
    team_id: str,
    where: ItemFilter,
    today: date | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[ActionItem]:
    """Items matching `where`: overdue first (as of `today`), then by due date, then by ref number."""
    query = _where(select(ActionItem), team_id, where)
    order: list[Any] = []
    if today is not None:
        overdue = (col(ActionItem.due) < today) & col(ActionItem.status).in_(OPEN_STATUSES)
        order.append(case((overdue, 0), else_=1))
    order += [
        col(ActionItem.due).is_(None),
        col(ActionItem.due),
        col(ActionItem.department_id),
        ActionItem.number,
    ]
    query = query.order_by(*order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.exec(query))


async def count_items(session: AsyncSession, *, team_id: str, where: ItemFilter) -> int:
    """How many items match `where`."""
    query = _where(select(func.count()).select_from(ActionItem), team_id, where)
    return int((await session.exec(query)).one())


async def item_history(session: AsyncSession, *, team_id: str, ref: str) -> list[AuditEvent]:
    """Every AuditEvent of an item, oldest first."""
    item = await get_item(session, team_id=team_id, ref=ref)
    rows = await session.exec(
        select(AuditEvent)
        .where(AuditEvent.item_id == item.id)
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    return list(rows)


async def find_strategy(session: AsyncSession, *, team_id: str, name: str) -> Strategy | None:
    """A strategy by key or (case-insensitive, prefix) name."""
    wanted = name.strip().lower()
    strategies = list(await session.exec(select(Strategy).where(Strategy.team_id == team_id)))
    for strategy in strategies:
        if strategy.key.lower() == wanted or strategy.name.lower() == wanted:
            return strategy
    matches = [s for s in strategies if s.name.lower().startswith(wanted) or wanted in s.key.lower()]
    return matches[0] if len(matches) == 1 else None
