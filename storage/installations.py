"""Which workspaces and orgs the bot serves: installs recorded, uninstalls marked (data kept), audited."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit
from storage.models import Installation, Notification, NotificationState

UNINSTALLED = "the workspace uninstalled REAP Tracker"
OWED = (NotificationState.PENDING.value, NotificationState.SENDING.value)


async def record_install(
    session: AsyncSession,
    *,
    team_id: str,
    enterprise_id: str | None,
    is_enterprise_install: bool,
    team_name: str,
    bot_user_id: str,
    installer: str,
    now: datetime,
) -> Installation:
    """Remember a (re)install of a workspace, or of a whole org when `is_enterprise_install`
    (then `team_id` is the org's id); a reinstall clears an uninstall's mark."""
    row = await session.get(Installation, team_id)
    if row is None:
        row = Installation(team_id=team_id, updated_at=now)
        session.add(row)
    reinstalled = row.uninstalled_at is not None
    row.team_name = team_name
    row.bot_user_id = bot_user_id
    row.enterprise_id = enterprise_id
    row.is_enterprise_install = is_enterprise_install
    row.uninstalled_at = None
    row.updated_at = now
    if is_enterprise_install and enterprise_id:
        # The org is back: so is every workspace it serves.
        await session.exec(
            update(Installation)
            .where(col(Installation.enterprise_id) == enterprise_id)
            .values(uninstalled_at=None, updated_at=now)
        )
    audit.record(
        session,
        team_id=team_id,
        entity="installation",
        entity_id=None,
        actor=installer[:32] or "slack",
        at=now,
        action="reinstalled" if reinstalled else "installed",
        note="org-wide" if is_enterprise_install else None,
    )
    return row


async def mark_uninstalled(
    session: AsyncSession, *, team_id: str | None, enterprise_id: str | None, now: datetime, why: str
) -> list[str]:
    """Mark the workspace (or, with no team, the org) uninstalled, keeping its data, and settle
    every message still owed to it unsent. Returns the installation ids marked."""
    where = []
    if team_id:
        where.append(col(Installation.team_id) == team_id)
    if enterprise_id:
        where.append(col(Installation.enterprise_id) == enterprise_id)
        where.append(col(Installation.team_id) == enterprise_id)
    if not where:
        return []
    rows = list(
        await session.exec(
            select(Installation).where(or_(*where)).where(col(Installation.uninstalled_at).is_(None))
        )
    )
    marked = [row.team_id for row in rows]
    if team_id and team_id not in marked:
        # A workspace that only ever ran with a bot token, or served through its org, has no row yet.
        row = Installation(team_id=team_id, enterprise_id=enterprise_id, updated_at=now)
        session.add(row)
        rows.append(row)
        marked.append(team_id)
    for row in rows:
        row.uninstalled_at = now
        row.updated_at = now
        audit.record(
            session,
            team_id=row.team_id,
            entity="installation",
            entity_id=None,
            actor="slack",
            at=now,
            action="uninstalled",
            note=why,
        )
    await session.exec(
        update(Notification)
        .where(col(Notification.team_id).in_(marked))
        .where(
            col(Notification.state).in_([NotificationState.PENDING.value, NotificationState.SENDING.value])
        )
        .values(state=NotificationState.SKIPPED.value, lease_until=None, last_error=UNINSTALLED)
    )
    return marked


async def uninstalled_teams(session: AsyncSession) -> set[str]:
    """Every workspace or org whose installation was removed (their data is kept, never served)."""
    rows = await session.exec(
        select(Installation.team_id).where(col(Installation.uninstalled_at).is_not(None))
    )
    return set(rows)


async def enterprise_of(session: AsyncSession, *, team_id: str) -> str | None:
    """The Grid org a workspace belongs to, as its installation recorded it."""
    row = await session.get(Installation, team_id)
    return row.enterprise_id if row is not None else None


async def is_served(session: AsyncSession, *, team_id: str, enterprise_id: str | None) -> bool:
    """False once the workspace, or the org it is served through, was uninstalled."""
    ids = [team_id, *([enterprise_id] if enterprise_id else [])]
    rows = await session.exec(
        select(Installation.team_id)
        .where(col(Installation.team_id).in_(ids))
        .where(col(Installation.uninstalled_at).is_not(None))
    )
    return rows.first() is None
