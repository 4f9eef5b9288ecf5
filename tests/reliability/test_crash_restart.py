"""Crash and restart: `reap serve` killed with SIGKILL in the middle of delivering 300 digests,
then started again; every digest reaches Slack exactly once, or is marked ambiguous and counted."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from localslack.server import Fault, LocalSlack
from storage.engine import Sessions
from storage.models import NotificationState
from tests.factories import TEAM
from tests.reliability.support import (
    MONDAY,
    MONDAY_0930,
    Ledger,
    dms_per_person,
    outbox,
    owners,
    processes,
    reap_env,
    seed_owed,
    settled,
    start_serve,
    stop,
    wait_for,
)

PEOPLE = owners(300)
# The restart comes after the 5-minute delivery lease, so the dead process's claims are free.
RESTART_AFTER = timedelta(minutes=10)


async def test_serve_killed_mid_delivery_and_restarted_sends_each_digest_exactly_once(
    database_url: str, sessions: Sessions, tmp_path: Path
):
    await seed_owed(sessions, PEOPLE, [MONDAY])
    with LocalSlack(team_id=TEAM) as slack, processes() as started:
        for user_id in PEOPLE:
            slack.add_user(user_id, user_id.lower(), tz="America/New_York")
        # Every post is answered late, so at the kill some posts are in flight: their send
        # intent is recorded, and Slack completes them after the process is gone.
        slack.fail_next("chat.postMessage", Fault(delay=0.05), times=len(PEOPLE))
        env = reap_env(database_url, slack)

        first = start_serve(env, MONDAY_0930, tmp_path / "first.log")
        started.append(first)

        async def some_posted() -> bool:
            return len(slack.messages()) >= 60

        await wait_for("the first DMs", some_posted, within=60, every=0.02)
        first.kill()
        await asyncio.sleep(0.3)  # posts already inside localslack finish after the kill
        posted_before_restart = len(slack.messages())
        stranded = [row for row in await outbox(sessions) if row.state == NotificationState.SENDING]
        assert 0 < posted_before_restart < len(PEOPLE), first.output()
        assert stranded, "the kill should leave claimed rows behind"
        in_flight = [row for row in stranded if row.channel is not None and row.ts is None]

        second = start_serve(env, MONDAY_0930 + RESTART_AFTER, tmp_path / "second.log")
        started.append(second)

        async def all_settled() -> bool:
            return await settled(sessions, len(PEOPLE))

        await wait_for("every digest settled after the restart", all_settled, within=120)
        stop(second)
        assert "Traceback" not in second.output(), second.output()

        rows = await outbox(sessions)
        ledger = Ledger.of(rows, slack)
        ledger.check()
        assert len(rows) == len(PEOPLE) and {row.recipient for row in rows} == set(PEOPLE)
        sent = {row.recipient for row in rows if row.state == NotificationState.SENT}
        unsure = {row.recipient for row in ledger.ambiguous()}
        assert sent | unsure == set(PEOPLE), ledger.states()
        per_person = dms_per_person(slack, PEOPLE)
        assert set(per_person) <= {0, 1}, per_person
        assert {p for p in PEOPLE if len(slack.dms_to(p)) == 1} >= sent
        assert len(slack.messages()) > posted_before_restart, "the restarted process finished the job"
        # Rows whose post was in flight at the kill were settled from Slack's history, not resent.
        assert in_flight and len(slack.calls_to("conversations.history")) >= 1
        assert all(ledger.posted[row.key] == 1 for row in in_flight)
