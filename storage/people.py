"""People: created on first contact, refreshed from Slack, paused for leave, given roles."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import InvalidChange, NotFound, PermissionDenied
from domain.status import Role
from storage.audit import record
from storage.models import Department, Person
from storage.permissions import Actor, is_dei


def _audit(
    session: AsyncSession,
    *,
    person: Person,
    actor: Actor,
    now: datetime,
    field: str,
    old: object,
    new: object,
) -> None:
    record(
        session,
        team_id=person.team_id,
        entity="person",
        entity_id=person.id,
        actor=actor.user_id,
        at=now,
        action="update",
        field=field,
        old=old,
        new=new,
    )


async def find_person(session: AsyncSession, *, team_id: str, user_id: str) -> Person | None:
    """The person with this Slack id in this workspace, if known."""
    query = select(Person).where(Person.team_id == team_id).where(Person.user_id == user_id)
    return (await session.exec(query)).first()


async def ensure_person(session: AsyncSession, *, team_id: str, user_id: str, now: datetime) -> Person:
    """The person, created on first contact (their details arrive later from users.info)."""
    person = await find_person(session, team_id=team_id, user_id=user_id)
    if person is None:
        person = Person(team_id=team_id, user_id=user_id, name="", created_at=now)
        session.add(person)
        await session.flush()
    return person


def valid_zone(name: str | None) -> str | None:
    """The IANA zone name if Python knows it, else None (the org default applies)."""
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


async def refresh_person(
    session: AsyncSession, *, team_id: str, user: dict[str, Any], now: datetime
) -> Person:
    """Update a person from a users.info `user` object: name, IANA time zone, deleted flag."""
    person = await ensure_person(session, team_id=team_id, user_id=str(user["id"]), now=now)
    profile = user.get("profile") or {}
    name = str(user.get("real_name") or profile.get("real_name") or user.get("name") or person.name)
    person.name = name[:200]
    person.tz = valid_zone(user.get("tz")) or person.tz
    person.active = not bool(user.get("deleted"))
    person.refreshed_at = now
    return person


async def set_pause(session: AsyncSession, *, actor: Actor, until: date | None, now: datetime) -> Person:
    """Pause the actor's own reminders until a date (None resumes them)."""
    person = await ensure_person(session, team_id=actor.team_id, user_id=actor.user_id, now=now)
    if person.paused_until != until:
        _audit(
            session,
            person=person,
            actor=actor,
            now=now,
            field="paused_until",
            old=person.paused_until,
            new=until,
        )
        person.paused_until = until
    return person


async def set_role(
    session: AsyncSession,
    *,
    actor: Actor,
    user_id: str,
    role: Role,
    department_key: str | None,
    now: datetime,
) -> Person:
    """Give someone a role: admins give any; the citywide DEI coordinator appoints department
    coordinators and members. A department coordinator needs a department."""
    if not actor.is_admin:
        if not await is_dei(session, actor=actor):
            raise PermissionDenied(
                "change roles", "REAP admins give roles; DEI coordinators appoint coordinators."
            )
        if role not in (Role.COORDINATOR, Role.MEMBER):
            raise PermissionDenied(f"make someone {role.label}", "Only REAP admins can.")
    if (
        user_id == actor.user_id
        and role != Role.ADMIN
        and actor.is_admin
        and not await _other_admins(session, actor)
    ):
        raise InvalidChange("You are the only REAP admin; appoint another admin before giving up the role.")
    person = await ensure_person(session, team_id=actor.team_id, user_id=user_id, now=now)
    department = None
    if department_key is not None:
        department = (
            await session.exec(
                select(Department)
                .where(Department.team_id == actor.team_id)
                .where(Department.key == department_key.upper())
            )
        ).first()
        if department is None:
            raise NotFound("department", department_key.upper())
    if role == Role.COORDINATOR and department is None and person.department_id is None:
        raise InvalidChange(
            "A coordinator coordinates a department: add its key, like /reap role @maria coordinator OIT"
        )
    if department is not None and person.department_id != department.id:
        _audit(
            session,
            person=person,
            actor=actor,
            now=now,
            field="department_id",
            old=person.department_id,
            new=department.id,
        )
        person.department_id = department.id
    if person.role != role.value:
        _audit(session, person=person, actor=actor, now=now, field="role", old=person.role, new=role.value)
        person.role = role.value
    return person


async def _other_admins(session: AsyncSession, actor: Actor) -> bool:
    rows = await session.exec(
        select(Person.user_id)
        .where(Person.team_id == actor.team_id)
        .where(Person.role == Role.ADMIN.value)
        .where(Person.active == True)  # noqa: E712
        .where(Person.user_id != actor.user_id)
    )
    return rows.first() is not None


async def role_holders(
    session: AsyncSession, *, team_id: str, department_key: str | None
) -> list[tuple[Person, str]]:
    """Everyone active holding a role above member (and, for one department, its members too),
    with their department key ('' for none), admins and DEI coordinators first."""
    query = (
        select(Person, Department.key)
        .join(Department, Department.id == Person.department_id, isouter=True)  # type: ignore[arg-type]
        .where(Person.team_id == team_id)
        .where(Person.active == True)  # noqa: E712
    )
    rows = [(person, key or "") for person, key in await session.exec(query)]
    if department_key is not None:
        wanted = department_key.upper()
        if (
            await session.exec(
                select(Department.id).where(Department.team_id == team_id).where(Department.key == wanted)
            )
        ).first() is None:
            raise NotFound("department", wanted)
        rows = [(p, key) for p, key in rows if key == wanted or p.role in (Role.DEI, Role.ADMIN)]
    else:
        rows = [(p, key) for p, key in rows if p.role != Role.MEMBER]
    order = {Role.ADMIN.value: 0, Role.DEI.value: 1, Role.COORDINATOR.value: 2, Role.MEMBER.value: 3}
    return sorted(
        rows, key=lambda row: (order.get(row[0].role, 9), row[1], (row[0].name or row[0].user_id).lower())
    )
