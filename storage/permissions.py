"""Who may change what: owners their items, coordinators their department, admins everything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.commitments import ChangeKind, ChangePolicy, ReasonRequired
from domain.errors import PermissionDenied
from domain.status import Role
from storage.models import ActionItem, Department, Measure, Person, Plan, Strategy
from storage.queries.people import coordinators_of

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


async def is_coordinator(session: AsyncSession, *, actor: Actor, department_id: int | None) -> bool:
    """Whether the actor is an active coordinator of the department (of any, if None)."""
    query = (
        select(Person.role, Person.department_id)
        .where(Person.team_id == actor.team_id)
        .where(Person.user_id == actor.user_id)
        .where(Person.active == True)  # noqa: E712
    )
    found = (await session.exec(query)).first()
    if found is None:
        return False
    role, home = found
    # The citywide DEI coordinator runs the quarterly work of every department.
    if role == Role.DEI.value:
        return True
    return role == Role.COORDINATOR.value and (department_id is None or home == department_id)


async def is_dei(session: AsyncSession, *, actor: Actor) -> bool:
    """Whether the actor is an active citywide DEI coordinator."""
    query = (
        select(Person.id)
        .where(Person.team_id == actor.team_id)
        .where(Person.user_id == actor.user_id)
        .where(Person.role == Role.DEI.value)
        .where(Person.active == True)  # noqa: E712
    )
    return (await session.exec(query)).first() is not None


async def who_may_edit(session: AsyncSession, *, item: ActionItem) -> str:
    """A sentence naming who may change an item."""
    department = await session.get(Department, item.department_id)
    coordinators = await coordinators_of(session, team_id=item.team_id, department_id=item.department_id)
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
    if actor.is_admin or await is_coordinator(session, actor=actor, department_id=department_id):
        return
    raise PermissionDenied(action, "Only department coordinators and REAP admins can do that.")


async def ensure_can_record(session: AsyncSession, *, actor: Actor, measure: Measure) -> None:
    """Raise PermissionDenied unless the actor owns the measure, coordinates its department, or is admin."""
    if actor.is_admin or (measure.owner_id and measure.owner_id == actor.user_id):
        return
    department_id = (
        await session.exec(
            select(Plan.department_id)
            .join(Strategy, col(Strategy.plan_id) == col(Plan.id))
            .where(Strategy.id == measure.strategy_id)
        )
    ).first()
    if department_id is not None and await is_coordinator(session, actor=actor, department_id=department_id):
        return
    owner = f"<@{measure.owner_id}> (its owner)" if measure.owner_id else "its owner"
    raise PermissionDenied(
        f"record {measure.key}",
        f"{measure.key} can be recorded by {owner}, its department's coordinators or a REAP admin.",
    )


class ApprovalRequired(ReasonRequired):
    """A change to a commitment that its owner may only ask for; the message says how to ask."""

    def __init__(self, ref: str, kind: ChangeKind, usage: str) -> None:
        self.ref = ref
        self.kind = kind
        what = {
            ChangeKind.DROP: f"Dropping {ref}",
            ChangeKind.REDATE: f"Moving {ref}'s due date later",
            ChangeKind.REASSIGN: f"Handing {ref} to someone else",
        }[kind]
        super().__init__(
            f"{what} takes a coordinator's approval, so nothing was changed."
            f" Ask for it with a reason: {usage}"
        )


async def policy_for(session: AsyncSession, *, item: ActionItem) -> ChangePolicy:
    """The change policy of the plan an item belongs to (read once per unit of work and strategy:
    completing an item asks twice, before and after the change; a plan changed in this unit of
    work, as an import does, is read afresh)."""
    known: dict[int, ChangePolicy] = session.info.setdefault("reap_policies", {})
    if any(isinstance(row, Plan) for row in (*session.new, *session.dirty)):
        known.clear()
    if item.strategy_id in known:
        return known[item.strategy_id]
    stored = (
        await session.exec(
            select(Plan.policy)
            .join(Strategy, col(Strategy.plan_id) == col(Plan.id))
            .where(Strategy.id == item.strategy_id)
        )
    ).first()
    known[item.strategy_id] = policy = ChangePolicy.from_mapping(stored)
    return policy


async def may_decide(session: AsyncSession, *, actor: Actor, department_id: int) -> bool:
    """Whether the actor decides requests in this department: its coordinators, DEI coordinators, admins."""
    return actor.is_admin or await is_coordinator(session, actor=actor, department_id=department_id)


_ASK = {
    ChangeKind.DROP: '/reap status {ref} dropped "why"',
    ChangeKind.REDATE: '/reap due {ref} <date> "why"',
    ChangeKind.REASSIGN: '/reap assign {ref} @someone "why"',
}


async def ensure_may_commit(
    session: AsyncSession, *, actor: Actor, item: ActionItem, kind: ChangeKind, new_due: date | None = None
) -> None:
    """Raise ApprovalRequired when the plan says this change needs approval and the actor cannot give it."""
    policy = await policy_for(session, item=item)
    if not policy.needs_approval(kind, old_due=item.due, new_due=new_due):
        return
    if await may_decide(session, actor=actor, department_id=item.department_id):
        return
    raise ApprovalRequired(item.ref, kind, _ASK[kind].format(ref=item.ref))
