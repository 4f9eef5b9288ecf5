"""Delivering a rollup row: join first, post whole or not at all, and tell the requester why not."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from localslack.server import Fault, LocalSlack
from reminders.checkin import ROLLUP_FAILED, checkin_kinds
from reminders.delivery import DeliveryConfig, DeliveryReport, deliver
from reminders.digest import default_kinds
from storage.checkins import rollup_requests
from storage.engine import Sessions, transaction
from storage.outbox import enqueue
from storage.permissions import Actor
from tests.factories import COORDINATOR, TEAM, PlanFixture, make_item
from tests.reminders.support import (
    MONDAY_9AM,
    NEW_YORK,
    client_fixture,  # noqa: F401  (fixture)
    fast_limiter,
    outbox_rows,
    plan_fixture,  # noqa: F401  (fixture)
    slack_fixture,  # noqa: F401  (fixture)
)

CHANNEL = "C0NEWS"


@pytest.fixture
async def requested(sessions: Sessions, plan: PlanFixture, slack: LocalSlack) -> None:
    """The coordinator's rollup request for a public channel the bot has not joined yet."""
    slack.add_channel(CHANNEL, "equity-news")
    async with transaction(sessions) as session:
        await make_item(session, plan)
        rows = rollup_requests(
            team_id=TEAM,
            actor=Actor(TEAM, COORDINATOR),
            quarter="FY2027-Q2",
            channels=[CHANNEL],
            department=None,
            start_month=7,
            day=date(2026, 11, 2),
            now=MONDAY_9AM,
        )
        await enqueue(session, rows=rows)


async def deliver_rollups(
    sessions: Sessions, client: AsyncWebClient, *, minutes: int = 0, max_attempts: int = 6
) -> DeliveryReport:
    """One delivery run with the quarterly kinds, `minutes` after Monday 9am."""
    now = MONDAY_9AM + timedelta(minutes=minutes)
    kinds = {**default_kinds(), **checkin_kinds(sessions, client, clock=lambda: now, zone=NEW_YORK)}
    return await deliver(
        sessions,
        client,
        owner="worker-1",
        now=now,
        limiter=fast_limiter(),
        config=DeliveryConfig(max_attempts=max_attempts),
        kinds=kinds,
        default_zone=NEW_YORK,
    )


async def test_a_join_slack_rate_limits_is_retried_before_anything_is_posted(
    sessions: Sessions, client: AsyncWebClient, slack: LocalSlack, requested: None
):
    slack.fail_next("conversations.join", Fault(status=429, retry_after=1))

    first = await deliver_rollups(sessions, client)
    assert (first.retried, first.sent) == (1, 0)
    assert slack.messages(CHANNEL) == [] and slack.calls_to("chat.postMessage") == []

    second = await deliver_rollups(sessions, client, minutes=1)
    assert second.sent == 1 and slack.is_member(CHANNEL)
    assert [f["channels"] for f in slack.files()] == [[CHANNEL]]
    assert slack.dms_to(COORDINATOR) == []


async def test_a_rollup_slack_keeps_refusing_is_given_up_and_its_requester_told_once(
    sessions: Sessions, client: AsyncWebClient, slack: LocalSlack, requested: None
):
    slack.fail_next("chat.postMessage", Fault(status=500), times=2)

    await deliver_rollups(sessions, client, max_attempts=2)
    gave_up = await deliver_rollups(sessions, client, minutes=60, max_attempts=2)

    assert (gave_up.failed, gave_up.notices_queued, gave_up.sent) == (1, 1, 1)
    rollup, notice = await outbox_rows(sessions)
    assert rollup.state == "failed"
    assert rollup.last_error == "gave up after 2 attempts: HTTP 500 internal_error"
    assert (notice.kind, notice.recipient, notice.state) == (ROLLUP_FAILED, COORDINATOR, "sent")
    [dm] = slack.dms_to(COORDINATOR)
    assert "FY2027-Q2 rollup was not posted" in dm.text and "2 tries" in dm.text
    assert slack.messages(CHANNEL) == []
    assert (await deliver_rollups(sessions, client, minutes=120)).claimed == 0
