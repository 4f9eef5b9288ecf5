"""Factories that build a small plan the way a coordinator would, through the real storage functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.status import ItemStatus, Role
from storage.items import create_item
from storage.models import ActionItem, ActionItemCreate, Department, Person, Plan, Strategy
from storage.permissions import Actor

TEAM = "T0REAP"
NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
COORDINATOR = "U0COORD"
OWNER = "U0OWNER"
OTHER = "U0OTHER"
STRATEGIES = {
    "equity-projects": "Equity projects",
    "workplace-equity": "Workplace equity",
    "digital-equity": "Digital equity",
}


@dataclass
class PlanFixture:
    """A department with a plan, its strategies, and the people around it."""

    department: Department
    plan: Plan
    strategies: dict[str, Strategy] = field(default_factory=dict)

    @property
    def team_id(self) -> str:
        """The workspace everything lives in."""
        return self.department.team_id


async def make_person(
    session: AsyncSession,
    *,
    user_id: str,
    team_id: str = TEAM,
    name: str | None = None,
    tz: str | None = "America/New_York",
    role: Role = Role.MEMBER,
    department_id: int | None = None,
    now: datetime = NOW,
) -> Person:
    """A person known to the bot."""
    person = Person(
        team_id=team_id,
        user_id=user_id,
        name=name or user_id.lower(),
        tz=tz,
        role=role.value,
        department_id=department_id,
        created_at=now,
    )
    session.add(person)
    await session.flush()
    return person


async def make_plan(
    session: AsyncSession,
    *,
    team_id: str = TEAM,
    key: str = "OIT",
    coordinator: str | None = COORDINATOR,
    people: tuple[str, ...] = (OWNER, OTHER),
    now: datetime = NOW,
) -> PlanFixture:
    """A department `key` with a FY2024-FY2027 plan, three strategies, a coordinator and members."""
    department = Department(
        team_id=team_id, key=key, name=f"{key} department", report_channel=f"C0{key}", created_at=now
    )
    session.add(department)
    await session.flush()
    assert department.id is not None
    plan = Plan(
        team_id=team_id,
        department_id=department.id,
        key=f"{key}-REAP",
        title=f"{key} Racial Equity Action Plan",
        start_date=date(2023, 7, 1),
        end_date=date(2027, 6, 30),
        created_at=now,
    )
    session.add(plan)
    await session.flush()
    assert plan.id is not None
    fixture = PlanFixture(department=department, plan=plan)
    for position, (skey, name) in enumerate(STRATEGIES.items()):
        strategy = Strategy(team_id=team_id, plan_id=plan.id, key=skey, name=name, position=position)
        session.add(strategy)
        fixture.strategies[skey] = strategy
    if coordinator:
        await make_person(
            session, user_id=coordinator, team_id=team_id, role=Role.COORDINATOR, department_id=department.id
        )
    for user_id in people:
        await make_person(session, user_id=user_id, team_id=team_id, department_id=department.id)
    await session.flush()
    return fixture


async def make_item(
    session: AsyncSession,
    plan: PlanFixture,
    *,
    title: str = "Develop an equity scoring matrix with DEI",
    owner: str | None = OWNER,
    due: date | None = date(2026, 12, 15),
    strategy: str = "equity-projects",
    status: ItemStatus = ItemStatus.NOT_STARTED,
    now: datetime = NOW,
) -> ActionItem:
    """An item created by the system actor through create_item."""
    strategy_id = plan.strategies[strategy].id
    assert strategy_id is not None
    return await create_item(
        session,
        data=ActionItemCreate(title=title, owner_id=owner, due=due, strategy_id=strategy_id, status=status),
        actor=Actor.system(plan.team_id),
        now=now,
    )
