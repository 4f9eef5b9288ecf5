"""Exactly once under concurrency: four tickers, four engines, one database, one digest per owner."""

from __future__ import annotations

import asyncio

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from localslack.server import LocalSlack
from reminders.delivery import DeliveryConfig
from reminders.ratelimit import SendLimiter
from reminders.tick import ReminderParts, tick
from storage.engine import create_engine, session_factory, transaction
from tests.factories import TEAM, make_person, make_plan
from tests.reminders.support import DUE, MONDAY_9AM, TOKEN, add_items, outbox_rows, settings_for

OWNERS = [f"U0RACE{i:02d}" for i in range(50)]


async def test_four_tickers_over_500_items_send_exactly_one_digest_per_owner(
    database_url: str, engine: AsyncEngine
):
    main = session_factory(engine)
    async with transaction(main) as session:
        plan = await make_plan(session)
        for owner in OWNERS:
            await make_person(session, user_id=owner, department_id=plan.department.id)
    specs = {f"i{n:03d}": {"due": DUE("2026-11-02"), "owner": OWNERS[n % len(OWNERS)]} for n in range(500)}
    await add_items(main, plan, **specs)

    with LocalSlack(team_id=TEAM) as slack:
        for owner in OWNERS:
            slack.add_user(owner, owner.lower())
        engines = [create_engine(database_url) for _ in range(4)]
        try:
            tickers = [
                ReminderParts(
                    org=settings_for(database_url, slack).organisation(),
                    sessions=session_factory(e),
                    client=_client(slack),
                    instance_id=f"ticker-{n}",
                    limiter=SendLimiter(workspace_rate=1000, channel_rate=1000),
                    # Small batches so the claimers interleave instead of one taking everything.
                    delivery=DeliveryConfig(batch=4, concurrency=2),
                )
                for n, e in enumerate(engines)
            ]
            reports = await asyncio.gather(*(tick(parts, MONDAY_9AM) for parts in tickers))
        finally:
            for e in engines:
                await e.dispose()

        assert all(not report.errors for report in reports), [r.errors for r in reports]
        for owner in OWNERS:
            (digest,) = slack.dms_to(owner)
            assert sum(1 for b in digest.blocks if str(b.get("block_id", "")).startswith("item:")) == 10
        assert len(slack.calls_to("chat.postMessage")) == len(OWNERS)

    rows = await outbox_rows(main)
    assert len(rows) == len(OWNERS) and {row.state for row in rows} == {"sent"}
    conflicts = sum(report.conflicts for report in reports)
    senders = [report.delivery.sent for report in reports if report.delivery is not None]
    assert sum(senders) == len(OWNERS)
    # The race was real: planners lost inserts to each other, or the claims were split.
    assert conflicts > 0 or sum(1 for sent in senders if sent) > 1, (conflicts, senders)


def _client(slack: LocalSlack) -> AsyncWebClient:
    """A client per ticker, as separate processes would have."""
    return AsyncWebClient(token=TOKEN, base_url=slack.base_url, timeout=5, retry_handlers=[])
