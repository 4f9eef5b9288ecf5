"""Slack outage: localslack answers 503 to everything for a while; once it is back the backlog
drains by itself within Slack's rate limits, with no duplicates and nothing lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from localslack.server import LocalSlack
from reminders.delivery import DeliveryConfig
from reminders.ratelimit import SendLimiter
from reminders.tick import ReminderParts, tick
from storage.engine import Sessions
from storage.models import NotificationState
from tests.factories import TEAM
from tests.reliability.support import (
    MONDAY,
    MONDAY_0930,
    Ledger,
    add_members,
    dms_per_person,
    outbox,
    owners,
    seed_owed,
    soak_only,
)
from tests.reminders.support import TOKEN, settings_for

PEOPLE = owners(40, prefix="U0OUT")
# Slack's side: 12 posts/s for the workspace and one per second per channel; the bot paces
# itself just under that, so a correct drain never sees a 429.
SLACK_WORKSPACE_RATE = 12.0
BOT_WORKSPACE_RATE = 10.0


@dataclass(frozen=True)
class Outage:
    """How long Slack is down, and the delivery retry settings compressed to match."""

    seconds: float
    delivery: DeliveryConfig


SHORT = Outage(
    4.0,
    DeliveryConfig(base_backoff=timedelta(seconds=0.3), max_backoff=timedelta(seconds=1), max_attempts=40),
)
TWO_MINUTES = Outage(
    120.0,
    DeliveryConfig(base_backoff=timedelta(seconds=1), max_backoff=timedelta(seconds=8), max_attempts=60),
)


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[LocalSlack]:
    """localslack enforcing a workspace budget and one post per second per channel."""
    with LocalSlack(team_id=TEAM, workspace_rate=SLACK_WORKSPACE_RATE, channel_rate=1.0) as fake:
        add_members(fake, PEOPLE)
        yield fake


def ticker(database_url: str, sessions: Sessions, slack: LocalSlack, outage: Outage) -> ReminderParts:
    """One instance's reminder parts, paced under localslack's limits."""
    return ReminderParts(
        org=settings_for(database_url, slack).organisation(),
        sessions=sessions,
        client=AsyncWebClient(token=TOKEN, base_url=slack.base_url, timeout=5, retry_handlers=[]),
        instance_id="outage-ticker",
        limiter=SendLimiter(workspace_rate=BOT_WORKSPACE_RATE, channel_rate=1.0),
        delivery=outage.delivery,
    )


async def ride_out(parts: ReminderParts, sessions: Sessions, slack: LocalSlack, outage: Outage) -> int:
    """Tick every 0.2 s on a real-speed clock from Monday 09:30, through the outage, until every
    row is sent; returns how many calls Slack refused during the outage."""
    origin = time.monotonic()

    def now() -> datetime:
        return MONDAY_0930 + timedelta(seconds=time.monotonic() - origin)

    refused: list[int] = []

    def end_outage() -> None:
        refused.append(len(slack.calls))
        slack.set_outage(None)

    slack.set_outage(503)
    # The outage lasts `seconds` after the first tick has tried everyone, however long planning took.
    first = await tick(parts, now())
    assert not first.errors, first.errors
    asyncio.get_running_loop().call_later(outage.seconds, end_outage)
    deadline = time.monotonic() + outage.seconds + 90
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        report = await tick(parts, now())
        assert not report.errors, report.errors
        rows = await outbox(sessions)
        if refused and rows and all(row.state == NotificationState.SENT for row in rows):
            return refused[0]
        if any(row.state in (NotificationState.FAILED, NotificationState.AMBIGUOUS) for row in rows):
            break
    states = [row.state for row in await outbox(sessions)]
    pytest.fail(f"the backlog did not drain: {states}")


async def check_drained(sessions: Sessions, slack: LocalSlack, during: int) -> None:
    """Every owner got exactly one digest, the outage was real, and no post was rate limited."""
    rows = await outbox(sessions)
    Ledger.of(rows, slack).check()
    assert len(rows) == len(PEOPLE) and {row.state for row in rows} == {NotificationState.SENT}
    assert dms_per_person(slack, PEOPLE) == {1: len(PEOPLE)}
    assert during >= len(PEOPLE), "Slack refused every owner at least once during the outage"
    assert max(row.attempts for row in rows) > 1, "rows were retried after the outage"
    assert slack.rate_limited_count == 0


async def test_backlog_drains_after_a_short_slack_outage_once_each_within_rate_limits(
    database_url: str, engine: AsyncEngine, sessions: Sessions, slack: LocalSlack
):
    await seed_owed(sessions, PEOPLE, [MONDAY])
    parts = ticker(database_url, sessions, slack, SHORT)
    during = await ride_out(parts, sessions, slack, SHORT)
    await check_drained(sessions, slack, during)


@soak_only
async def test_backlog_drains_after_a_two_minute_slack_outage(
    database_url: str, engine: AsyncEngine, sessions: Sessions, slack: LocalSlack
):
    await seed_owed(sessions, PEOPLE, [MONDAY])
    parts = ticker(database_url, sessions, slack, TWO_MINUTES)
    during = await ride_out(parts, sessions, slack, TWO_MINUTES)
    await check_drained(sessions, slack, during)
