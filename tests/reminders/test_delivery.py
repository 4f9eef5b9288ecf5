"""Delivering the outbox through localslack: each owed message exactly once, or failed with a reason."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from domain.status import ItemStatus
from localslack.server import Fault, LocalSlack
from reminders.delivery import EVENT_TYPE, DeliveryConfig, backoff, classify, deliver
from reminders.ratelimit import SendLimiter
from storage import outbox
from storage.engine import Sessions, transaction
from storage.models import AuditEvent
from tests.factories import COORDINATOR, OTHER, OWNER, TEAM, PlanFixture, make_person
from tests.reminders.support import (
    DUE,
    MONDAY_9AM,
    TOKEN,
    Owed,
    add_items,
    client_fixture,  # noqa: F401  (fixture)
    outbox_rows,
    person,
    plan_fixture,  # noqa: F401  (fixture)
    refs_in,
    run_delivery,
    run_fold,
    run_plan,
    set_status,
    slack_fixture,  # noqa: F401  (fixture)
)

LATER = MONDAY_9AM + timedelta(hours=1)


@pytest.fixture
async def owed(sessions: Sessions, plan: PlanFixture) -> Owed:
    """Two items owed to U0OWNER on Monday, planned into one pending digest."""
    made = await add_items(
        sessions, plan, today={"due": DUE("2026-11-02")}, tomorrow={"due": DUE("2026-11-03")}
    )
    report = await run_plan(sessions, MONDAY_9AM)
    assert report.inserted == 1
    return made


async def test_a_planned_digest_is_posted_once_as_a_dm_with_buttons_and_metadata(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    report = await run_delivery(sessions, client, MONDAY_9AM)
    (message,) = slack.dms_to(OWNER)
    assert refs_in(message.blocks) == ["OIT-1", "OIT-2"]
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert [b["block_id"] for b in actions] == ["actions:OIT-1", "actions:OIT-2"]
    assert [e["action_id"] for e in actions[0]["elements"]] == ["item_done", "item_snooze", "item_update"]
    assert "<!date^" in message.blocks[2]["text"]["text"], "due dates are Slack date tokens"
    (row,) = await outbox_rows(sessions)
    assert message.metadata == {"event_type": EVENT_TYPE, "event_payload": {"key": row.key}}
    assert (row.state, row.channel, row.ts, row.attempts) == ("sent", message.channel, message.ts, 1)
    assert (report.claimed, report.sent) == (1, 1)
    again = await run_delivery(sessions, client, LATER)
    assert again.claimed == 0 and len(slack.dms_to(OWNER)) == 1


@pytest.mark.parametrize(
    ("method", "fault", "posts"),
    [
        pytest.param("chat.postMessage", Fault(status=429, retry_after=1), 2, id="429-retry-after"),
        pytest.param("chat.postMessage", Fault(status=500), 2, id="500-then-success"),
        pytest.param("chat.postMessage", Fault(status=503, body=b"<html>down</html>"), 2, id="html-503"),
        pytest.param("chat.postMessage", Fault(error="internal_error"), 2, id="ok-false-internal-error"),
        pytest.param("chat.postMessage", Fault(drop=True), 2, id="dropped-before-slack-saw-it"),
        pytest.param("chat.postMessage", Fault(deliver=True, drop=True), 1, id="dropped-after-slack-posted"),
        pytest.param("conversations.open", Fault(drop=True), 1, id="dm-open-dropped"),
    ],
)
async def test_a_transient_fault_is_retried_and_the_digest_arrives_exactly_once(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
    method: str,
    fault: Fault,
    posts: int,
):
    slack.fail_next(method, fault)
    report = await run_delivery(sessions, client, MONDAY_9AM)
    assert (report.retried, report.sent, report.failed) == (1, 0, 0)
    (row,) = await outbox_rows(sessions)
    assert row.state == "pending" and row.last_error and row.send_after > MONDAY_9AM
    second = await run_delivery(sessions, client, LATER)
    assert second.sent == 1
    assert len(slack.dms_to(OWNER)) == 1, "delivered once: never lost, never doubled"
    assert len(slack.calls_to("chat.postMessage")) == posts
    (row,) = await outbox_rows(sessions)
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)


async def test_a_429_is_retried_no_sooner_than_retry_after(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    slack.fail_next("chat.postMessage", Fault(status=429, retry_after=1))
    await run_delivery(sessions, client, MONDAY_9AM)
    (row,) = await outbox_rows(sessions)
    assert row.send_after >= MONDAY_9AM + timedelta(seconds=1)
    assert row.last_error == "rate limited (Retry-After 1s)"


async def test_a_dropped_post_that_reached_slack_is_found_by_its_metadata_not_resent(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    slack.fail_next("chat.postMessage", Fault(deliver=True, drop=True))
    await run_delivery(sessions, client, MONDAY_9AM)
    (row,) = await outbox_rows(sessions)
    assert row.channel == slack.dm_channel(OWNER) and row.ts is None, "the send intent is kept"
    second = await run_delivery(sessions, client, LATER)
    assert (second.sent, second.reconciled) == (1, 1)
    (message,) = slack.dms_to(OWNER)
    (row,) = await outbox_rows(sessions)
    assert (row.state, row.ts) == ("sent", message.ts)
    history = slack.calls_to("conversations.history")
    assert history and history[0].params.get("include_all_metadata") in (True, "true", "1")


async def test_a_post_that_cannot_be_checked_is_left_ambiguous_and_never_resent(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    slack.fail_next("chat.postMessage", Fault(drop=True))
    slack.fail_next("conversations.history", Fault(error="missing_scope"))
    await run_delivery(sessions, client, MONDAY_9AM)
    second = await run_delivery(sessions, client, LATER)
    assert second.ambiguous == 1 and second.sent == 0
    (row,) = await outbox_rows(sessions)
    assert row.state == "ambiguous" and "missing_scope" in (row.last_error or "")
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert (await run_delivery(sessions, client, LATER + timedelta(days=1))).claimed == 0


async def test_a_timeout_after_slack_received_the_post_is_reconciled_not_doubled(
    sessions: Sessions,
    slack: LocalSlack,
    owed: Owed,
):
    """The client gives up after 1 s; Slack posts it at 1.5 s; the retry finds it."""
    impatient = AsyncWebClient(token=TOKEN, base_url=slack.base_url, timeout=1, retry_handlers=[])
    slack.fail_next("chat.postMessage", Fault(delay=1.5))
    report = await run_delivery(sessions, impatient, MONDAY_9AM)
    assert report.retried == 1
    (row,) = await outbox_rows(sessions)
    assert row.last_error == "timed out" and row.channel is not None
    for _ in range(100):  # wait until localslack has finished the late post
        if slack.dms_to(OWNER):
            break
        await asyncio.sleep(0.05)
    second = await run_delivery(sessions, impatient, LATER)
    assert (second.sent, second.reconciled) == (1, 1)
    assert len(slack.dms_to(OWNER)) == 1


@pytest.mark.parametrize(
    ("method", "fault", "reason"),
    [
        pytest.param("chat.postMessage", Fault(error="channel_not_found"), "channel_not_found", id="channel"),
        pytest.param("chat.postMessage", Fault(error="invalid_auth"), "invalid_auth", id="auth"),
        pytest.param("chat.postMessage", Fault(error="msg_too_long"), "msg_too_long", id="too-long"),
        pytest.param("conversations.open", Fault(error="missing_scope"), "missing_scope", id="scope"),
    ],
)
async def test_a_permanent_error_fails_the_row_with_its_reason_without_retrying(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
    method: str,
    fault: Fault,
    reason: str,
):
    slack.fail_next(method, fault)
    report = await run_delivery(sessions, client, MONDAY_9AM)
    assert (report.failed, report.retried, report.sent) == (1, 0, 0)
    (row,) = await outbox_rows(sessions)
    assert (row.state, row.last_error) == ("failed", reason)
    assert (await run_delivery(sessions, client, LATER + timedelta(days=1))).claimed == 0
    assert slack.dms_to(OWNER) == []


async def test_repeated_transient_errors_give_up_after_max_attempts_with_the_reason(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    slack.fail_next("chat.postMessage", Fault(status=500), times=5)
    first = await run_delivery(sessions, client, MONDAY_9AM, max_attempts=2)
    second = await run_delivery(sessions, client, LATER, max_attempts=2)
    assert (first.retried, second.failed) == (1, 1)
    (row,) = await outbox_rows(sessions)
    assert (row.state, row.last_error) == ("failed", "gave up after 2 attempts: HTTP 500 internal_error")
    assert slack.dms_to(OWNER) == []


async def test_an_owner_who_left_slack_is_marked_inactive_and_the_coordinator_told(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    slack.fail_next("chat.postMessage", Fault(error="user_not_found"))
    slack.fail_next("users.info", Fault(error="user_not_found"))
    report = await run_delivery(sessions, client, MONDAY_9AM)
    assert (report.failed, report.orphans_queued) == (1, 2)
    assert len(slack.calls_to("users.info")) == 1, "Slack is asked once more before giving up on them"
    gone = await person(sessions, OWNER)
    assert gone.active is False
    digest, *orphans = await outbox_rows(sessions)
    assert (digest.state, digest.last_error) == ("failed", "user_not_found: the recipient has left Slack")
    assert [(o.kind, o.recipient, o.state) for o in orphans] == [("orphaned", COORDINATOR, "pending")] * 2
    assert (report.claimed, report.sent) == (1, 0), "the reports ride the coordinator's digest"

    assert await run_fold(sessions, MONDAY_9AM) == 2
    told = await run_delivery(sessions, client, MONDAY_9AM)
    assert told.sent == 1
    (message,) = slack.dms_to(COORDINATOR)
    assert refs_in(message.blocks) == ["OIT-1", "OIT-2"]
    assert f"<@{OWNER}>" in str(message.blocks) and "user_not_found" in str(message.blocks)
    async with sessions() as session:
        from sqlmodel import select

        audit = (await session.exec(select(AuditEvent).where(AuditEvent.entity == "person"))).all()
    assert [(a.field, a.old, a.new) for a in audit] == [("active", "True", "False")]
    await run_plan(sessions, MONDAY_9AM + timedelta(hours=2))
    assert len(await outbox_rows(sessions)) == 4, "the planner reports the same orphans under the same keys"


async def test_a_deactivated_account_found_at_dm_open_is_treated_as_gone(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    slack.add_user(OWNER, OWNER.lower(), deleted=True)
    report = await run_delivery(sessions, client, MONDAY_9AM)
    assert report.failed == 1 and report.orphans_queued == 2
    assert (await person(sessions, OWNER)).active is False


@pytest.mark.parametrize(
    ("users_info", "state", "reason"),
    [
        pytest.param(
            None, "failed", "account_inactive, but users.info says they are still active", id="still-here"
        ),
        pytest.param(
            Fault(error="invalid_auth"),
            "failed",
            "account_inactive (users.info: invalid_auth)",
            id="dead-token",
        ),
        pytest.param(
            Fault(status=500),
            "pending",
            "account_inactive; could not confirm (HTTP 500 internal_error)",
            id="unsure",
        ),
    ],
)
async def test_a_gone_answer_that_users_info_does_not_confirm_deactivates_nobody(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
    users_info: Fault | None,
    state: str,
    reason: str,
):
    """A dead bot token also says account_inactive; that must not orphan everyone's items."""
    slack.fail_next("chat.postMessage", Fault(error="account_inactive"))
    if users_info is not None:
        slack.fail_next("users.info", users_info)
    report = await run_delivery(sessions, client, MONDAY_9AM)
    assert report.orphans_queued == 0
    (row,) = await outbox_rows(sessions)
    assert (row.state, row.last_error) == (state, reason)
    assert (await person(sessions, OWNER)).active is True


async def test_an_item_settled_after_planning_drops_out_of_the_digest(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    await set_status(sessions, owed.id("today"), ItemStatus.DONE)
    await run_delivery(sessions, client, MONDAY_9AM)
    (message,) = slack.dms_to(OWNER)
    assert refs_in(message.blocks) == ["OIT-2"]
    assert "1 of your action items needs attention" in message.blocks[0]["text"]["text"]


async def test_a_digest_with_nothing_left_to_say_is_skipped_not_sent(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    await set_status(sessions, owed.id("today"), ItemStatus.DONE)
    await set_status(sessions, owed.id("tomorrow"), ItemStatus.DROPPED)
    report = await run_delivery(sessions, client, MONDAY_9AM)
    assert (report.skipped, report.sent) == (1, 0)
    (row,) = await outbox_rows(sessions)
    assert row.state == "skipped" and "nothing left" in (row.last_error or "")
    assert slack.dms_to(OWNER) == []


async def test_a_digest_still_pending_the_next_day_is_skipped_as_stale(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    slack.fail_next("chat.postMessage", Fault(status=500))
    await run_delivery(sessions, client, MONDAY_9AM)
    report = await run_delivery(sessions, client, MONDAY_9AM + timedelta(days=1))
    assert report.skipped == 1 and report.sent == 0
    (row,) = await outbox_rows(sessions)
    assert row.state == "skipped" and (row.last_error or "").startswith("stale")
    assert slack.dms_to(OWNER) == []


async def test_a_paused_owner_is_skipped_at_send_time(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    async with transaction(sessions) as session:
        from storage.people import find_person

        found = await find_person(session, team_id=TEAM, user_id=OWNER)
        assert found is not None
        found.paused_until = DUE("2026-11-10")
    report = await run_delivery(sessions, client, MONDAY_9AM)
    assert report.skipped == 1 and slack.dms_to(OWNER) == []


# --- restart and leases --------------------------------------------------------------------------


async def claim_and_die(sessions: Sessions, *, channel: str | None = None) -> int:
    """A worker claims every due row and dies (optionally after recording a send intent)."""
    async with transaction(sessions) as session:
        (row,) = await outbox.claim(
            session, owner="dead-worker", now=MONDAY_9AM, lease=timedelta(minutes=5), limit=10
        )
        if channel is not None:
            await outbox.renew(
                session,
                id=row.id or 0,
                owner="dead-worker",
                now=MONDAY_9AM,
                lease=timedelta(minutes=5),
                channel=channel,
            )
    return row.id or 0


async def test_a_tick_that_died_after_claiming_is_recovered_after_the_lease_without_a_duplicate(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    await claim_and_die(sessions)
    early = await run_delivery(sessions, client, MONDAY_9AM + timedelta(minutes=4))
    assert early.claimed == 0, "the lease still holds"
    late = await run_delivery(sessions, client, MONDAY_9AM + timedelta(minutes=5, seconds=1))
    assert (late.claimed, late.sent, late.reconciled) == (1, 1, 0)
    assert len(slack.dms_to(OWNER)) == 1
    (row,) = await outbox_rows(sessions)
    assert (row.state, row.attempts) == ("sent", 2)
    assert slack.calls_to("conversations.history") == [], "no intent was recorded, so no check was needed"


async def test_a_tick_that_died_after_posting_is_recovered_by_reconciling_not_resending(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    dm = slack.dm_channel(OWNER)
    await claim_and_die(sessions, channel=dm)
    (row,) = await outbox_rows(sessions)
    posted = await client.chat_postMessage(
        channel=dm, text="digest", metadata={"event_type": EVENT_TYPE, "event_payload": {"key": row.key}}
    )
    report = await run_delivery(sessions, client, MONDAY_9AM + timedelta(minutes=6))
    assert (report.sent, report.reconciled) == (1, 1)
    (row,) = await outbox_rows(sessions)
    assert (row.state, row.ts) == ("sent", posted["ts"])
    assert len(slack.dms_to(OWNER)) == 1


async def test_a_cancelled_delivery_mid_post_is_recovered_without_a_duplicate(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    owed: Owed,
):
    """The process is killed while Slack is still answering; Slack posts the message anyway."""
    slack.fail_next("chat.postMessage", Fault(delay=0.5))
    task = asyncio.create_task(run_delivery(sessions, client, MONDAY_9AM))
    for _ in range(200):
        if slack.calls_to("chat.postMessage"):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if slack.dms_to(OWNER):
            break
        await asyncio.sleep(0.05)
    (row,) = await outbox_rows(sessions)
    assert row.state == "sending" and row.channel is not None
    report = await run_delivery(sessions, client, MONDAY_9AM + timedelta(minutes=6))
    assert (report.sent, report.reconciled) == (1, 1)
    assert len(slack.dms_to(OWNER)) == 1


class StoppingLimiter(SendLimiter):
    """A limiter that asks the run to stop the first time a send is paced."""

    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__(workspace_rate=1000, channel_rate=1000)
        self.stop = stop

    async def acquire(self, channel: str) -> float:
        self.stop.set()
        return await super().acquire(channel)


async def test_a_stop_request_finishes_the_send_in_flight_and_hands_the_rest_back(
    sessions: Sessions,
    client: AsyncWebClient,
    slack: LocalSlack,
    plan: PlanFixture,
):
    await add_items(
        sessions, plan, a={"due": DUE("2026-11-02")}, b={"due": DUE("2026-11-02"), "owner": OTHER}
    )
    await run_plan(sessions, MONDAY_9AM)
    stop = asyncio.Event()
    report = await deliver(
        sessions,
        client,
        owner="w",
        now=MONDAY_9AM,
        limiter=StoppingLimiter(stop),
        config=DeliveryConfig(concurrency=1),
        stop=stop,
    )
    assert (report.claimed, report.sent, report.released) == (2, 1, 1)
    waiting = [row for row in await outbox_rows(sessions) if row.state == "pending"]
    assert [row.attempts for row in waiting] == [0], "a released row keeps its attempts"
    after = await run_delivery(sessions, client, MONDAY_9AM + timedelta(seconds=1))
    assert after.sent == 1 and len(slack.dms_to(OWNER)) == len(slack.dms_to(OTHER)) == 1


# --- pacing --------------------------------------------------------------------------------------


async def test_sixty_digests_are_paced_under_slacks_limits_without_a_single_429(
    sessions: Sessions,
    plan: PlanFixture,
):
    users = [f"U0PACE{i:02d}" for i in range(60)]
    with LocalSlack(team_id=TEAM, workspace_rate=20, channel_rate=1) as paced:
        async with transaction(sessions) as session:
            for user in users:
                paced.add_user(user, user.lower())
                await make_person(session, user_id=user, department_id=plan.department.id)
        await add_items(sessions, plan, **{u: {"due": DUE("2026-11-02"), "owner": u} for u in users})
        assert (await run_plan(sessions, MONDAY_9AM)).inserted == 60
        client = AsyncWebClient(token=TOKEN, base_url=paced.base_url, timeout=5, retry_handlers=[])
        limiter = SendLimiter(workspace_rate=20, channel_rate=1)
        started = time.monotonic()
        report = await run_delivery(sessions, client, MONDAY_9AM, limiter=limiter)
        elapsed = time.monotonic() - started
        assert paced.rate_limited_count == 0
        assert report.sent == 60 and all(len(paced.dms_to(u)) == 1 for u in users)
    # localslack lets 20 through at once and then 20/s, so 60 need at least (60 - 20) / 20 s.
    assert elapsed >= 2.0


# --- classification ------------------------------------------------------------------------------


def api_error(status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> SlackApiError:
    """A SlackApiError as slack_sdk raises it."""
    response = SimpleNamespace(status_code=status, data=data, headers=headers or {})
    return SlackApiError("failed", response)


@pytest.mark.parametrize(
    ("exc", "posted", "category", "reason"),
    [
        (
            api_error(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}),
            True,
            "rate_limited",
            "rate limited (Retry-After 7s)",
        ),
        (api_error(500, {}), True, "transient", "HTTP 500"),
        (api_error(502, {"ok": False, "error": "bad_gateway"}), True, "transient", "HTTP 502 bad_gateway"),
        (api_error(200, {"ok": False, "error": "user_not_found"}), True, "gone", "user_not_found"),
        (api_error(200, {"ok": False, "error": "account_inactive"}), True, "gone", "account_inactive"),
        (api_error(200, {"ok": False, "error": "not_in_channel"}), True, "permanent", "not_in_channel"),
        (api_error(200, {"ok": False, "error": "is_archived"}), True, "permanent", "is_archived"),
        (api_error(200, {"ok": False, "error": "invalid_blocks"}), True, "permanent", "invalid_blocks"),
        (api_error(200, {"ok": False, "error": "fatal_error"}), True, "transient", "fatal_error"),
        (api_error(200, {}), True, "transient", "unexpected answer (HTTP 200, no error code)"),
        (aiohttp.ServerDisconnectedError(), True, "maybe_sent", "connection lost (ServerDisconnectedError)"),
        (aiohttp.ServerDisconnectedError(), False, "transient", "connection lost (ServerDisconnectedError)"),
        (TimeoutError(), True, "maybe_sent", "timed out"),
        (
            aiohttp.ClientConnectorError(
                cast(Any, SimpleNamespace(ssl=None, host="h", port=1)), OSError(111, "refused")
            ),
            True,
            "transient",
            "could not connect to Slack (ClientConnectorError)",
        ),
    ],
)
def test_errors_are_classified_by_whether_a_retry_could_double_post(
    exc: BaseException, posted: bool, category: str, reason: str
):
    failure = classify(exc, may_have_posted=posted)
    assert failure is not None and (failure.category, failure.reason) == (category, reason)


def test_a_programming_error_is_not_mistaken_for_a_slack_error():
    assert classify(KeyError("ts"), may_have_posted=True) is None


def test_backoff_doubles_per_attempt_with_jitter_up_to_the_cap():
    rng = random.Random(4)
    waits = [
        backoff(n, base=timedelta(seconds=30), cap=timedelta(minutes=5), rng=rng).total_seconds()
        for n in range(1, 8)
    ]
    steps = [30, 60, 120, 240, 300, 300, 300]
    assert all(step / 2 <= wait <= step for wait, step in zip(waits, steps, strict=True))
