"""Named reads about people: who coordinates which department."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.status import Role
from storage.models import Person


async def active_coordinators(
    session: AsyncSession, *, team_id: str, department_ids: Iterable[int]
) -> dict[int, list[Person]]:
    """The active coordinators of each department, by department id, in user id order."""
    wanted = sorted(set(department_ids))
    if not wanted:
        return {}
    rows = await session.exec(
        select(Person)
        .where(Person.team_id == team_id, col(Person.department_id).in_(wanted))
        .where(Person.role == Role.COORDINATOR.value, Person.active == True)  # noqa: E712
        .order_by(Person.user_id)
    )
    found: dict[int, list[Person]] = {}
    for person in rows:
        found.setdefault(person.department_id or 0, []).append(person)
    return found


async def coordinators_of(session: AsyncSession, *, team_id: str, department_id: int) -> list[Person]:
    """The active coordinators of one department."""
    found = await active_coordinators(session, team_id=team_id, department_ids=[department_id])
    return found.get(department_id, [])


async def deciders(
    session: AsyncSession, *, team_id: str, department_ids: Iterable[int]
) -> dict[int, list[Person]]:
    """Who is asked to decide each department's requests and verifications, in user id order: its
    active coordinators and every active DEI coordinator, or, where there are none, the active admins."""
    wanted = sorted(set(department_ids))
    if not wanted:
        return {}
    rows = await session.exec(
        select(Person)
        .where(Person.team_id == team_id, Person.active == True)  # noqa: E712
        .where(
            or_(
                and_(col(Person.role) == Role.COORDINATOR.value, col(Person.department_id).in_(wanted)),
                col(Person.role).in_([Role.DEI.value, Role.ADMIN.value]),
            )
        )
        .order_by(Person.user_id)
    )
    people = list(rows)
    citywide = [p for p in people if p.role == Role.DEI.value]
    admins = [p for p in people if p.role == Role.ADMIN.value]
    found: dict[int, list[Person]] = {}
    for department in wanted:
        mine = [p for p in people if p.role == Role.COORDINATOR.value and p.department_id == department]
        found[department] = sorted(mine + citywide, key=lambda p: p.user_id) or admins
    return found
