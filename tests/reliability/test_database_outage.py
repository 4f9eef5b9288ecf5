"""Database outage: PostgreSQL goes away in the middle of a delivery tick and comes back (dropping
every connection, or going silent); /healthz says unhealthy meanwhile, the ticker recovers by
itself, and every owed digest goes out once. And while it is away, every person who asks something
is told within Slack's 3 seconds that nothing was changed, whether the server refuses connections
or never answers (and when SQLite's file is gone), and whether it went before the request or in
the middle of one (a command, a button press or a form); lost just as a change's COMMIT goes out,
they are told instead that the bot cannot confirm it."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import ReapApp, create_app
from bot.server import create_asgi
from bot.settings import Settings
from commands.handlers import DATABASE_DOWN, DATABASE_UNCONFIRMED
from localslack import payloads
from localslack.server import LocalSlack
from messages.blocks import ADD_MODAL, DONE, SNOOZE, UPDATE_MODAL
from messages.home import ADD_SHORTCUT, START_CHECKIN
from reminders.scheduler import JOB_ID, ReminderScheduler
from storage.engine import Sessions, is_sqlite
from storage.migrate import alembic_config
from storage.models import NotificationState
from tests.factories import COORDINATOR, OWNER, TEAM
from tests.harness import Bot
from tests.reliability.support import (
    MONDAY,
    MONDAY_0930,
    DatabaseProxy,
    Ledger,
    add_members,
    dms_per_person,
    outbox,
    owners,
    seed_owed,
    settled,
    wait_for,
)
from tests.reminders.support import settings_for
from tests.security import FORM, MESSAGE_METHODS, seeded_bot, snapshot, visible_calls

PEOPLE = owners(120, prefix="U0DBO")
# Past the 5-minute delivery lease, so rows claimed when the database vanished are free again.
AFTER_LEASES = timedelta(minutes=6)


@dataclass
class SteppableClock:
    """Real speed from a start instant, plus jumps the test makes (to let leases expire)."""

    start: datetime
    offset: timedelta = timedelta(0)
    origin: float = field(default_factory=time.monotonic)

    def __call__(self) -> datetime:
        return self.start + self.offset + timedelta(seconds=time.monotonic() - self.origin)


@pytest.fixture(name="pg_url")
def pg_url_fixture(database_url: str) -> str:
    """The PostgreSQL variant only: SQLite is a file, there is no server to lose."""
    if is_sqlite(database_url):
        pytest.skip("a database outage needs a database server (PostgreSQL variant)")
    return database_url


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[LocalSlack]:
    """localslack with every owner as a member."""
    with LocalSlack(team_id=TEAM) as fake:
        add_members(fake, PEOPLE)
        yield fake


@pytest.fixture(name="proxy")
async def proxy_fixture(pg_url: str) -> AsyncIterator[DatabaseProxy]:
    """A cuttable proxy in front of the test PostgreSQL server."""
    target = make_url(pg_url)
    proxy = await DatabaseProxy(target.host or "127.0.0.1", target.port or 5432).start()
    try:
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture(name="bot")
async def bot_fixture(
    pg_url: str, engine: AsyncEngine, slack: LocalSlack, proxy: DatabaseProxy
) -> AsyncIterator[tuple[ReapApp, SteppableClock]]:
    """The real app reaching PostgreSQL only through the proxy, ticking every second."""
    clock = SteppableClock(MONDAY_0930)
    # The tables come from the models; record them as migrated so /healthz judges the outage alone.
    await asyncio.to_thread(command.stamp, alembic_config(pg_url), "head")
    app = create_app(settings_for(proxy.url_for(pg_url), slack), clock=clock)
    scheduler = app.scheduler
    assert isinstance(scheduler, ReminderScheduler)
    try:
        await app.start()
        # A one-second ticker (instead of a minute) keeps the test short; the health check's
        # staleness allowance scales with it.
        scheduler.interval = 1.0
        scheduler.scheduler.reschedule_job(JOB_ID, trigger=IntervalTrigger(seconds=1, timezone=UTC))
        yield app, clock
    finally:
        await app.close()


async def health(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    """/healthz: status and report."""
    response = await http.get("/healthz")
    return response.status_code, response.json()


@pytest.mark.parametrize("outage", ["dropped", "black hole"])
async def test_database_lost_mid_tick_reports_unhealthy_then_recovers_and_delivers_everything(
    sessions: Sessions,
    slack: LocalSlack,
    proxy: DatabaseProxy,
    bot: tuple[ReapApp, SteppableClock],
    outage: str,
):
    await seed_owed(sessions, PEOPLE, [MONDAY])
    app, clock = bot
    transport = httpx.ASGITransport(app=create_asgi(app, manage_lifecycle=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://reap", timeout=10) as http:

        async def delivering() -> bool:
            return len(slack.messages()) >= 20

        await wait_for("the tick to start delivering", delivering, within=30, every=0.01)
        # Dropped: every connection cut and new ones refused. Black hole: the server goes silent,
        # taking bytes and never answering, on open connections and new ones alike.
        proxy.cut() if outage == "dropped" else proxy.black_hole()
        cut_at = len(slack.messages())
        await asyncio.sleep(0.5)
        assert len(slack.messages()) < len(PEOPLE), "the outage began mid-delivery"

        reports = []
        for _ in range(4):
            reports.append(await health(http))
            await asyncio.sleep(0.5)
        assert all(status == 503 for status, _ in reports), reports
        said = "unreachable" if outage == "dropped" else "no answer"
        assert all(report["database"].startswith(said) for _, report in reports), reports
        if outage == "dropped":
            assert proxy.refused > 0, "the bot kept trying to reach the database"
        during = len(slack.messages())

        proxy.cut()  # a silent server's connections end too (as TCP keepalive would end them)
        proxy.restore()
        clock.offset += AFTER_LEASES

        seen: list[dict[str, Any]] = []

        async def healthy_and_done() -> bool:
            status, report = await health(http)
            seen.append(report)
            return status == 200 and await settled(sessions, len(PEOPLE))

        # The report that said healthy is the one judged: asked again at once, a one-second ticker
        # still delivering what the outage held back can read as late on a loaded machine.
        await wait_for("recovery with every row settled", healthy_and_done, within=60, every=0.25)
        report = seen[-1]

    assert report == {"database": "ok", "schema": "ok", "slack": "ok", "scheduler": "ok", "ok": True}
    rows = await outbox(sessions)
    Ledger.of(rows, slack).check()
    assert len(rows) == len(PEOPLE) and {row.state for row in rows} == {NotificationState.SENT}
    assert dms_per_person(slack, PEOPLE) == {1: len(PEOPLE)}
    assert cut_at <= during < len(slack.messages()), "delivery resumed after the outage"


# --- requests during an outage -------------------------------------------------------------------

SLACK_DEADLINE = 3.0
# Production's database time per request (tests elsewhere give more; see tests.harness.bot_settings).
OUTAGE_DEADLINE = {"request_database_seconds": Settings.model_fields["request_database_seconds"].default}
COMMANDS = ("list mine", 'add "Map the Wi-Fi gaps" strategy workplace-equity', "done OIT-1", "help")


async def told_by_dm_from_home(bot: Bot) -> None:
    """A press on the App Home and the global shortcut have no channel: each is told by DM."""
    for payload in (home_press(bot, START_CHECKIN), global_shortcut(bot)):
        answered = await bot.interact(payload)
        assert answered.status_code == 200 and answered.elapsed.total_seconds() < SLACK_DEADLINE
    assert [m.text for m in bot.slack.dms_to(OWNER)] == [DATABASE_DOWN, DATABASE_DOWN]


def home_press(bot: Bot, action_id: str, user: str = OWNER) -> dict[str, Any]:
    """A button pressed on the App Home, as Slack sends it: a view container, no response_url and
    no channel."""
    payload = bot.block_action(user, action_id)
    del payload["response_url"], payload["channel"]
    return payload | {
        "container": {"type": "view", "view_id": "V0HOME"},
        "view": {"id": "V0HOME", "type": "home"},
    }


def global_shortcut(bot: Bot) -> dict[str, Any]:
    """The global shortcut "Add REAP action item", as Slack sends it."""
    return {
        "type": "shortcut",
        "callback_id": ADD_SHORTCUT,
        "team": {"id": bot.team_id},
        "user": {"id": OWNER, "team_id": bot.team_id},
        "trigger_id": bot.slack.new_trigger_id(),
    }


async def told_within_slack_deadline(bot: Bot) -> None:
    """Every slash command, a button, a message shortcut and a form, each answered that nothing was
    changed, in time (the HTTP answer's time: the bot's own clean-up may go on after it)."""
    for text in COMMANDS:
        response = await bot.command(OWNER, text)
        elapsed = response.elapsed.total_seconds()
        assert response.status_code == 200 and response.json() == {
            "response_type": "ephemeral",
            "text": DATABASE_DOWN,
        }
        assert elapsed < SLACK_DEADLINE, f"/reap {text} took {elapsed:.2f} s"

    pressed = await bot.interact(bot.block_action(OWNER, DONE, value="OIT-1"))
    assert pressed.status_code == 200 and pressed.elapsed.total_seconds() < SLACK_DEADLINE
    assert [r["text"] for r in bot.slack.responses()] == [DATABASE_DOWN], "the press was told it did not take"

    shortcut = await bot.interact(bot.message_shortcut(OWNER, "Can we map Wi-Fi gaps by tract?"))
    assert shortcut.status_code == 200 and shortcut.elapsed.total_seconds() < SLACK_DEADLINE
    assert [r["text"] for r in bot.slack.responses()][1:] == [DATABASE_DOWN], "the shortcut was told"
    assert bot.slack.views() == {}, "no Add form opened"

    values = {"title": {"value": {"type": "plain_text_input", "value": "Map the Wi-Fi gaps"}}}
    add_view = {"type": "modal", "callback_id": ADD_MODAL, "private_metadata": "{}"}
    saved = await bot.interact(bot.view_submission(OWNER, add_view, values))
    assert saved.elapsed.total_seconds() < SLACK_DEADLINE
    assert saved.json() == {"response_action": "errors", "errors": {"title": DATABASE_DOWN}}
    assert visible_calls(bot, since=0, methods=MESSAGE_METHODS) == []


@pytest.mark.parametrize("outage", ["refused", "black hole"])
async def test_with_postgresql_gone_every_request_is_told_nothing_changed_within_three_seconds(
    pg_url: str, proxy: DatabaseProxy, outage: str
):
    async with seeded_bot(proxy.url_for(pg_url), **OUTAGE_DEADLINE) as bot:
        before = await snapshot(bot)
        if outage == "refused":
            proxy.cut()
        else:
            proxy.black_hole()

        await told_within_slack_deadline(bot)
        await told_by_dm_from_home(bot)

        proxy.restore()
        assert await snapshot(bot) == before, "nothing was changed"
        shown = await bot.command(OWNER, "show OIT-1")
        assert "OIT-1" in shown.json()["text"], "the bot serves again once the database is back"


async def test_with_the_sqlite_file_gone_every_request_is_told_nothing_changed(tmp_path: Path):
    path = tmp_path / "reap.db"
    async with seeded_bot(f"sqlite+aiosqlite:///{path}", **OUTAGE_DEADLINE) as bot:
        engine = bot.sessions.kw["bind"]
        await engine.dispose()
        # Where the file was, something SQLite cannot open (chmod would not stop root).
        path.rename(tmp_path / "moved.db")
        path.mkdir()

        await told_within_slack_deadline(bot)
        await told_by_dm_from_home(bot)


@contextmanager
def write_lock_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction on the SQLite file (a backup or a migration, say),
    until the block ends or the yielded connection is closed."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield holder
    finally:
        holder.close()


@pytest.mark.parametrize(
    ("seconds", "told"), [(0.5, "that nothing changed"), (20, "the item it added, once the lock is freed")]
)
async def test_a_request_waits_for_a_locked_database_as_long_as_its_settings_allow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, seconds: float, told: str
):
    """REAP_REQUEST_DATABASE_SECONDS bounds how long a command waits for SQLite's write lock."""
    path = tmp_path / "reap.db"
    async with seeded_bot(f"sqlite+aiosqlite:///{path}", request_database_seconds=seconds) as bot:
        before = await snapshot(bot)
        with write_lock_held(path) as holder, caplog.at_level(logging.WARNING, logger="commands.handlers"):
            asyncio.get_running_loop().call_later(1.0, holder.close)
            response = await bot.command(OWNER, 'add "Map the Wi-Fi gaps" strategy workplace-equity')
        await bot.app.tasks.drain()

        text = response.json()["text"]
        if seconds < 1:
            assert text == DATABASE_DOWN
            assert await snapshot(bot) == before, "nothing was changed"
            # The operator reads that it was slow, not that it refused.
            assert "the database did not answer within 0.5 s of the request; told U0OWNER" in caplog.text
        else:
            assert text == "Added OIT-3.", text
            assert await snapshot(bot) != before


# --- the database lost in the middle of a request ---------------------------------------------------
# The outage above begins before the request; these begin while it runs: the bot has recorded the
# delivery and is about to write the item when every connection drops (and new ones are refused),
# or when the server goes silent. The person is still told, in time, that nothing was changed, and
# nothing was: the write never committed. If it strikes as the COMMIT goes out, the bot cannot know
# whether the change took, and says so instead.

WRITE = re.compile(r"\s*UPDATE action_item\b", re.IGNORECASE)


@contextmanager
def fault_on_write(bot: Bot, fault: Callable[[], None], *, at_commit: bool = False) -> Iterator[list[str]]:
    """Call `fault` once, just before the bot sends its first UPDATE of an item (or, `at_commit`,
    just before the COMMIT of the transaction that sent it); yields what fired."""
    engine = bot.sessions.kw["bind"].sync_engine
    written: list[Any] = []
    fired: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not written and WRITE.match(statement):
            written.append(conn)
            if not at_commit:
                fired.append(statement)
                fault()

    def committing(conn: Any) -> None:
        if at_commit and not fired and conn in written:
            fired.append("COMMIT")
            fault()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", committing)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", committing)


def interaction(payload: dict[str, Any]) -> bytes:
    """An interactivity body as Slack sends it."""
    return ("payload=" + urllib.parse.quote(json.dumps(payload))).encode()


def update_form(bot: Bot) -> dict[str, Any]:
    """OWNER saving the Update modal of OIT-1: on track, 60%, the due date left as it was."""
    view = {"type": "modal", "callback_id": UPDATE_MODAL, "private_metadata": json.dumps({"ref": "OIT-1"})}
    values = {
        "status": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress": {"value": {"type": "number_input", "value": "60"}},
        "due": {"value": {"type": "datepicker", "selected_date": "2026-12-15"}},
    }
    return bot.view_submission(OWNER, view, values)


async def told_in_time(bot: Bot, request: str, said: str = DATABASE_DOWN) -> None:
    """Send `request` as OWNER: the person hears `said` (by default, that nothing was changed)
    within Slack's deadline."""
    async with asyncio.timeout(SLACK_DEADLINE):
        if request == "command":
            command = payloads.slash_command(
                team_id=bot.team_id,
                user_id=OWNER,
                text="progress OIT-1 40%",
                channel_id="C0GENERAL",
                response_url=bot.slack.response_url(),
                trigger_id=bot.slack.new_trigger_id(),
            )
            response = await bot.post(payloads.form_body(command), content_type=FORM)
            assert response.json() == {"response_type": "ephemeral", "text": said}
        elif request == "form":
            response = await bot.post(interaction(update_form(bot)), content_type=FORM)
            assert response.json() == {"response_action": "errors", "errors": {"status": said}}
        else:  # the Snooze menu's "1 week": acknowledged at once, the change follows the ack
            pressed = bot.block_action(OWNER, SNOOZE, selected="OIT-1|1w")
            response = await bot.post(interaction(pressed), content_type=FORM)

            async def told() -> bool:
                return said in [r.get("text") for r in bot.slack.responses()]

            await wait_for("the press to be told", told, within=SLACK_DEADLINE * 2, every=0.05)
    assert response.status_code == 200


@pytest.mark.parametrize("request_kind", ["command", "button", "form"])
@pytest.mark.parametrize("outage", ["dropped", "black hole"])
async def test_a_database_lost_mid_request_is_told_and_nothing_is_half_written(
    pg_url: str, proxy: DatabaseProxy, outage: str, request_kind: str
):
    async with seeded_bot(proxy.url_for(pg_url), **OUTAGE_DEADLINE) as bot:
        before = await snapshot(bot)
        fault = proxy.cut if outage == "dropped" else proxy.black_hole
        try:
            with fault_on_write(bot, fault) as fired:
                await told_in_time(bot, request_kind)
        finally:
            proxy.cut()  # a silent server's connections end too (as TCP keepalive would end them)
            proxy.restore()
            await bot.app.tasks.drain()

        assert fired, "the fault struck while the item was being written"
        assert await snapshot(bot) == before, "nothing was changed"
        assert visible_calls(bot, since=0, methods=MESSAGE_METHODS) == []
        shown = await bot.command(OWNER, "show OIT-1")
        assert "OIT-1" in shown.json()["text"], "the bot serves again once the database is back"


@pytest.mark.parametrize("request_kind", ["command", "button", "form"])
@pytest.mark.parametrize("outage", ["dropped", "black hole"])
async def test_a_database_lost_as_the_commit_goes_out_is_not_called_nothing_changed(
    pg_url: str, proxy: DatabaseProxy, outage: str, request_kind: str, caplog: pytest.LogCaptureFixture
):
    async with seeded_bot(proxy.url_for(pg_url), **OUTAGE_DEADLINE) as bot:
        fault = proxy.cut if outage == "dropped" else proxy.black_hole
        try:
            with (
                caplog.at_level(logging.WARNING, logger="commands.handlers"),
                fault_on_write(bot, fault, at_commit=True) as fired,
            ):
                await told_in_time(bot, request_kind, said=DATABASE_UNCONFIRMED)
        finally:
            proxy.cut()
            proxy.restore()
            await bot.app.tasks.drain()

        assert fired == ["COMMIT"], "the fault struck as the change's COMMIT went out"
        assert "during a commit" in caplog.text, "the unconfirmed change is logged"
        assert visible_calls(bot, since=0, methods=MESSAGE_METHODS) == []
        shown = await bot.command(OWNER, "show OIT-1")
        assert "OIT-1" in shown.json()["text"], "the bot serves again once the database is back"


@pytest.mark.parametrize("outage", ["dropped", "black hole"])
async def test_a_home_press_the_database_fails_midway_is_told_by_dm_and_nothing_is_half_written(
    pg_url: str, proxy: DatabaseProxy, outage: str
):
    async with seeded_bot(proxy.url_for(pg_url), **OUTAGE_DEADLINE) as bot:
        before = await snapshot(bot)
        engine = bot.sessions.kw["bind"].sync_engine
        fault = proxy.cut if outage == "dropped" else proxy.black_hole
        fired: list[str] = []

        def opening_the_cycle(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not fired and re.match(r"\s*INSERT INTO checkin_cycle\b", statement, re.IGNORECASE):
                fired.append(statement)
                fault()

        event.listen(engine, "before_cursor_execute", opening_the_cycle)
        try:
            async with asyncio.timeout(SLACK_DEADLINE * 2):
                pressed = await bot.interact(home_press(bot, START_CHECKIN, user=COORDINATOR))
        finally:
            event.remove(engine, "before_cursor_execute", opening_the_cycle)
            proxy.cut()
            proxy.restore()
            await bot.app.tasks.drain()

        assert fired, "the fault struck as the check-in was being opened"
        assert pressed.status_code == 200
        assert [m.text for m in bot.slack.dms_to(COORDINATOR)] == [DATABASE_DOWN]
        assert await snapshot(bot) == before, "nothing was changed"
