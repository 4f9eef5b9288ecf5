"""An item's public update is a coordinator's word: set, cleared and translated by them, all audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from domain.errors import PermissionDenied
from storage.engine import Sessions, transaction
from storage.items import get_item
from storage.models import AuditEvent
from storage.permissions import Actor
from storage.public import set_public_update, set_spanish_title
from tests.factories import COORDINATOR, OWNER, TEAM, make_item, make_plan

NOW = datetime(2027, 1, 8, 15, tzinfo=UTC)


async def test_a_coordinator_publishes_an_update_in_each_language_and_it_is_audited(sessions: Sessions):
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        item = await make_item(session, plan)
        await set_public_update(
            session,
            actor=Actor(TEAM, COORDINATOR),
            ref=item.ref,
            text="  Half the sites are live.  ",
            now=NOW,
        )
        await set_public_update(
            session,
            actor=Actor(TEAM, COORDINATOR),
            ref=item.ref,
            text="La mitad funciona.",
            now=NOW,
            lang="es",
        )
        await set_spanish_title(
            session, actor=Actor(TEAM, COORDINATOR), ref=item.ref, title="Título", now=NOW
        )
    async with sessions() as session:
        stored = await get_item(session, team_id=TEAM, ref=item.ref)
        events = list(await session.exec(select(AuditEvent).where(AuditEvent.item_id == stored.id)))
    assert (stored.public_update, stored.public_update_es, stored.title_es) == (
        "Half the sites are live.",
        "La mitad funciona.",
        "Título",
    )
    assert (stored.public_update_by, stored.public_update_at) == (COORDINATOR, NOW)
    changed = [(e.field, e.old, e.new, e.actor) for e in events if e.action == "update"]
    assert changed == [
        ("public_update", None, "Half the sites are live.", COORDINATOR),
        ("public_update_es", None, "La mitad funciona.", COORDINATOR),
        ("title_es", None, "Título", COORDINATOR),
    ]


async def test_an_owner_cannot_publish_their_own_words(sessions: Sessions):
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        item = await make_item(session, plan)
    with pytest.raises(PermissionDenied, match="coordinators"):
        async with transaction(sessions) as session:
            await set_public_update(
                session, actor=Actor(TEAM, OWNER), ref=item.ref, text="All done!", now=NOW
            )
    async with sessions() as session:
        assert (await get_item(session, team_id=TEAM, ref=item.ref)).public_update is None


async def test_empty_text_clears_the_update(sessions: Sessions):
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        item = await make_item(session, plan)
        actor = Actor(TEAM, COORDINATOR)
        await set_public_update(session, actor=actor, ref=item.ref, text="On its way.", now=NOW)
        await set_public_update(session, actor=actor, ref=item.ref, text="   ", now=NOW)
    async with sessions() as session:
        assert (await get_item(session, team_id=TEAM, ref=item.ref)).public_update is None
