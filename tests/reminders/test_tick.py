"""Reminders wired into the app: the ticker, its health check, digest rebuilds and `reap remind --at`."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import SQLModel, select, update

from bot.app import ReapApp, create_app
from bot.metrics import SlackCallObserver
from bot.runtime import install, remind_once
from commands.service import Caller, own_message_after_change
from domain.status import ItemStatus
from localslack.server import LocalSlack
from messages import blocks as bk
from reminders.scheduler import ReminderScheduler
from reminders.tick import (
    SEND_BUDGET,
    ReminderParts,
    scheduled_tick,
    scheduler_health,
    send_limiter,
    tick,
)
from storage import outbox
from storage.engine import Sessions, create_engine, is_sqlite, transaction
from storage.models import ActionItem, Notification, NotificationCreate, SendPace
from tests.factories import COORDINATOR, OTHER, OWNER, TEAM, PlanFixture
from tests.harness import Clock, parts_of
from tests.reminders.support import (  # noqa: F401  (fixtures)
    DUE,
    MONDAY_9AM,
    TUESDAY_9AM,
    add_items,
    outbox_rows,
    plan_fixture,
    refs_in,
    set_status,
    settings_for,
    slack_fixture,
)


def no_retries(slack: LocalSlack) -> AsyncWebClient:
    """A delivery client on localslack."""
    return AsyncWebClient(token="xoxb-wiring", base_url=slack.base_url, retry_handlers=[])


@pytest.fixture
async def app(sessions: Sessions, slack: LocalSlack) -> AsyncIterator[ReapApp]:
    """The real app on localslack with reminders installed and its clock at Monday 09:00."""
    built = create_app(settings_for("sqlite+aiosqlite://", slack), sessions=sessions, clock=Clock(MONDAY_9AM))
    install(built)
    yield built
    await built.close()


@pytest.fixture
async def owed(sessions: Sessions, plan: PlanFixture) -> PlanFixture:
    """Two items due around Monday for U0OWNER and one long overdue for U0OTHER."""
    await add_items(
        sessions,
        plan,
        today={"due": DUE("2026-11-02")},
        tomorrow={"due": DUE("2026-11-03")},
        old={"due": DUE("2026-10-26"), "owner": OTHER},
    )
    return plan


async def test_install_wires_the_ticker_its_start_and_stop_the_health_check_and_rebuilds(app: ReapApp):
    assert app.ticker is not None
    assert len(app.starters) == len(app.stoppers) == 1
    assert "scheduler" in app.health_checks
    assert app.reap.rebuild_message is not None
    parts = parts_of(app)
    # Sends are retried by delivery, not by slack_sdk: the one handler only counts calls for /metrics.
    assert [type(handler) for handler in parts.client.retry_handlers] == [SlackCallObserver]
    install(app)
    assert len(app.starters) == 1, "installing twice changes nothing"


async def test_the_apps_ticker_plans_and_delivers_like_the_console_clock(
    app: ReapApp, owed: PlanFixture, slack: LocalSlack
):
    assert app.ticker is not None
    report = await app.ticker(MONDAY_9AM)
    assert [len(slack.dms_to(user)) for user in (OWNER, OTHER, COORDINATOR)] == [1, 0, 1]
    assert report.delivery is not None and report.delivery.sent == 2
    again = await app.ticker(MONDAY_9AM + timedelta(minutes=1))
    assert again.delivery is not None and again.delivery.claimed == 0
    assert [len(slack.dms_to(user)) for user in (OWNER, OTHER, COORDINATOR)] == [1, 0, 1]


async def test_a_started_ticker_ticks_records_a_heartbeat_and_reports_healthy(
    app: ReapApp, owed: PlanFixture, slack: LocalSlack, sessions: Sessions
):
    await app.start()
    scheduler = app.scheduler
    assert isinstance(scheduler, ReminderScheduler)
    for _ in range(500):
        async with sessions() as session:
            beat = await outbox.last_beat(session, instance_id=parts_of(app).instance_id)
        if beat is not None:
            break
        await asyncio.sleep(0.01)
    assert beat is not None and beat.last_tick_at == MONDAY_9AM and beat.last_error is None
    assert await app.health_checks["scheduler"]() is None
    assert len(slack.dms_to(OWNER)) == 1, "the first tick runs at start"
    await app.close()
    assert await app.health_checks["scheduler"]() == "not running"


@pytest.mark.parametrize(
    ("started_ago", "beat_ago", "error", "expected"),
    [
        pytest.param(10, None, None, None, id="starting"),
        pytest.param(600, None, None, "no tick recorded", id="never-ticked"),
        pytest.param(600, 30, None, None, id="ticking"),
        pytest.param(600, 300, None, "last tick 300 s ago", id="stuck"),
        pytest.param(
            600,
            30,
            "OperationalError: disk I/O error",
            "last tick failed: OperationalError: disk I/O error",
            id="failing",
        ),
    ],
)
async def test_the_health_check_reports_a_stuck_or_failing_ticker(
    sessions: Sessions,
    slack: LocalSlack,
    started_ago: int,
    beat_ago: int | None,
    error: str | None,
    expected: str | None,
):
    async def job() -> None:
        return None

    scheduler = ReminderScheduler(job, interval=3600)
    parts = ReminderParts(
        org=settings_for("sqlite+aiosqlite://", slack).organisation(),
        sessions=sessions,
        client=no_retries(slack),
        instance_id="me",
    )
    await scheduler.start()
    try:
        scheduler.started_at = MONDAY_9AM - timedelta(seconds=started_ago)
        scheduler.interval = 60
        if beat_ago is not None:
            async with transaction(sessions) as session:
                await outbox.beat(
                    session, instance_id="me", at=MONDAY_9AM - timedelta(seconds=beat_ago), error=error
                )
        assert await scheduler_health(parts, scheduler, MONDAY_9AM) == expected
    finally:
        await scheduler.stop()


async def test_a_tick_that_fails_still_leaves_a_heartbeat_saying_why(
    sessions: Sessions, slack: LocalSlack, tmp_path: Path
):
    broken = tmp_path / "closures.txt"
    broken.write_text("not-a-date Founders' Day\n", encoding="utf-8")
    settings = settings_for("sqlite+aiosqlite://", slack, holidays_file=broken)
    parts = ReminderParts(
        org=settings.organisation(), sessions=sessions, client=no_retries(slack), instance_id="me"
    )
    assert await scheduled_tick(parts, MONDAY_9AM) is None
    async with sessions() as session:
        beat = await outbox.last_beat(session, instance_id="me")
    assert beat is not None and "CalendarError" in (beat.last_error or "")
    assert "'not-a-date' is not a date" in (beat.last_error or "")


async def test_a_digest_changed_from_a_modal_is_rebuilt_whole_with_fresh_states(
    app: ReapApp, owed: PlanFixture, slack: LocalSlack, sessions: Sessions
):
    await tick(parts_of(app), MONDAY_9AM)
    (message,) = slack.dms_to(OWNER)
    assert refs_in(message.blocks) == ["OIT-1", "OIT-2"]
    digest = next(row for row in await outbox_rows(sessions) if row.recipient == OWNER)
    first_id = digest.payload["items"][0]["id"]
    await set_status(sessions, first_id, ItemStatus.DONE)
    async with sessions() as session:
        item = await session.get(ActionItem, first_id)
    assert item is not None
    card = bk.ItemCard(item=item, strategy="", zone=app.settings.zone, today=DUE("2026-11-02"))
    owner, other = (
        Caller(actor=app.reap.actor(TEAM, user), zone=app.settings.zone, today=card.today, now=MONDAY_9AM)
        for user in (OWNER, OTHER)
    )
    channel, ts = message.channel, message.ts
    blocks = await own_message_after_change(app.reap, caller=owner, channel=channel, ts=ts, card=card)
    assert blocks is not None and refs_in(blocks) == ["OIT-1", "OIT-2"], "the whole digest, not one card"
    done = next(b for b in blocks if b.get("block_id") == "actions:OIT-1")
    assert [e["action_id"] for e in done["elements"]] == ["item_update"]
    theirs = await own_message_after_change(app.reap, caller=other, channel=channel, ts=ts, card=card)
    assert theirs is None, "a digest sent to someone else is not the caller's to change"
    elsewhere = await own_message_after_change(
        app.reap, caller=owner, channel=channel, ts="1.000001", card=card
    )
    assert elsewhere is None, "a message the outbox did not send is not changed"


async def test_a_tick_before_the_sending_hour_plans_no_local_day(app: ReapApp, owed: PlanFixture):
    assert isinstance(app.reminders, ReminderParts)
    report = await tick(parts_of(app), MONDAY_9AM - timedelta(hours=6))
    assert report.plans and report.plans[0].local_dates == () and report.errors == []


async def test_ticks_prune_settled_rows_past_retention_at_most_once_an_hour(app: ReapApp, sessions: Sessions):
    """Old bookkeeping goes; a tick within the hour does not query for it again."""
    parts = parts_of(app)
    old = MONDAY_9AM - outbox.NOTIFICATION_RETENTION - timedelta(days=1)
    stale = {"team_id": TEAM, "kind": "digest", "recipient": OWNER, "payload": {}, "created_at": old}
    async with transaction(sessions) as session:
        await outbox.enqueue(
            session,
            rows=[NotificationCreate(key=f"old-{n}", send_after=old, **stale) for n in range(3)],
        )
        await session.exec(update(Notification).values(state="sent"))

    await tick(parts, MONDAY_9AM - timedelta(hours=6))
    async with sessions() as session:
        assert list(await session.exec(select(Notification))) == []
    assert parts.pruned_at == MONDAY_9AM - timedelta(hours=6)

    await tick(parts, MONDAY_9AM - timedelta(hours=5, minutes=30))
    assert parts.pruned_at == MONDAY_9AM - timedelta(hours=6), "not again within the hour"


# --- reap remind --at ----------------------------------------------------------------------------


async def test_remind_at_nine_sends_each_owner_one_digest_once_then_the_next_business_day(
    database_url: str, engine, sessions: Sessions, owed: PlanFixture, slack: LocalSlack
):
    settings = settings_for(database_url, slack)
    dry = io.StringIO()
    assert await remind_once(settings, at=MONDAY_9AM, dry_run=True, out=dry) == 0
    printed = dry.getvalue()
    assert "nothing is written or sent" in printed
    assert f"would send digest to <@{OWNER}> for 2026-11-02: 2 item(s)" in printed
    assert "OIT-1 Item today (due today, due 2026-11-02; not started)" in printed
    assert f"would send digest to <@{COORDINATOR}> for 2026-11-02: 1 item(s)" in printed
    assert "2 message(s) would be sent" in printed
    assert await outbox_rows(sessions) == [] and slack.calls == [], "a dry run writes and sends nothing"

    out = io.StringIO()
    assert await remind_once(settings, at=MONDAY_9AM, dry_run=False, out=out) == 0
    assert "delivery: claimed 2: sent 2" in out.getvalue()
    assert [len(slack.dms_to(user)) for user in (OWNER, COORDINATOR)] == [1, 1]

    again = io.StringIO()
    assert await remind_once(settings, at=MONDAY_9AM, dry_run=False, out=again) == 0
    assert "delivery: claimed 0" in again.getvalue() and "2 already planned, 0 new" in again.getvalue()
    assert [len(slack.dms_to(user)) for user in (OWNER, COORDINATOR)] == [1, 1]

    tuesday = io.StringIO()
    assert await remind_once(settings, at=TUESDAY_9AM, dry_run=False, out=tuesday) == 0
    owner_dms = slack.dms_to(OWNER)
    assert len(owner_dms) == 2 and refs_in(owner_dms[1].blocks) == ["OIT-2"]
    assert refs_in(slack.dms_to(OTHER)[0].blocks) == ["OIT-3"], "six business days late: overdue again"


async def test_remind_refuses_a_database_without_tables(tmp_path: Path, slack: LocalSlack):
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", slack)
    out = io.StringIO()
    assert await remind_once(settings, at=MONDAY_9AM, dry_run=True, out=out) == 1
    assert "run `reap db upgrade` first" in out.getvalue()


async def test_remind_reads_a_time_without_an_offset_in_the_org_zone(tmp_path: Path, slack: LocalSlack):
    url = f"sqlite+aiosqlite:///{tmp_path / 'reap.db'}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()
    out = io.StringIO()
    assert (
        await remind_once(
            settings_for(url, slack), at=datetime.fromisoformat("2026-11-02T09:00"), dry_run=True, out=out
        )
        == 0
    )
    assert out.getvalue().startswith("dry run at 2026-11-02 14:00:00 UTC")


async def test_on_postgresql_every_instance_books_from_one_send_budget(database_url: str, sessions: Sessions):
    """Instances sharing PostgreSQL share the workspace budget; SQLite (one instance) keeps its own."""
    shared = not is_sqlite(database_url)
    first, second = send_limiter(sessions, shared=shared), send_limiter(sessions, shared=shared)
    await first.acquire("D1")
    await second.acquire("D2")
    async with sessions() as session:
        paces = list(await session.exec(select(SendPace)))
    if is_sqlite(database_url):
        assert paces == []
    else:
        (pace,) = paces
        assert pace.budget == SEND_BUDGET and pace.tat > time.time() - 5
        assert first.shared_failures == second.shared_failures == 0
