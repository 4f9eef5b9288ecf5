"""The outbox: one row per key however often it is planned, one worker per claimed row, fenced marks."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select, update

from storage import outbox
from storage.engine import Sessions, create_engine, session_factory, transaction
from storage.models import Notification, NotificationBase, NotificationState, ProcessedEvent

NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def owed(key: str, *, send_after: datetime = NOW, recipient: str = "U0OWNER") -> Notification:
    """A pending digest row for `recipient`, due at `send_after`."""
    return Notification(
        team_id="T0REAP",
        key=key,
        kind="digest",
        recipient=recipient,
        local_date=date(2026, 11, 2),
        payload={"items": [{"id": 1, "ref": "OIT-1", "why": "due_today"}]},
        send_after=send_after,
        created_at=NOW,
    )


async def rows(sessions: Sessions) -> dict[str, Notification]:
    """Every outbox row by key."""
    async with sessions() as session:
        return {row.key: row for row in await session.exec(select(Notification))}


async def enqueue(sessions: Sessions, *notes: Notification) -> int:
    """Insert rows in one transaction; how many were new."""
    async with transaction(sessions) as session:
        return await outbox.enqueue(session, rows=notes)


async def claim(
    sessions: Sessions, owner: str, *, now: datetime = NOW, limit: int = 10
) -> list[Notification]:
    """Claim due rows for `owner` in one transaction."""
    async with transaction(sessions) as session:
        return await outbox.claim(session, owner=owner, now=now, lease=LEASE, limit=limit)


async def test_enqueue_inserts_new_keys_and_skips_stored_ones(sessions: Sessions):
    assert await enqueue(sessions, owed("a"), owed("b")) == 2
    assert await enqueue(sessions, owed("b"), owed("c"), owed("c")) == 1
    stored = await rows(sessions)
    assert sorted(stored) == ["a", "b", "c"]
    assert stored["a"].payload == {"items": [{"id": 1, "ref": "OIT-1", "why": "due_today"}]}
    assert stored["a"].send_after == NOW and stored["a"].state == NotificationState.PENDING


async def test_an_enqueued_row_reads_back_with_every_owed_field_as_given(sessions: Sessions):
    """Each backend's insert path carries every NotificationBase field, instants as aware UTC."""
    given = owed("full", send_after=NOW + timedelta(hours=3), recipient="U0ELSE").model_copy(
        update={"kind": "escalation", "payload": {"zone": "Asia/Kolkata", "items": [], "n": 1.5}}
    )
    await enqueue(sessions, given)
    stored = (await rows(sessions))["full"]
    for name in NotificationBase.model_fields:
        assert getattr(stored, name) == getattr(given, name), name
    assert stored.send_after.tzinfo is not None and stored.state == NotificationState.PENDING


async def test_a_naive_instant_is_refused_and_nothing_is_stored(sessions: Sessions):
    naive = owed("naive").model_copy(update={"send_after": NOW.replace(tzinfo=None)})
    with pytest.raises(StatementError, match="naive"):
        await enqueue(sessions, owed("fine"), naive)
    assert await rows(sessions) == {}


async def test_enqueue_of_many_rows_in_chunks_counts_each_new_row(sessions: Sessions):
    assert await enqueue(sessions, *(owed(f"k{i:04d}") for i in range(450))) == 450
    assert await enqueue(sessions, *(owed(f"k{i:04d}") for i in range(440, 460))) == 10


async def test_existing_keys_finds_exactly_the_stored_ones_among_many(sessions: Sessions):
    """More keys than one SQLite IN list holds, half of them stored, plus duplicates asked twice."""
    await enqueue(sessions, *(owed(f"k{i:04d}") for i in range(0, 1200, 2)))
    asked = [f"k{i:04d}" for i in range(1200)] + ["k0000", "k0001", "missing"]
    async with sessions() as session:
        found = await outbox.existing_keys(session, keys=asked)
    assert found == {f"k{i:04d}" for i in range(0, 1200, 2)}
    async with sessions() as session:
        assert await outbox.existing_keys(session, keys=[]) == set()


async def test_a_companion_is_carried_by_a_pending_row_and_stored_settled(sessions: Sessions):
    """The carrier's payload gains the companion's; the companion is owed once and never sent alone."""
    await enqueue(sessions, owed("digest"))
    companion = owed("prompt").model_copy(update={"kind": "checkin_prompt", "payload": {"quarter": "Q2"}})
    async with transaction(sessions) as session:
        assert await outbox.carry(session, carrier="digest", companion=companion, field="checkin")
    stored = await rows(sessions)
    assert stored["digest"].payload["checkin"] == {"quarter": "Q2"}
    assert stored["digest"].payload["items"] == [{"id": 1, "ref": "OIT-1", "why": "due_today"}]
    assert stored["prompt"].state == NotificationState.SKIPPED
    assert stored["prompt"].last_error == "carried by digest"
    assert [row.key for row in await claim(sessions, "worker-1")] == ["digest"]


async def test_a_companion_whose_carrier_reached_nobody_is_released_to_be_owed_again(sessions: Sessions):
    """Carried by a digest later skipped: forgotten (owed again). Carried by one sent: kept."""
    await enqueue(sessions, owed("digest-a"), owed("digest-b"))
    async with transaction(sessions) as session:
        for carrier, key in (("digest-a", "prompt-a"), ("digest-b", "prompt-b")):
            companion = owed(key).model_copy(update={"kind": "checkin_prompt", "payload": {"quarter": "Q2"}})
            assert await outbox.carry(session, carrier=carrier, companion=companion, field="checkin")
        await session.exec(update(Notification).where(Notification.key == "digest-a").values(state="skipped"))
        await session.exec(update(Notification).where(Notification.key == "digest-b").values(state="sent"))
    async with transaction(sessions) as session:
        released = await outbox.release_uncarried(session, team_id="T0REAP", kinds=["checkin_prompt"])
    assert released == ["prompt-a"]
    assert sorted(await rows(sessions)) == ["digest-a", "digest-b", "prompt-b"]


async def test_a_claimed_or_missing_carrier_carries_nothing(sessions: Sessions):
    await enqueue(sessions, owed("digest"))
    await claim(sessions, "worker-1")
    companion = owed("prompt").model_copy(update={"kind": "checkin_prompt"})
    async with transaction(sessions) as session:
        assert not await outbox.carry(session, carrier="digest", companion=companion, field="checkin")
        assert not await outbox.carry(session, carrier="nothing", companion=companion, field="checkin")
    stored = await rows(sessions)
    assert sorted(stored) == ["digest"] and "checkin" not in stored["digest"].payload


async def test_concurrent_enqueues_from_separate_engines_store_each_key_once(database_url: str, engine):
    """Four engines insert overlapping keys at once; every key lands once and the counts add up."""
    engines = [create_engine(database_url) for _ in range(4)]
    try:
        factories = [session_factory(e) for e in engines]
        batches = [[owed(f"k{(i * 7 + j) % 60:02d}") for j in range(40)] for i in range(4)]
        counts = await asyncio.gather(*(enqueue(f, *b) for f, b in zip(factories, batches, strict=True)))
        stored = await rows(factories[0])
    finally:
        for e in engines:
            await e.dispose()
    assert sum(counts) == len(stored) == len({n.key for b in batches for n in b})


async def book(sessions: Sessions, now: float, *, interval: float = 0.1, burst: float = 1) -> float:
    """Book one slot of the shared test budget in its own transaction."""
    async with transaction(sessions) as session:
        return await outbox.book_send(session, budget="test", now=now, interval=interval, burst=burst)


async def test_concurrent_bookings_from_separate_engines_never_share_a_send_slot(database_url: str, engine):
    """Four instances book 40 slots at the same instant: each gets its own, one interval apart."""
    engines = [create_engine(database_url) for _ in range(4)]
    try:
        factories = [session_factory(e) for e in engines]
        slots = await asyncio.gather(*(book(factories[n % 4], 1_000.0) for n in range(40)))
    finally:
        for e in engines:
            await e.dispose()
    assert sorted(round(slot - 1_000.0, 6) for slot in slots) == [round(n * 0.1, 6) for n in range(40)]


async def test_a_send_budget_allows_its_burst_then_paces_and_forgets_idle_time(sessions: Sessions):
    at_once = [await book(sessions, 1_000.0, burst=3) for _ in range(4)]
    assert at_once == [1_000.0, 1_000.0, 1_000.0, pytest.approx(1_000.1)]
    assert await book(sessions, 2_000.0, burst=3) == 2_000.0, "an idle budget does not bank slots"


async def test_claim_takes_due_pending_rows_oldest_first_and_counts_the_attempt(sessions: Sessions):
    await enqueue(
        sessions,
        owed("late", send_after=NOW - timedelta(minutes=1)),
        owed("early", send_after=NOW - timedelta(minutes=5)),
        owed("future", send_after=NOW + timedelta(minutes=1)),
    )
    claimed = await claim(sessions, "w1")
    assert [r.key for r in claimed] == ["early", "late"]
    assert all(r.state == "sending" and r.lease_owner == "w1" and r.attempts == 1 for r in claimed)
    assert all(r.lease_until == NOW + LEASE for r in claimed)
    assert await claim(sessions, "w2") == [], "a leased row is nobody else's"


async def test_claim_respects_the_limit(sessions: Sessions):
    await enqueue(sessions, *(owed(f"k{i}") for i in range(5)))
    assert len(await claim(sessions, "w1", limit=3)) == 3
    assert len(await claim(sessions, "w2", limit=3)) == 2


async def test_an_expired_lease_is_reclaimed_and_the_old_owner_is_fenced_out(sessions: Sessions):
    await enqueue(sessions, owed("a"))
    (first,) = await claim(sessions, "w1")
    assert await claim(sessions, "w2", now=NOW + LEASE) == [], "the lease runs until lease_until"
    (second,) = await claim(sessions, "w2", now=NOW + LEASE + timedelta(seconds=1))
    assert second.id == first.id and second.attempts == 2 and second.lease_owner == "w2"
    async with transaction(sessions) as session:
        assert not await outbox.mark_sent(
            session, id=first.id or 0, owner="w1", channel="D1", ts="1.0", now=NOW
        ), "the worker whose lease expired cannot mark the row"
        assert await outbox.mark_sent(session, id=second.id or 0, owner="w2", channel="D1", ts="2.0", now=NOW)
    stored = (await rows(sessions))["a"]
    assert (stored.state, stored.ts, stored.sent_at) == ("sent", "2.0", NOW)
    assert await claim(sessions, "w3", now=NOW + timedelta(days=1)) == [], "sent rows are never claimed"


async def test_concurrent_claims_from_separate_engines_never_share_a_row(
    database_url: str, engine: AsyncEngine
):
    """Four workers claim small batches at once until the outbox is empty; each row goes to one."""
    await enqueue(session_factory(engine), *(owed(f"k{i:03d}") for i in range(120)))
    engines = [create_engine(database_url) for _ in range(4)]

    async def worker(name: str, factory: Sessions) -> list[int]:
        taken: list[int] = []
        while batch := await claim(factory, name, limit=7):
            taken.extend(r.id or 0 for r in batch)
            await asyncio.sleep(0)
        return taken

    try:
        results = await asyncio.gather(*(worker(f"w{i}", session_factory(e)) for i, e in enumerate(engines)))
    finally:
        for e in engines:
            await e.dispose()
    every = [row_id for taken in results for row_id in taken]
    assert len(every) == len(set(every)) == 120


@pytest.mark.parametrize(
    ("mark", "state", "error"),
    [
        (
            lambda s, i: outbox.mark_failed(s, id=i, owner="w1", error="user_not_found"),
            "failed",
            "user_not_found",
        ),
        (
            lambda s, i: outbox.mark_skipped(s, id=i, owner="w1", reason="nothing left"),
            "skipped",
            "nothing left",
        ),
        (lambda s, i: outbox.mark_ambiguous(s, id=i, owner="w1", error="dropped"), "ambiguous", "dropped"),
    ],
    ids=["failed", "skipped", "ambiguous"],
)
async def test_final_marks_settle_the_row_with_its_reason_only_for_the_lease_holder(
    sessions: Sessions, mark, state: str, error: str
):
    await enqueue(sessions, owed("a"))
    (row,) = await claim(sessions, "w1")
    async with transaction(sessions) as session:
        assert await mark(session, row.id)
        assert not await mark(session, row.id), "a settled row is no longer leased"
    stored = (await rows(sessions))["a"]
    assert (stored.state, stored.last_error, stored.lease_until) == (state, error, None)
    assert await claim(sessions, "w2", now=NOW + timedelta(days=1)) == []


async def test_retry_returns_the_row_to_pending_until_send_after(sessions: Sessions):
    await enqueue(sessions, owed("a"))
    (row,) = await claim(sessions, "w1")
    async with transaction(sessions) as session:
        assert await outbox.renew(session, id=row.id or 0, owner="w1", now=NOW, lease=LEASE, channel="D1")
        assert await outbox.mark_retry(
            session, id=row.id or 0, owner="w1", send_after=NOW + timedelta(seconds=30), error="HTTP 500"
        )
    stored = (await rows(sessions))["a"]
    assert (stored.state, stored.last_error, stored.channel, stored.attempts) == (
        "pending",
        "HTTP 500",
        None,
        1,
    )
    assert await claim(sessions, "w2", now=NOW + timedelta(seconds=29)) == []
    (again,) = await claim(sessions, "w2", now=NOW + timedelta(seconds=30))
    assert again.attempts == 2


async def test_retry_can_keep_the_send_intent_or_refund_the_attempt(sessions: Sessions):
    await enqueue(sessions, owed("a"), owed("b"))
    first, second = await claim(sessions, "w1")
    async with transaction(sessions) as session:
        for row in (first, second):
            await outbox.renew(session, id=row.id or 0, owner="w1", now=NOW, lease=LEASE, channel="D1")
        await outbox.mark_retry(
            session, id=first.id or 0, owner="w1", send_after=NOW, error="dropped", keep_intent=True
        )
        await outbox.mark_retry(
            session, id=second.id or 0, owner="w1", send_after=NOW, error=None, refund=True
        )
    stored = await rows(sessions)
    assert (stored["a"].channel, stored["a"].attempts) == ("D1", 1)
    assert (stored["b"].channel, stored["b"].attempts) == (None, 0)


async def test_find_by_message_returns_the_rows_a_slack_message_came_from(sessions: Sessions):
    await enqueue(sessions, owed("a"), owed("b"))
    first, second = await claim(sessions, "w1")
    async with transaction(sessions) as session:
        await outbox.mark_sent(session, id=first.id or 0, owner="w1", channel="D1", ts="1.5", now=NOW)
        await outbox.mark_sent(session, id=second.id or 0, owner="w1", channel="D1", ts="2.5", now=NOW)
    window = (NOW - timedelta(days=1), NOW + timedelta(minutes=1))
    async with sessions() as session:
        found = await outbox.find_by_message(session, channel="D1", ts="2.5", sent_between=window)
        outside = await outbox.find_by_message(
            session, channel="D1", ts="2.5", sent_between=(NOW + timedelta(hours=1), NOW + timedelta(hours=2))
        )
    assert [r.key for r in found] == ["b"] and outside == []


async def test_heartbeats_are_upserted_per_instance(sessions: Sessions):
    async with transaction(sessions) as session:
        await outbox.beat(session, instance_id="host:1", at=NOW, error=None)
        await outbox.beat(session, instance_id="host:2", at=NOW, error=None)
    async with transaction(sessions) as session:
        await outbox.beat(session, instance_id="host:1", at=NOW + timedelta(minutes=1), error="boom")
    async with sessions() as session:
        one = await outbox.last_beat(session, instance_id="host:1")
        two = await outbox.last_beat(session, instance_id="host:2")
        none = await outbox.last_beat(session, instance_id="host:3")
    assert one is not None and (one.last_tick_at, one.last_error) == (NOW + timedelta(minutes=1), "boom")
    assert two is not None and two.last_tick_at == NOW and none is None


async def test_prune_drops_only_settled_rows_and_events_past_retention(sessions: Sessions):
    """Pending and recent rows stay, and so does every old row still waiting to be sent."""
    old = NOW - outbox.NOTIFICATION_RETENTION - timedelta(days=1)
    await enqueue(
        sessions, owed("old-sent", send_after=old), owed("old-pending", send_after=old), owed("new")
    )
    async with transaction(sessions) as session:
        await session.exec(
            update(Notification).where(Notification.key.in_(["old-sent", "new"])).values(state="sent")
        )
        session.add(ProcessedEvent(team_id="T0REAP", event_id="EvOld", received_at=NOW - timedelta(days=8)))
        session.add(ProcessedEvent(team_id="T0REAP", event_id="EvNew", received_at=NOW - timedelta(hours=1)))

    async with transaction(sessions) as session:
        assert await outbox.prune(session, now=NOW) == (1, 1)
    async with transaction(sessions) as session:
        assert await outbox.prune(session, now=NOW) == (0, 0), "nothing more to prune"
    assert sorted(await rows(sessions)) == ["new", "old-pending"]
    async with sessions() as session:
        assert [e.event_id for e in await session.exec(select(ProcessedEvent))] == ["EvNew"]


async def test_prune_works_in_batches(sessions: Sessions):
    old = NOW - outbox.NOTIFICATION_RETENTION - timedelta(days=1)
    await enqueue(sessions, *(owed(f"k{i:03d}", send_after=old) for i in range(25)))
    async with transaction(sessions) as session:
        await session.exec(update(Notification).values(state="skipped"))
    async with transaction(sessions) as session:
        assert await outbox.prune(session, now=NOW, limit=10) == (10, 0)
    assert len(await rows(sessions)) == 15
