"""Roles held in the database: given in Slack, effective without a restart, audited, and listed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from storage.engine import transaction
from storage.models import AuditEvent, CheckInCycle, Person
from tests.factories import COORDINATOR, OTHER, OWNER, make_plan
from tests.harness import Bot, running_bot

ADMIN = "U0ADMIN"  # REAP_ADMINS in the harness: the bootstrap admin
DANA = "U0DANA"  # becomes the citywide DEI coordinator
PAT = "U0PAT"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A bot with the OIT and PPR departments and everyone known to Slack."""
    async with running_bot(database_url) as bot:
        for user in (ADMIN, DANA, PAT, OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        async with transaction(bot.sessions) as session:
            await make_plan(session)
            await make_plan(session, key="PPR", coordinator=None, people=())
        yield bot


async def role_of(bot: Bot, user_id: str) -> str | None:
    """The stored role of a person (None if unknown)."""
    async with bot.sessions() as session:
        person = (await session.exec(select(Person).where(Person.user_id == user_id))).first()
    return person.role if person else None


async def test_a_bootstrap_admin_appoints_a_dei_coordinator_who_appoints_a_department_coordinator(bot: Bot):
    made = await bot.command(ADMIN, f"role <@{DANA}> dei")
    assert made.json()["text"] == f"<@{DANA}> is now a citywide DEI coordinator."
    appointed = await bot.command(DANA, f"role <@{PAT}> coordinator PPR")
    assert appointed.json()["text"] == f"<@{PAT}> is now a coordinator of PPR."
    assert (await role_of(bot, DANA), await role_of(bot, PAT)) == ("dei", "coordinator")
    async with bot.sessions() as session:
        events = list(await session.exec(select(AuditEvent).where(AuditEvent.field == "role")))
    assert [(e.actor, e.old, e.new) for e in events] == [
        (ADMIN, "member", "dei"),
        (DANA, "member", "coordinator"),
    ]


async def test_the_dei_coordinator_runs_quarterly_work_for_every_department_without_a_restart(bot: Bot):
    refused = await bot.command(DANA, "checkin start FY2027-Q2")
    assert "You can't" in refused.json()["text"]
    await bot.command(ADMIN, f"role <@{DANA}> dei")
    started = await bot.command(DANA, "checkin start FY2027-Q2")
    assert "check-in is open" in started.json()["text"]
    async with bot.sessions() as session:
        assert (await session.exec(select(CheckInCycle))).one().opened_at is not None


async def test_an_admin_appointed_in_slack_can_give_roles_with_no_settings_change(bot: Bot):
    await bot.command(ADMIN, f"role <@{PAT}> admin")
    made = await bot.command(PAT, f"role <@{OTHER}> coordinator OIT")
    assert made.json()["text"] == f"<@{OTHER}> is now a coordinator of OIT."
    await bot.command(ADMIN, f"role <@{PAT}> member")
    refused = await bot.command(PAT, f"role <@{OTHER}> member")
    assert "You can't change roles" in refused.json()["text"]
    assert await role_of(bot, OTHER) == "coordinator"


@pytest.mark.parametrize(
    ("user", "text", "problem"),
    [
        (OWNER, f"role <@{PAT}> coordinator OIT", "You can't change roles"),
        (COORDINATOR, f"role <@{PAT}> coordinator OIT", "You can't change roles"),
        (ADMIN, "role <@U0NOBODY> coordinator OIT", "is not in this workspace; nothing was changed"),
        (ADMIN, f"role <@{PAT}> coordinator", "A coordinator coordinates a department"),
        (ADMIN, f"role <@{PAT}> coordinator XYZ", "I can't find department XYZ"),
    ],
)
async def test_a_role_change_that_cannot_be_made_changes_nothing(
    bot: Bot, user: str, text: str, problem: str
):
    response = await bot.command(user, text)
    assert problem in response.json()["text"]
    assert await role_of(bot, PAT) in (None, "member")
    assert await role_of(bot, "U0NOBODY") is None


async def test_a_dei_coordinator_cannot_make_an_admin_or_another_dei_coordinator(bot: Bot):
    await bot.command(ADMIN, f"role <@{DANA}> dei")
    for role in ("admin", "dei"):
        refused = await bot.command(DANA, f"role <@{PAT}> {role}")
        assert "Only REAP admins can" in refused.json()["text"]
    assert await role_of(bot, PAT) in (None, "member")


async def test_who_lists_the_roles_citywide_and_for_one_department(bot: Bot):
    await bot.command(ADMIN, f"role <@{DANA}> dei")
    everyone = str((await bot.command(OWNER, "who")).json()["blocks"])
    assert f"<@{DANA}> u0dana — citywide DEI coordinator" in everyone
    assert f"<@{COORDINATOR}>" in everyone and "— coordinator · OIT" in everyone
    assert f"<@{ADMIN}> — REAP admin (from REAP_ADMINS)" in everyone
    assert f"<@{OWNER}>" not in everyone  # members are listed per department
    oit = str((await bot.command(OWNER, "who OIT")).json()["blocks"])
    assert f"<@{OWNER}>" in oit and "— member · OIT" in oit
