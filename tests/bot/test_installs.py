"""REAP_INSTALL=oauth: workspaces and Grid orgs install through Slack's OAuth flow against localslack,
each sees only its own plans, and an uninstall stops everything for that workspace (data kept)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from storage.engine import transaction
from storage.items import get_item
from storage.models import SLACK_BOTS, AuditEvent, Installation, Notification
from tests.factories import COORDINATOR, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

PARKS = "T0PARKS"
WATER = "T0WATER"
ORG = "E0PHILA"
STREETS = "T0STREETS"
LIBRARY = "T0LIBRARY"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """An OAuth-mode bot with nothing installed; Parks and Water may install it, as may the
    Philadelphia org (Streets and Library). Each has its own OIT-1 under the same refs."""
    async with running_bot(database_url, oauth=True) as bot:
        bot.slack.add_workspace(PARKS, "Parks")
        bot.slack.add_workspace(WATER, "Water")
        bot.slack.add_workspace(STREETS, "Streets", enterprise_id=ORG, enterprise_name="City of Philadelphia")
        bot.slack.add_workspace(LIBRARY, "Library", enterprise_id=ORG, enterprise_name="City of Philadelphia")
        bot.slack.add_user(OWNER, "owner")
        bot.slack.add_user(COORDINATOR, "coordinator")
        async with transaction(bot.sessions) as session:
            for team, title in (
                (PARKS, "Parks: shade trees in every heat-island tract"),
                (WATER, "Water: no shut-offs during heat waves"),
                (STREETS, "Streets: repave by need, not by complaints"),
                (LIBRARY, "Library: hotspots to lend"),
            ):
                plan = await make_plan(session, team_id=team)
                await make_item(session, plan, title=title)
        yield bot


async def test_two_workspaces_installed_by_oauth_each_see_only_their_own_plan(bot: Bot):
    for team in (PARKS, WATER):
        page = await bot.install(team)
        assert page.status_code == 200, page.text
    parks, water = bot.as_workspace(PARKS), bot.as_workspace(WATER)

    shown_parks = str((await parks.command(OWNER, "show OIT-1")).json())
    shown_water = str((await water.command(OWNER, "show OIT-1")).json())

    assert "shade trees" in shown_parks and "shut-offs" not in shown_parks
    assert "shut-offs" in shown_water and "shade trees" not in shown_water
    async with bot.sessions() as session:
        installed = {row.team_id for row in await session.exec(select(Installation))}
    assert installed == {PARKS, WATER}


async def test_a_change_in_one_workspace_never_touches_the_other(bot: Bot):
    await bot.install(PARKS)
    await bot.install(WATER)
    parks = bot.as_workspace(PARKS)

    answer = await parks.command(OWNER, 'status OIT-1 at-risk "crew shortage"')

    assert "at risk" in answer.json()["text"]
    async with bot.sessions() as session:
        mine = await get_item(session, team_id=PARKS, ref="OIT-1")
        theirs = await get_item(session, team_id=WATER, ref="OIT-1")
    assert mine.status == "at_risk"
    assert theirs.status == "not_started"


async def test_each_workspace_is_answered_with_its_own_token(bot: Bot):
    await bot.install(PARKS)
    await bot.install(WATER)
    bot.slack.reset()

    await bot.as_workspace(PARKS).event(
        {"type": "app_home_opened", "user": OWNER, "tab": "home"}, event_id="Ev1"
    )
    await bot.as_workspace(WATER).event(
        {"type": "app_home_opened", "user": OWNER, "tab": "home"}, event_id="Ev2"
    )

    published = bot.slack.calls_to("views.publish")
    tokens = [call.headers["authorization"].removeprefix("Bearer ") for call in published]
    assert tokens[0] in bot.slack.tokens_of(PARKS)
    assert tokens[1] in bot.slack.tokens_of(WATER)


async def test_a_workspace_that_never_installed_is_refused_and_nothing_is_read(bot: Bot):
    await bot.install(PARKS)

    answer = await bot.as_workspace(WATER).command(OWNER, "show OIT-1")

    told = [r.get("text", "") for r in bot.slack.responses()]
    assert "shut-offs" not in answer.text and not any("shut-offs" in t for t in told)
    assert any("not installed in this workspace" in t for t in told)


async def test_an_oauth_callback_with_a_wrong_or_reused_state_stores_nothing(bot: Bot):
    missing = await bot.install(PARKS, cookie=False)
    assert missing.status_code == 400
    approved = bot.slack.authorize("not-a-state")
    forged = await bot.http.get(approved, headers={"Cookie": "slack-app-oauth-state=not-a-state"})
    assert forged.status_code == 401
    good = await bot.install(WATER)
    assert good.status_code == 200
    replayed = await bot.http.get(str(good.url), headers={"Cookie": good.request.headers["cookie"]})
    assert replayed.status_code == 401
    async with bot.sessions() as session:
        installed = {row.team_id for row in await session.exec(select(Installation))}
    assert installed == {WATER}


async def test_uninstalling_stops_everything_for_that_workspace_and_keeps_its_data(bot: Bot):
    await bot.install(PARKS)
    await bot.install(WATER)
    parks = bot.as_workspace(PARKS)
    async with transaction(bot.sessions) as session:
        session.add(
            Notification(
                team_id=PARKS,
                key=f"{PARKS}:test:owed",
                kind="digest",
                recipient=OWNER,
                send_after=datetime(2026, 11, 30, 14, 0, tzinfo=UTC),
                created_at=datetime(2026, 11, 30, 14, 0, tzinfo=UTC),
            )
        )
    bot.slack.uninstall(PARKS)

    gone = await parks.event({"type": "app_uninstalled"}, event_id="EvGone")
    refused = await parks.command(OWNER, "show OIT-1")

    assert gone.status_code == 200
    assert "shade trees" not in refused.text
    assert "not installed" in str(bot.slack.responses()[-1])
    async with bot.sessions() as session:
        row = await session.get(Installation, PARKS)
        kept = await get_item(session, team_id=PARKS, ref="OIT-1")
        owed = (await session.exec(select(Notification).where(Notification.team_id == PARKS))).one()
        bots = (await session.exec(select(SLACK_BOTS.c.team_id))).all()  # type: ignore[call-overload]
        trail = (await session.exec(select(AuditEvent).where(AuditEvent.entity == "installation"))).all()
    assert row is not None and row.uninstalled_at is not None
    assert kept.title.startswith("Parks")
    assert owed.state == "skipped"
    assert list(bots) == [WATER]
    assert {(e.team_id, e.action) for e in trail} >= {(PARKS, "installed"), (PARKS, "uninstalled")}
    still = await bot.as_workspace(WATER).command(OWNER, "show OIT-1")
    assert "shut-offs" in str(still.json())


async def test_the_tick_serves_only_installed_workspaces_with_their_own_tokens(bot: Bot):
    await bot.install(PARKS)
    await bot.install(WATER)
    bot.slack.uninstall(WATER)
    await bot.as_workspace(WATER).event({"type": "app_uninstalled"}, event_id="EvGone")
    bot.slack.reset()
    assert bot.app.ticker is not None

    await bot.app.ticker(datetime(2026, 12, 14, 14, 30, tzinfo=UTC))

    sent = bot.slack.messages()
    assert sent, "the installed workspace's owner got their nudge"
    assert {m.team_id for m in sent} == {PARKS}


async def test_an_org_wide_install_answers_in_every_workspace_of_the_org(bot: Bot):
    page = await bot.install(ORG)
    assert page.status_code == 200, page.text
    streets = bot.as_workspace(STREETS, enterprise_id=ORG)
    library = bot.as_workspace(LIBRARY, enterprise_id=ORG)

    assert "repave" in str((await streets.command(OWNER, "show OIT-1")).json())
    assert "hotspots" in str((await library.command(OWNER, "show OIT-1")).json())
    assert "repave" not in str((await library.command(OWNER, "show OIT-1")).json())
    async with bot.sessions() as session:
        org = await session.get(Installation, ORG)
        members = {
            row.team_id
            for row in await session.exec(select(Installation).where(Installation.enterprise_id == ORG))
        }
    assert org is not None and org.is_enterprise_install
    assert members == {ORG, STREETS, LIBRARY}


async def test_uninstalling_the_org_stops_its_workspaces(bot: Bot):
    await bot.install(ORG)
    streets = bot.as_workspace(STREETS, enterprise_id=ORG)
    await streets.command(OWNER, "show OIT-1")
    bot.slack.uninstall(ORG)

    await streets.event({"type": "app_uninstalled"}, event_id="EvOrgGone")

    assert "repave" not in (await streets.command(OWNER, "show OIT-1")).text
    async with bot.sessions() as session:
        marks = {
            row.team_id: row.uninstalled_at is not None
            for row in await session.exec(select(Installation).where(Installation.enterprise_id == ORG))
        }
    assert marks == {ORG: True, STREETS: True}


async def test_a_rotating_token_is_refreshed_before_the_tick_uses_it(bot: Bot):
    bot.slack.token_rotation = True
    bot.slack.token_lifetime = 60  # well inside the two hours before expiry when we rotate
    await bot.install(PARKS)
    first = bot.slack.tokens_of(PARKS)
    bot.slack.token_lifetime = 43_200  # the refreshed token lives Slack's usual twelve hours
    assert bot.app.oauth is not None

    token = await bot.app.oauth.tokens.token(PARKS)

    assert token is not None and token not in first
    assert token in bot.slack.tokens_of(PARKS)
    # The refreshed token was stored: asked again, it is the same one.
    assert await bot.app.oauth.tokens.token(PARKS) == token
