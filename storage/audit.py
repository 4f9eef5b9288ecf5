"""The one way an AuditEvent is written: who changed what, when, old -> new, and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.bulk import insert_rows
from storage.models import AuditEvent


def audit_text(value: object) -> str | None:
    """How a value is kept in the trail: dates as ISO, whole floats without '.0', the rest as str."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def event_row(
    *,
    team_id: str,
    entity: str,
    entity_id: int | None,
    actor: str,
    at: datetime,
    action: str,
    field: str | None = None,
    old: object = None,
    new: object = None,
    note: str | None = None,
    item_id: int | None = None,
) -> dict[str, Any]:
    """One AuditEvent's column values, kept as `record` keeps them (for `record_all`)."""
    return {
        "team_id": team_id,
        "entity": entity,
        "entity_id": entity_id,
        "item_id": item_id,
        "actor": actor,
        "at": at,
        "action": action,
        "field": field,
        "old": audit_text(old),
        "new": audit_text(new),
        "note": note,
    }


def record(
    session: AsyncSession,
    *,
    team_id: str,
    entity: str,
    entity_id: int | None,
    actor: str,
    at: datetime,
    action: str,
    field: str | None = None,
    old: object = None,
    new: object = None,
    note: str | None = None,
    item_id: int | None = None,
) -> AuditEvent:
    """Append one AuditEvent to the session (written with the change, in the same transaction)."""
    event = AuditEvent(
        **event_row(
            team_id=team_id,
            entity=entity,
            entity_id=entity_id,
            item_id=item_id,
            actor=actor,
            at=at,
            action=action,
            field=field,
            old=old,
            new=new,
            note=note,
        )
    )
    session.add(event)
    return event


async def record_all(session: AsyncSession, events: Sequence[Mapping[str, Any]]) -> None:
    """Write many AuditEvents (from `event_row`) with one statement, in the caller's transaction."""
    await insert_rows(session, AuditEvent, events)
