"""Alembic driven from code: `reap db upgrade` and the models-match-migrations check."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.models  # noqa: F401
from storage.engine import create_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    """An Alembic Config pointing at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database to `revision` (blocking; run it as a one-shot deploy step)."""
    command.upgrade(alembic_config(database_url), revision)


def revision(database_url: str, message: str) -> None:
    """Autogenerate a new migration from the models (developer tool)."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def pending_differences(database_url: str) -> list[Any]:
    """What autogenerate would still change after migrating: empty when models and migrations agree."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff)
    finally:
        await engine.dispose()


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
    finally:
        await engine.dispose()


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """`upgrade` from async code (runs Alembic's own event loop in a worker thread)."""
    await asyncio.to_thread(upgrade, database_url, revision)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The newest revision(s) of our migrations, read once (they only change with a deploy)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


async def schema_problem(session: AsyncSession) -> str | None:
    """None when the database is at the newest migration; otherwise what `reap db upgrade` would fix."""
    connection = await session.connection()
    current = await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_heads())
    heads = head_revisions()
    if frozenset(current) == heads:
        return None
    if not current:
        return "no migration applied; run `reap db upgrade`"
    behind = f"the database is at {', '.join(sorted(current))}, the code at {', '.join(sorted(heads))}"
    return f"{behind}; run `reap db upgrade`"
