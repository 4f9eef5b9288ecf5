"""People: created on first contact, refreshed from Slack, paused for leave, given roles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import InvalidChange, PermissionDenied
from domain.status import Role
from domain.text import NAME_MAX, text_problem
from storage.audit import event_row, record, record_all
from storage.engine import one_of
from storage.items import department_by_key
from storage.models import Department, Person, ProfileSync
from storage.permissions import SYSTEM_ACTOR, Actor, is_dei

PEOPLE = cast(Table, Person.__table__)  # type: ignore[attr-defined]
SYNCS = cast(Table, ProfileSync.__table__)  # type: ignore[attr-defined]


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


@dataclass(frozen=True)
class Profile:
    """What every request needs of its caller: their zone, role, active flag and when Slack last
    gave their profile (read each time: a role is a permission, never served from a cache)."""

    tz: str | None
    role: str
    active: bool
    refreshed_at: datetime | None

    @classmethod
    def of(cls, person: Person) -> Profile:
        """The profile of a loaded Person."""
        return cls(tz=person.tz, role=person.role, active=person.active, refreshed_at=person.refreshed_at)


# Built once, with bound parameters, so each request only executes it (Core: no ORM identity map).
_PROFILE = sa_select(PEOPLE.c.tz, PEOPLE.c.role, PEOPLE.c.active, PEOPLE.c.refreshed_at).where(
    PEOPLE.c.team_id == bindparam("team_id"), PEOPLE.c.user_id == bindparam("user_id")
)


async def caller_profile(connection: AsyncConnection, *, team_id: str, user_id: str) -> Profile | None:
    """The profile of the person with this Slack id in this workspace, if known (one indexed read)."""
    row = (await connection.execute(_PROFILE, {"team_id": team_id, "user_id": user_id})).first()
    return None if row is None else Profile(tz=row[0], role=row[1], active=bool(row[2]), refreshed_at=row[3])


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


def profile_of(user: Mapping[str, Any], *, name: str, tz: str | None) -> tuple[str, str | None, bool]:
    """Name, IANA zone and active flag from a Slack `user` object (users.info or users.list),
    keeping the stored name or zone where Slack's is missing or unusable."""
    profile = user.get("profile") or {}
    wanted = str(user.get("real_name") or profile.get("real_name") or user.get("name") or "")
    # A name our own rules refuse is refused whole: the stored one stays.
    if wanted and text_problem(wanted, field="name", limit=NAME_MAX) is None:
        name = wanted
    return name, valid_zone(user.get("tz")) or tz, not bool(user.get("deleted"))


def _active_event(
    person_id: int | None, *, team_id: str, old: bool, new: bool, now: datetime, source: str
) -> dict[str, Any]:
    return event_row(
        team_id=team_id,
        entity="person",
        entity_id=person_id,
        actor=SYSTEM_ACTOR,
        at=now,
        action="update",
        field="active",
        old=str(old).lower(),
        new=str(new).lower(),
        note=f"{'reactivated' if new else 'deactivated'} in Slack ({source})",
    )


async def refresh_person(
    session: AsyncSession, *, team_id: str, user: dict[str, Any], now: datetime
) -> Person:
    """Update a person from a users.info `user` object: name, IANA time zone, deleted flag
    (a change of the active flag is audited)."""
    person = await ensure_person(session, team_id=team_id, user_id=str(user["id"]), now=now)
    name, tz, active = profile_of(user, name=person.name, tz=person.tz)
    if active != person.active:
        await record_all(
            session,
            [
                _active_event(
                    person.id, team_id=team_id, old=person.active, new=active, now=now, source="users.info"
                )
            ],
        )
    person.name, person.tz, person.active = name, tz, active
    person.refreshed_at = now
    return person


@dataclass(frozen=True)
class ProfileChanges:
    """What one batch of Slack profiles changed among the people the bot knows."""

    updated: int = 0
    deactivated: tuple[str, ...] = ()
    reactivated: tuple[str, ...] = ()


async def apply_profiles(
    session: AsyncSession, *, team_id: str, users: Sequence[Mapping[str, Any]], now: datetime, source: str
) -> ProfileChanges:
    """Bring every known person among Slack `users` up to date in one UPDATE (name, zone, active,
    refreshed_at); a changed active flag is audited. People the bot does not know are left out."""
    by_id = {str(u["id"]): u for u in users if isinstance(u, Mapping) and u.get("id")}
    connection = await session.connection()
    columns = (Person.id, Person.user_id, Person.name, Person.tz, Person.active)
    known: list[Any] = []
    for condition in one_of(col(Person.user_id), sorted(by_id), dialect=connection.dialect.name):
        query = sa_select(*(col(c) for c in columns)).where(col(Person.team_id) == team_id, condition)
        known += (await connection.execute(query)).all()
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    gone: list[str] = []
    back: list[str] = []
    for person_id, user_id, old_name, old_tz, was_active in known:
        name, tz, active = profile_of(by_id[user_id], name=old_name, tz=old_tz)
        updates.append({"pid": person_id, "new_name": name, "new_tz": tz, "new_active": active, "at": now})
        if active != was_active:
            events.append(
                _active_event(person_id, team_id=team_id, old=was_active, new=active, now=now, source=source)
            )
            (back if active else gone).append(user_id)
    if updates:
        statement = (
            update(PEOPLE)
            .where(PEOPLE.c.id == bindparam("pid"))
            .values(
                name=bindparam("new_name"),
                tz=bindparam("new_tz"),
                active=bindparam("new_active"),
                refreshed_at=bindparam("at"),
            )
        )
        await connection.execute(statement, updates)
    await record_all(session, events)
    return ProfileChanges(
        updated=len(updates), deactivated=tuple(sorted(gone)), reactivated=tuple(sorted(back))
    )


async def unfetched_people(session: AsyncSession, *, team_id: str, since: datetime, limit: int) -> list[str]:
    """Active people known since `since` whose profile Slack has never given (a plan import, or an
    owner named before they used the bot), oldest first."""
    rows = await session.exec(
        select(Person.user_id)
        .where(Person.team_id == team_id, col(Person.refreshed_at).is_(None))
        .where(Person.active == True, Person.created_at >= since)  # noqa: E712
        .order_by(col(Person.created_at), col(Person.id))
        .limit(limit)
    )
    return list(rows)


# --- the daily users.list pass -------------------------------------------------------------------


async def profile_sync(session: AsyncSession, *, team_id: str) -> ProfileSync:
    """The workspace's users.list pass state, created (once, whoever asks first) if missing."""
    connection = await session.connection()
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await connection.execute(insert(SYNCS).values(team_id=team_id).on_conflict_do_nothing())
    row = (await connection.execute(sa_select(SYNCS).where(SYNCS.c.team_id == team_id))).mappings().one()
    return ProfileSync(**row)


async def advance_sync(
    session: AsyncSession,
    *,
    team_id: str,
    seen: tuple[date | None, str | None],
    day: date,
    cursor: str | None,
    now: datetime,
) -> bool:
    """Move the pass from `seen` (day, cursor) to the next page's cursor (None: done for `day`);
    False if another instance moved it first (it fetched the same page, so this one stops)."""
    values: dict[str, Any] = {"day": day, "cursor": cursor, "not_before": None, "last_error": None}
    if cursor is None:
        values["finished_at"] = now
    statement = (
        update(SYNCS)
        .where(SYNCS.c.team_id == team_id)
        .where(SYNCS.c.day.is_not_distinct_from(seen[0]), SYNCS.c.cursor.is_not_distinct_from(seen[1]))
        .values(**values)
    )
    result = await (await session.connection()).execute(statement)
    return bool(result.rowcount)


async def hold_sync(session: AsyncSession, *, team_id: str, until: datetime, error: str) -> None:
    """Pause the pass until `until` (Slack's Retry-After, or a back-off after an error), saying why."""
    statement = (
        update(SYNCS).where(SYNCS.c.team_id == team_id).values(not_before=until, last_error=error[:500])
    )
    await (await session.connection()).execute(statement)


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
        department = await department_by_key(session, team_id=actor.team_id, key=department_key)
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
        wanted = (await department_by_key(session, team_id=team_id, key=department_key)).key
        rows = [(p, key) for p, key in rows if key == wanted or p.role in (Role.DEI, Role.ADMIN)]
    else:
        rows = [(p, key) for p, key in rows if p.role != Role.MEMBER]
    order = {Role.ADMIN.value: 0, Role.DEI.value: 1, Role.COORDINATOR.value: 2, Role.MEMBER.value: 3}
    return sorted(
        rows, key=lambda row: (order.get(row[0].role, 9), row[1], (row[0].name or row[0].user_id).lower())
    )
