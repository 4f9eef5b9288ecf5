"""Hostile and malformed traffic against the real HTTP server, and what it must leave untouched.

The helpers here are shared by the security tests: a running bot with a small plan whose people
have all been seen once (so first contact, which creates a Person by design, is out of the way),
a snapshot of everything a request could change, and the Slack calls a person would notice.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, text
from sqlmodel import SQLModel, col, select

from localslack.server import Call
from storage.engine import create_engine, transaction
from storage.models import ActionItem, AuditEvent, Person
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

ADMIN = "U0ADMIN"
PEOPLE = (OWNER, OTHER, COORDINATOR, ADMIN)
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# Slack methods whose effect a person sees: messages, modals, App Home, files, response_url posts.
VISIBLE_METHODS = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "chat.delete",
        "chat.scheduleMessage",
        "views.open",
        "views.push",
        "views.update",
        "views.publish",
        "files.completeUploadExternal",
        "webhook",
    }
)
# Of those, the ones that put something into a channel or DM for others to read.
MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.delete", "chat.scheduleMessage"})


@asynccontextmanager
async def throwaway_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """An empty database for a fixture wider than one test: an SQLite file, or a PostgreSQL schema.

    tests/conftest.py's `database_url` does the same per test; a module-scoped bot needs its own.
    """
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'reap.db'}"
        return
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        pytest.skip("PostgreSQL variant: set TEST_DATABASE_URL=postgresql+asyncpg://... to run it")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"{server}{'&' if '?' in server else '?'}search_path={schema}"
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


# A plan that asks for no evidence or verification of completion.
NO_EVIDENCE: dict[str, Any] = {"evidence_required": False, "verification": False}


@asynccontextmanager
async def seeded_bot(
    database_url: str, *, policy: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan (OIT-1 of OWNER due 2026-12-15, OIT-2 overdue), all people known.

    `policy` is the plan's change policy (the defaults ask for evidence of completion and approval);
    `settings` override the harness's (see tests.harness.bot_settings).
    """
    async with running_bot(database_url, **settings) as bot:
        bot.slack.add_channel("C0GENERAL", "general")
        for user in PEOPLE:
            bot.slack.add_user(user, user.lower(), tz="America/New_York")
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            plan.plan.policy = policy
            await make_item(session, plan)
            await make_item(
                session,
                plan,
                title="Hire an equity data analyst",
                due=date(2026, 11, 20),
                strategy="workplace-equity",
            )
        for user in PEOPLE:
            # First contact creates a Person and refreshes the profile; get it done before measuring.
            await bot.command(user, "help")
        bot.slack.reset()
        yield bot


@dataclass(frozen=True)
class Snapshot:
    """Everything a request could change: row counts per table, audit events, items and people."""

    counts: dict[str, int]
    audit_events: int
    items: list[dict[str, Any]]
    people: list[tuple[Any, ...]]


# Which deliveries were already handled: every accepted request records its id there, refused or not.
BOOKKEEPING = frozenset({"processed_event"})


async def snapshot(bot: Bot, *, ignore: frozenset[str] = BOOKKEEPING) -> Snapshot:
    """The state of the database now (tables named in `ignore` are left out of the counts)."""
    async with bot.sessions() as session:
        counts: dict[str, int] = {}
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in ignore:
                counts[table.name] = int((await session.exec(select(func.count()).select_from(table))).one())
        audit = int((await session.exec(select(func.count()).select_from(AuditEvent))).one())
        items = [
            item.model_dump() for item in await session.exec(select(ActionItem).order_by(col(ActionItem.id)))
        ]
        people = [
            (p.team_id, p.user_id, p.role, p.department_id, p.paused_until, p.active)
            for p in await session.exec(select(Person).order_by(col(Person.id)))
        ]
    return Snapshot(counts=counts, audit_events=audit, items=items, people=people)


def visible_calls(bot: Bot, *, since: int = 0, methods: frozenset[str] = VISIBLE_METHODS) -> list[Call]:
    """Slack calls a person would notice, among those made after the first `since` calls."""
    return [call for call in bot.slack.calls[since:] if call.method in methods]
