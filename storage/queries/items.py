"""Read-side queries over action items and their history; each filter has a supporting index."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, case, exists, func
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import NotFound
from domain.status import OPEN_STATUSES
from storage.items import get_item
from storage.models import ActionItem, AuditEvent, ChangeRequest, ItemScore, Strategy


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


# Each filter field as a condition on a bound parameter of the same name, so a statement built for
# one shape of filter serves every request of that shape from SQLAlchemy's compiled cache (building
# the list's SELECT anew cost more CPU than running it).
_CONDITIONS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "owner_id": lambda: col(ActionItem.owner_id) == bindparam("owner_id"),
    "statuses": lambda: col(ActionItem.status).in_(bindparam("statuses", expanding=True)),
    "strategy_id": lambda: col(ActionItem.strategy_id) == bindparam("strategy_id"),
    "department_id": lambda: col(ActionItem.department_id) == bindparam("department_id"),
    "due_from": lambda: col(ActionItem.due) >= bindparam("due_from"),
    "due_to": lambda: col(ActionItem.due) <= bindparam("due_to"),
    "overdue_as_of": lambda: and_(
        col(ActionItem.due) < bindparam("overdue_as_of"), col(ActionItem.status).in_(OPEN_STATUSES)
    ),
    "stale_since": lambda: col(ActionItem.updated_at) < bindparam("stale_since"),
}


def _parameters(team_id: str, f: ItemFilter) -> dict[str, Any]:
    values = {name: getattr(f, name) for name in _CONDITIONS if getattr(f, name) is not None}
    if "statuses" in values:
        values["statuses"] = list(values["statuses"])
    return {"team_id": team_id, **values}


def _filtered(query: Any, names: Iterable[str]) -> Any:
    query = query.where(col(ActionItem.team_id) == bindparam("team_id"))
    for name in names:
        query = query.where(_CONDITIONS[name]())
    return query


def _ordered(query: Any, *, today: bool, limit: bool) -> Any:
    order: list[Any] = []
    if today:
        overdue = (col(ActionItem.due) < bindparam("today")) & col(ActionItem.status).in_(OPEN_STATUSES)
        order.append(case((overdue, 0), else_=1))
    order += [
        col(ActionItem.due).is_(None),
        col(ActionItem.due),
        col(ActionItem.department_id),
        col(ActionItem.number),
    ]
    query = query.order_by(*order).offset(bindparam("offset", type_=Integer))
    return query.limit(bindparam("limit", type_=Integer)) if limit else query


@functools.cache
def _items_query(names: tuple[str, ...], today: bool, limit: bool) -> Any:
    return _ordered(_filtered(select(ActionItem), names), today=today, limit=limit)


@functools.cache
def _count_query(names: tuple[str, ...]) -> Any:
    return _filtered(select(func.count()).select_from(ActionItem), names)


def _paged(
    team_id: str, where: ItemFilter, today: date | None, limit: int | None, offset: int
) -> tuple[dict[str, Any], tuple[str, ...]]:
    values = _parameters(team_id, where)
    values["offset"] = offset
    if today is not None:
        values["today"] = today
    if limit is not None:
        values["limit"] = limit
    return values, tuple(name for name in _CONDITIONS if name in values)


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
    values, names = _paged(team_id, where, today, limit, offset)
    query = _items_query(names, today is not None, limit is not None)
    return list(await session.exec(query, params=values))


async def count_items(session: AsyncSession, *, team_id: str, where: ItemFilter) -> int:
    """How many items match `where`."""
    values = _parameters(team_id, where)
    query = _count_query(tuple(name for name in _CONDITIONS if name in values))
    return int((await session.exec(query, params=values)).one())


@dataclass(frozen=True)
class CardRow:
    """An item with what its card shows beside it: its strategy's name, the change request waiting
    on it, and whether it has been scored (the scores themselves are read only for those)."""

    item: ActionItem
    strategy: str
    pending: ChangeRequest | None
    scored: bool


def _with_card(query: Any) -> Any:
    scored = exists().where(col(ItemScore.item_id) == col(ActionItem.id)).label("scored")
    return (
        query.add_columns(col(Strategy.name), ChangeRequest, scored)
        .join(Strategy, col(Strategy.id) == col(ActionItem.strategy_id))
        .outerjoin(ChangeRequest, col(ChangeRequest.open_item_id) == col(ActionItem.id))
    )


@functools.cache
def _cards_query(names: tuple[str, ...], today: bool, limit: bool) -> Any:
    query = _with_card(_filtered(sa_select(ActionItem), names))
    return _ordered(query, today=today, limit=limit)


@functools.cache
def _card_by_ref() -> Any:
    return _with_card(sa_select(ActionItem)).where(
        col(ActionItem.team_id) == bindparam("team_id"), col(ActionItem.ref) == bindparam("ref")
    )


def _rows(result: Any) -> list[CardRow]:
    return [CardRow(item, name, pending, bool(scored)) for item, name, pending, scored in result]


async def item_cards(
    session: AsyncSession,
    *,
    team_id: str,
    where: ItemFilter,
    today: date | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[CardRow]:
    """`find_items` with each item's card beside it, in one statement."""
    values, names = _paged(team_id, where, today, limit, offset)
    query = _cards_query(names, today is not None, limit is not None)
    return _rows(await session.exec(query, params=values))


async def item_card(session: AsyncSession, *, team_id: str, ref: str) -> CardRow:
    """One item by ref (case-insensitive) with its card beside it, in one statement; or NotFound."""
    rows = _rows(await session.exec(_card_by_ref(), params={"team_id": team_id, "ref": ref.upper()}))
    if not rows:
        raise NotFound("item", ref.upper())
    return rows[0]


@functools.cache
def _extras_query() -> Any:
    return (
        sa_select(col(Strategy.name), ChangeRequest)
        .select_from(Strategy)
        .outerjoin(ChangeRequest, col(ChangeRequest.open_item_id) == bindparam("item_id"))
        .where(col(Strategy.id) == bindparam("strategy_id"))
    )


async def card_extras(session: AsyncSession, *, item: ActionItem) -> tuple[str, ChangeRequest | None]:
    """The strategy name and the pending change request of an item just read or changed (one read)."""
    found = (
        await session.exec(_extras_query(), params={"item_id": item.id, "strategy_id": item.strategy_id})
    ).first()
    return ("", None) if found is None else (found[0], found[1])


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
