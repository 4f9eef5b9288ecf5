"""Several instances: three processes on one PostgreSQL tick together at every step of a simulated
week; Slack's record holds exactly one of every message the outbox says was owed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from localslack.server import LocalSlack
from storage.engine import Sessions, is_sqlite
from storage.models import Notification, NotificationState
from tests.factories import COORDINATOR, TEAM
from tests.reliability.support import (
    MONDAY,
    Ledger,
    add_members,
    outbox,
    owners,
    reap_env,
    run_reap,
    seed_owed,
    soak_only,
)
from tests.reminders.support import NEW_YORK

PEOPLE = owners(30, prefix="U0WEEK")
INSTANCES = 3
# Due dates from a week overdue to two weeks out, so every day of the week owes something
# different: due-soon notices, due-today digests, overdue nudges and escalations.
DUES = [MONDAY + timedelta(days=offset) for offset in (-8, -1, 0, 2, 4, 9, 13)]


def instants(days: int) -> list[datetime]:
    """Every two hours from 08:00 to 18:00 New York time, Monday onwards, for `days` weekdays."""
    return [
        datetime.combine(MONDAY + timedelta(days=day), time(hour), tzinfo=NEW_YORK)
        for day in range(days)
        for hour in range(8, 19, 2)
    ]


@pytest.fixture(name="pg_url")
def pg_url_fixture(database_url: str) -> str:
    """PostgreSQL only: it is the backend several instances share in production."""
    if is_sqlite(database_url):
        pytest.skip("several instances share one PostgreSQL; SQLite serves a single instance")
    return database_url


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[LocalSlack]:
    """localslack with the owners and the coordinator as members."""
    with LocalSlack(team_id=TEAM) as fake:
        add_members(fake, [*PEOPLE, COORDINATOR])
        yield fake


async def tick_together(env: dict[str, str], at: datetime) -> list[str]:
    """`reap remind --at` in three processes at once; their outputs (each must exit 0)."""
    results = await asyncio.gather(
        *(run_reap(env, "remind", "--at", at.isoformat()) for _ in range(INSTANCES))
    )
    for code, output in results:
        assert code == 0 and "Traceback" not in output, output
    return [output for _, output in results]


def owed_by(rows: list[Notification], last: datetime) -> list[Notification]:
    """Rows owed by `last`: anything not scheduled for after the simulation ended."""
    return [row for row in rows if not (row.state == NotificationState.PENDING and row.send_after > last)]


async def simulate(pg_url: str, sessions: Sessions, slack: LocalSlack, days: int) -> None:
    """Seed the plan, tick three instances together at every step, then check Slack's record."""
    await seed_owed(sessions, PEOPLE, DUES, coordinator=COORDINATOR)
    env = reap_env(pg_url, slack)
    steps = instants(days)
    for at in steps:
        await tick_together(env, at)

    rows = owed_by(await outbox(sessions), steps[-1])
    ledger = Ledger.of(rows, slack)
    ledger.check()
    sent = [row for row in rows if row.state == NotificationState.SENT]
    assert {row.state for row in rows} <= {NotificationState.SENT, NotificationState.SKIPPED}
    assert sent, "the simulated days owed messages"
    # Slack holds exactly the sent rows' messages: one each, nothing else from REAP.
    assert sum(ledger.posted.values()) == len(sent) == len(slack.calls_to("chat.postMessage"))
    assert set(ledger.posted) == {row.key for row in sent}
    per_day = Counter((row.kind, row.recipient, row.local_date) for row in sent)
    assert max(per_day.values()) == 1, [k for k, n in per_day.items() if n > 1]
    days_seen: set[date] = {row.local_date for row in sent if row.local_date is not None}
    assert len(days_seen) == days, "every simulated day owed and sent something"


async def test_three_instances_ticking_together_for_a_day_send_every_message_exactly_once(
    pg_url: str, engine: AsyncEngine, sessions: Sessions, slack: LocalSlack
):
    await simulate(pg_url, sessions, slack, days=1)


@soak_only
async def test_three_instances_ticking_together_for_a_week_send_every_message_exactly_once(
    pg_url: str, engine: AsyncEngine, sessions: Sessions, slack: LocalSlack
):
    await simulate(pg_url, sessions, slack, days=5)
