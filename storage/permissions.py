"""Who may change what: owners their items, coordinators their department, admins everything."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.errors import PermissionDenied
from storage.models import ActionItem, Department, Person, Role

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Actor:
    """Who is acting: workspace, Slack user id, and whether they are a REAP admin (from settings)."""

    team_id: str
    user_id: str
    is_admin: bool = False

    @classmethod
    def system(cls, team_id: str) -> Actor:
        """The bot itself (plan imports, scheduled jobs): allowed everything."""
        return cls(team_id, SYSTEM_ACTOR, is_admin=True)


async def coordinators_of(session: AsyncSession, *, department_id: int) -> list[Person]:
    """Active coordinators of a department."""
    rows = await session.exec(
        select(Person)
        .where(Person.department_id == department_id)
        .where(Person.role == Role.COORDINATOR.value)
        .where(Person.active == True)  # noqa: E712
        .order_by(Person.user_id)
    )
    return list(rows)


async def is_coordinator(session: AsyncSession, *, actor: Actor, department_id: int) -> bool:
    """Whether the actor coordinates the department."""
    row = await session.exec(
        select(Person.id)
        .where(Person.team_id == actor.team_id)
        .where(Person.user_id == actor.user_id)
        .where(Person.department_id == department_id)
        .where(Person.role == Role.COORDINATOR.value)
    )
    return row.first() is not None


async def who_may_edit(session: AsyncSession, *, item: ActionItem) -> str:
    """A sentence naming who may change an item."""
    department = await session.get(Department, item.department_id)
    coordinators = await coordinators_of(session, department_id=item.department_id)
    names = ", ".join(f"<@{p.user_id}>" for p in coordinators) or "a REAP admin"
    owner = f"<@{item.owner_id}> (the owner)" if item.owner_id else "the owner"
    dept = department.key if department else "the department"
    return f"{item.ref} can be changed by {owner}, the {dept} coordinators ({names}) or a REAP admin."


async def ensure_can_edit(session: AsyncSession, *, actor: Actor, item: ActionItem, action: str) -> None:
    """Raise PermissionDenied unless the actor owns, coordinates or administers the item."""
    if actor.is_admin or (item.owner_id and item.owner_id == actor.user_id):
        return
    if await is_coordinator(session, actor=actor, department_id=item.department_id):
        return
    raise PermissionDenied(action, await who_may_edit(session, item=item))


async def ensure_coordinator(
    session: AsyncSession, *, actor: Actor, department_id: int | None, action: str
) -> None:
    """Raise PermissionDenied unless the actor coordinates the department (any, if None) or is admin."""
    if actor.is_admin:
        return
    query = select(Person.id).where(Person.team_id == actor.team_id)
    query = query.where(Person.user_id == actor.user_id)
    query = query.where(Person.role == Role.COORDINATOR.value)
    if department_id is not None:
        query = query.where(Person.department_id == department_id)
    if (await session.exec(query)).first() is None:
        raise PermissionDenied(action, "Only department coordinators and REAP admins can do that.")


def ensure_admin(actor: Actor, *, action: str) -> None:
    """Raise PermissionDenied unless the actor is a REAP admin."""
    if not actor.is_admin:
        raise PermissionDenied(action, "Only REAP admins (REAP_ADMINS) can do that.")
