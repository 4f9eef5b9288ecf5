"""Migrations build the same schema as the models, on both backends, and re-running them is a no-op."""

from __future__ import annotations

from sqlalchemy import inspect

from storage.engine import create_engine
from storage.migrate import current_revision, pending_differences, upgrade_async


async def test_upgrade_from_empty_matches_the_models(database_url: str):
    await upgrade_async(database_url)
    assert await pending_differences(database_url) == []


async def test_upgrading_twice_is_a_no_op(database_url: str):
    await upgrade_async(database_url)
    first = await current_revision(database_url)
    await upgrade_async(database_url)
    assert first is not None
    assert await current_revision(database_url) == first


async def test_upgrade_creates_the_supporting_indexes(database_url: str):
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("action_item")})
    await engine.dispose()
    assert {
        "ix_item_team_owner_status",
        "ix_item_team_status_due",
        "ix_item_team_due",
        "ix_item_team_updated",
        "ix_action_item_strategy_id",
    } <= names
