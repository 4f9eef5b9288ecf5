"""Named reads about people: who coordinates which department."""

from __future__ import annotations

from collections.abc import Iterable

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
