"""Shared fixtures: a database per test on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers every table on SQLModel.metadata)
from storage.engine import Sessions, create_engine, session_factory

PG_URL = os.environ.get("TEST_DATABASE_URL")
SHARED = Path(__file__).resolve().parents[2] / "shared"

# On a laptop Hypothesis explores new examples every run and keeps the failures it finds in
# .hypothesis/. CI (HYPOTHESIS_PROFILE=ci) replays one fixed sequence instead: a red build there
# is then a regression anyone can reproduce, not a new find that burns minutes shrinking. Finds
# from laptops come to CI as @example lines.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk ignores NO_PROXY, so a stray proxy variable would hijack loopback calls."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


async def _pg_schema_url() -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL or "")
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    sep = "&" if "?" in (PG_URL or "") else "?"
    return f"{PG_URL}{sep}search_path={schema}", schema


async def _drop_pg_schema(schema: str) -> None:
    admin = create_engine(PG_URL or "")
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each backend: an SQLite file, or a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'reap.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL variant: set TEST_DATABASE_URL=postgresql+asyncpg://... to run it")
    url, schema = await _pg_schema_url()
    try:
        yield url
    finally:
        await _drop_pg_schema(schema)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with every table created from the models."""
    eng = create_engine(database_url)
    async with eng.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    """A session factory bound to the test database."""
    return session_factory(engine)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """The read-only shared/ folder beside the repo; tests that need it skip where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present in this checkout")
    yield SHARED
