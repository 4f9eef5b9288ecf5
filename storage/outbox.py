"""The outbox: owed messages inserted once by key, claimed under a lease, and marked with fencing.

Any number of instances may plan and deliver at once. `enqueue` is `INSERT ... ON CONFLICT (key)
DO NOTHING`, so the same owed message is stored once. `claim` hands each due row to exactly one
worker: `FOR UPDATE SKIP LOCKED` on PostgreSQL, and on SQLite the same `UPDATE ... RETURNING`
inside the engine's `BEGIN IMMEDIATE`, which already makes it atomic. Every later change names
the lease token it claimed with and only succeeds while that token still holds the row, so a
worker whose lease expired (and whose row someone else reclaimed) cannot overwrite the outcome.

A row's `channel` with no `ts` is a send intent: it is written just before the Slack call, so a
reclaimed row carrying one may already have been posted and must be reconciled, not resent.

Riders are rows of kinds that never go out alone (a person hears from the bot once a day): claims
pass them over, and the planner folds them into the recipient's digest for the day (`carry_riders`),
which settles each one as carried. If the digest then never reaches its reader, `release_riders`
puts them back to be carried by the next one.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, Text, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.engine import one_of
from storage.models import (
    Heartbeat,
    Notification,
    NotificationBase,
    NotificationCreate,
    NotificationState,
    ProcessedEvent,
    SendPace,
)

NOTIFICATIONS = cast(Table, Notification.__table__)  # type: ignore[attr-defined]
HEARTBEATS = cast(Table, Heartbeat.__table__)  # type: ignore[attr-defined]
EVENTS = cast(Table, ProcessedEvent.__table__)  # type: ignore[attr-defined]
_OWED = list(NotificationBase.model_fields)
# The table's own defaults for a new row (they are Python-side, so a Core insert must carry them).
_NEW_ROW = {"state": NotificationState.PENDING.value, "attempts": 0}
# SQLite allows 32,766 bound parameters per statement; 200 rows of ~18 columns stays far below.
_INSERT_CHUNK = 200
_ERROR_LIMIT = 500

PENDING = NotificationState.PENDING.value
# A carried row's payload names the row that carried it (see carry).
CARRIED_BY = "carried_by"
SENDING = NotificationState.SENDING.value


async def _dialect(session: AsyncSession) -> str:
    return (await session.connection()).dialect.name


def _insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the outbox supports PostgreSQL and SQLite, not {dialect}")


async def _run(session: AsyncSession, statement: Executable) -> CursorResult[Any]:
    # Core statements run on the session's connection, inside the session's transaction.
    connection = await session.connection()
    return await connection.execute(statement)


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:_ERROR_LIMIT]


def _as_row(mapping: Any) -> Notification:
    return Notification(**dict(mapping))


async def enqueue(session: AsyncSession, *, rows: Sequence[NotificationBase]) -> int:
    """Insert owed messages, skipping any whose key is already stored; returns how many were new."""
    if not rows:
        return 0
    dialect = await _dialect(session)
    # Inserting in key order means two tickers racing over the same keys wait on each other in
    # the same order, so PostgreSQL never sees them deadlock.
    ordered = sorted({row.key: row for row in rows}.values(), key=lambda row: row.key)
    connection = await session.connection()
    if dialect == "postgresql":
        return await _enqueue_unnest(connection, ordered)
    # One cached statement run with many parameter sets: SQLAlchemy batches it ("insertmanyvalues")
    # and keeps RETURNING, instead of compiling a fresh multi-row VALUES statement per chunk.
    statement = (
        _insert(dialect, NOTIFICATIONS)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(NOTIFICATIONS.c.id)
    )
    inserted = 0
    for start in range(0, len(ordered), _INSERT_CHUNK):
        values = [
            {**_NEW_ROW, **{name: getattr(row, name) for name in _OWED}}
            for row in ordered[start : start + _INSERT_CHUNK]
        ]
        result = await connection.execute(statement, values)
        inserted += len(result.all())
    return inserted


# PostgreSQL takes a whole batch as one array per owed field, typed like its column (payload goes
# as text and is cast back to JSON): one statement and one round trip for thousands of rows, where
# a bound parameter per value cost a third of a million-item tick. New rows get _NEW_ROW's values.
_UNNEST_COLUMNS: dict[str, TypeEngine[Any]] = {
    name: ARRAY(Text) if name == "payload" else ARRAY(NOTIFICATIONS.c[name].type) for name in _OWED
}
_UNNEST_INSERT = text(
    f"""
    INSERT INTO {NOTIFICATIONS.name} ({", ".join([*_UNNEST_COLUMNS, *_NEW_ROW])})
    SELECT {", ".join(f"t.{c}::json" if c == "payload" else f"t.{c}" for c in _UNNEST_COLUMNS)},
           {", ".join(f":{c}" for c in _NEW_ROW)}
    FROM unnest({", ".join(f":{c}" for c in _UNNEST_COLUMNS)}) AS t({", ".join(_UNNEST_COLUMNS)})
    ORDER BY t.key
    ON CONFLICT (key) DO NOTHING
    RETURNING id
    """
).bindparams(
    *(bindparam(c, type_=t) for c, t in _UNNEST_COLUMNS.items()),
    *(bindparam(c, v) for c, v in _NEW_ROW.items()),
)
_UNNEST_CHUNK = 5_000


async def _enqueue_unnest(connection: AsyncConnection, ordered: Sequence[NotificationBase]) -> int:
    inserted = 0
    for start in range(0, len(ordered), _UNNEST_CHUNK):
        chunk = ordered[start : start + _UNNEST_CHUNK]
        columns: dict[str, list[Any]] = {c: [] for c in _UNNEST_COLUMNS}
        for row in chunk:
            for c in _UNNEST_COLUMNS:
                value = getattr(row, c)
                columns[c].append(json.dumps(value) if c == "payload" else value)
        result = await connection.execute(_UNNEST_INSERT, columns)
        inserted += len(result.all())
    return inserted


async def existing_keys(session: AsyncSession, *, keys: Sequence[str]) -> set[str]:
    """Which of `keys` the outbox already holds."""
    found: set[str] = set()
    dialect = await _dialect(session)
    for condition in one_of(NOTIFICATIONS.c.key, sorted(set(keys)), dialect=dialect):
        result = await _run(session, select(NOTIFICATIONS.c.key).where(condition))
        found.update(str(key) for (key,) in result.all())
    return found


async def states(session: AsyncSession, *, keys: Sequence[str]) -> dict[str, str]:
    """The state of each of `keys` the outbox holds."""
    found: dict[str, str] = {}
    dialect = await _dialect(session)
    for condition in one_of(NOTIFICATIONS.c.key, sorted(set(keys)), dialect=dialect):
        result = await _run(session, select(NOTIFICATIONS.c.key, NOTIFICATIONS.c.state).where(condition))
        found.update({str(m["key"]): str(m["state"]) for m in result.mappings()})
    return found


async def carry(session: AsyncSession, *, carrier: str, companion: NotificationBase, field: str) -> bool:
    """Fold `companion` into the still-pending row `carrier`, so one message says both.

    The carrier's payload gains the companion's payload under `field`, and the companion is
    stored already settled (skipped, naming its carrier), so it is owed once and never sent on
    its own. False, changing nothing, when the carrier is no longer pending: a worker has
    claimed or sent it, and the companion must wait for another message.
    """
    c = NOTIFICATIONS.c
    found = (await _run(session, select(c.payload).where(c.key == carrier, c.state == PENDING))).first()
    if found is None:
        return False
    payload = {**(found[0] or {}), field: companion.payload}
    # The state condition makes this atomic with claims: a row claimed since the read is left alone.
    folded = await _run(
        session, update(NOTIFICATIONS).where(c.key == carrier, c.state == PENDING).values(payload=payload)
    )
    if folded.rowcount != 1:
        return False
    stored = companion.model_copy(update={"payload": {**companion.payload, CARRIED_BY: carrier}})
    if await enqueue(session, rows=[stored]):
        settled = {"state": NotificationState.SKIPPED.value, "last_error": _clip(f"carried by {carrier}")}
        await _run(session, update(NOTIFICATIONS).where(c.key == companion.key).values(**settled))
    return True


async def release_uncarried(session: AsyncSession, *, team_id: str, kinds: Sequence[str]) -> list[str]:
    """Forget carried rows of `kinds` whose carrier reached nobody (skipped or failed); their keys.

    A digest can still be skipped after a companion was folded into it (its day passed during an
    outage, or its recipient paused). Deleting the companion makes it owed again, so the planner
    plans it on the recipient's next sending day instead of it being lost with its carrier.
    """
    c = NOTIFICATIONS.c
    found = await _run(
        session,
        select(c.key, c.payload).where(
            c.team_id == team_id, c.kind.in_(list(kinds)), c.state == NotificationState.SKIPPED.value
        ),
    )
    carriers = {
        str(m["key"]): str((m["payload"] or {})[CARRIED_BY])
        for m in found.mappings()
        if isinstance(m["payload"], dict) and m["payload"].get(CARRIED_BY)
    }
    if not carriers:
        return []
    known = await states(session, keys=list(carriers.values()))
    undelivered = {NotificationState.SKIPPED.value, NotificationState.FAILED.value}
    lost = sorted(key for key, carrier in carriers.items() if known.get(carrier) in undelivered)
    for condition in one_of(c.key, lost, dialect=await _dialect(session)):
        await _run(session, delete(NOTIFICATIONS).where(condition))
    return lost


# --- riders: rows that only go out folded into the recipient's digest ------------------------------

# Where a carrier's payload lists what it carries: [{"kind", "key", "payload"}, ...].
RIDERS = "riders"
# A digest carries at most this many riders at once; the rest ride the next one.
MAX_CARRIED = 500


def _carried_by(carrier: str) -> str:
    return _clip(f"carried by {carrier}") or ""


async def pending_riders(
    session: AsyncSession, *, team_id: str, kinds: Collection[str], limit: int = 20_000
) -> list[Notification]:
    """A workspace's riders of `kinds` still waiting for a digest, oldest first."""
    if not kinds:
        return []
    c = NOTIFICATIONS.c
    query = (
        select(NOTIFICATIONS)
        .where(c.team_id == team_id, c.state == PENDING, c.kind.in_(sorted(kinds)))
        .order_by(c.send_after, c.id)
        .limit(limit)
    )
    result = await _run(session, query)
    return [_as_row(mapping) for mapping in result.mappings().all()]


async def carry_riders(
    session: AsyncSession, *, carrier: NotificationBase, riders: Sequence[NotificationBase]
) -> list[str]:
    """Fold `riders` into the digest `carrier` (stored first if it is not yet); the keys carried.

    Each rider is settled (skipped, "carried by" the carrier) and its kind, key and payload join
    the carrier's payload under RIDERS, in one transaction. Nothing changes once the carrier has
    been claimed or sent: its reader already had today's message, so the riders wait for the next.
    """
    if not riders:
        return []
    await enqueue(session, rows=[carrier])
    c = NOTIFICATIONS.c
    query = select(c.payload).where(c.key == carrier.key, c.state == PENDING)
    if await _dialect(session) == "postgresql":
        # Held until commit: a claim (SKIP LOCKED) passes the carrier over while riders join it.
        query = query.with_for_update()
    found = (await _run(session, query)).first()
    if found is None:
        return []
    wanted = {rider.key: rider for rider in list(riders)[:MAX_CARRIED]}
    settle = (
        update(NOTIFICATIONS)
        .where(c.key.in_(sorted(wanted)), c.state == PENDING)
        # A rider goes out on its carrier's day, whichever day it was first owed for.
        .values(
            state=NotificationState.SKIPPED.value,
            last_error=_carried_by(carrier.key),
            local_date=carrier.local_date,
        )
        .returning(c.key)
    )
    carried = sorted(str(key) for (key,) in (await _run(session, settle)).all())
    if not carried:
        return []
    payload = dict(found[0] or {})
    payload[RIDERS] = [
        *(payload.get(RIDERS) or []),
        *({"kind": wanted[key].kind, "key": key, "payload": wanted[key].payload} for key in carried),
    ]
    await _run(session, update(NOTIFICATIONS).where(c.key == carrier.key).values(payload=payload))
    return carried


async def release_riders(session: AsyncSession, *, carrier: str) -> list[str]:
    """Put the riders of a carrier that never reached its reader back to wait for the next digest."""
    c = NOTIFICATIONS.c
    found = (await _run(session, select(c.payload).where(c.key == carrier))).first()
    listed = ((found[0] or {}) if found is not None else {}).get(RIDERS) or []
    keys = sorted({str(r["key"]) for r in listed if isinstance(r, dict) and r.get("key")})
    released: list[str] = []
    # Only riders this carrier still holds: one carried again since is left alone.
    held = and_(c.state == NotificationState.SKIPPED.value, c.last_error == _carried_by(carrier))
    for condition in one_of(c.key, keys, dialect=await _dialect(session)):
        statement = (
            update(NOTIFICATIONS)
            .where(condition, held)
            .values(state=PENDING, last_error=_clip(f"owed again: {carrier} never went out"))
            .returning(c.key)
        )
        released += [str(key) for (key,) in (await _run(session, statement)).all()]
    return released


async def skip_pending(session: AsyncSession, *, keys: Sequence[str], reason: str) -> int:
    """Settle pending rows nobody has claimed without sending them, keeping the reason."""
    c = NOTIFICATIONS.c
    skipped = 0
    for condition in one_of(c.key, sorted(set(keys)), dialect=await _dialect(session)):
        statement = (
            update(NOTIFICATIONS)
            .where(condition, c.state == PENDING)
            .values(state=NotificationState.SKIPPED.value, last_error=_clip(reason))
        )
        skipped += int((await _run(session, statement)).rowcount or 0)
    return skipped


# --- owner changes -----------------------------------------------------------------------------

# The notice that items changed owner: the new owner is given them (with their cards and buttons),
# the previous owner is told. Riders: each goes out in its reader's next digest.
ASSIGNED = "assigned"
NEW_OWNER = "owner"
PREVIOUS_OWNER = "previous"


def assignment_key(team_id: str, recipient: str, item_id: int, now: datetime) -> str:
    """The outbox key of one owner-change notice to `recipient`, named by its first item and instant."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{team_id}:{ASSIGNED}:{recipient}:{item_id}:{stamp}"


def assignment_rows(
    *,
    team_id: str,
    items: Sequence[tuple[int, str]],
    owner: str | None,
    previous: str | None,
    actor: str,
    now: datetime,
) -> list[NotificationCreate]:
    """The notices owed when `items` ((id, ref) pairs) pass from `previous` to `owner`.

    Nobody is told about their own action: the person who gave or took the items saw the reply.
    """
    if not items or owner == previous:
        return []
    payload: dict[str, Any] = {
        "items": [{"id": item_id, "ref": ref} for item_id, ref in items],
        "owner": owner,
        "previous": previous,
        "by": actor,
    }
    rows = []
    for recipient, role in ((owner, NEW_OWNER), (previous, PREVIOUS_OWNER)):
        if recipient is None or recipient == actor:
            continue
        rows.append(
            NotificationCreate(
                team_id=team_id,
                key=assignment_key(team_id, recipient, items[0][0], now),
                kind=ASSIGNED,
                recipient=recipient,
                payload={**payload, "role": role},
                send_after=now,
                created_at=now,
            )
        )
    return rows


async def owe_owner_change(
    session: AsyncSession,
    *,
    team_id: str,
    items: Sequence[tuple[int, str]],
    owner: str | None,
    previous: str | None,
    actor: str,
    now: datetime,
) -> int:
    """Owe the owner-change notices of `items` in the caller's transaction; how many were new."""
    rows = assignment_rows(team_id=team_id, items=items, owner=owner, previous=previous, actor=actor, now=now)
    return await enqueue(session, rows=rows)


# --- completions to verify ------------------------------------------------------------------------

# The notice that an item was finished and waits for a coordinator's verification: a rider to each
# decider, owed when the owner marks it done (storage.items) and shown with a Verify button.
VERIFY = "verify_notice"


def verify_key(team_id: str, item_id: int, completed: datetime | None, decider: str) -> str:
    """The key that puts one completion before one decider once."""
    stamp = int(completed.timestamp()) if completed is not None else 0
    return f"{team_id}:{VERIFY}:{item_id}:{stamp}:{decider}"


async def owe_verification(
    session: AsyncSession,
    *,
    team_id: str,
    item_id: int,
    completed_at: datetime | None,
    deciders: Sequence[str],
    now: datetime,
) -> int:
    """Owe each of `deciders` the notice that item `item_id` waits for their verification."""
    rows = [
        NotificationCreate(
            team_id=team_id,
            key=verify_key(team_id, item_id, completed_at, decider),
            kind=VERIFY,
            recipient=decider,
            payload={"item": item_id},
            send_after=now,
            created_at=now,
        )
        for decider in dict.fromkeys(deciders)
    ]
    return await enqueue(session, rows=rows)


def _claimable(now: datetime, hold: Collection[str] = ()) -> ColumnElement[bool]:
    c = NOTIFICATIONS.c
    due = or_(
        and_(c.state == PENDING, c.send_after <= now),
        and_(c.state == SENDING, c.lease_until < now),
    )
    return and_(due, c.kind.not_in(sorted(hold))) if hold else due


async def claim(
    session: AsyncSession,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    hold: Collection[str] = (),
) -> list[Notification]:
    """Lease up to `limit` due rows (pending, or sending with an expired lease) to `owner`.

    Rows of the `hold` kinds (riders) are never claimed: they only go out folded into a digest.
    """
    c = NOTIFICATIONS.c
    pick = (
        select(c.id)
        .where(_claimable(now, hold))
        .order_by(c.send_after, c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL; SQLite holds the write lock
    )
    statement = (
        update(NOTIFICATIONS)
        .where(c.id.in_(pick.scalar_subquery()))
        .values(state=SENDING, lease_owner=owner, lease_until=now + lease, attempts=c.attempts + 1)
        .returning(*NOTIFICATIONS.columns)
    )
    result = await _run(session, statement)
    rows = [_as_row(mapping) for mapping in result.mappings().all()]
    return sorted(rows, key=lambda row: (row.send_after, row.id or 0))


async def claimable(
    session: AsyncSession, *, now: datetime, limit: int, hold: Collection[str] = ()
) -> list[Notification]:
    """The rows a claim at `now` would take, without taking them (for dry runs)."""
    c = NOTIFICATIONS.c
    query = select(NOTIFICATIONS).where(_claimable(now, hold)).order_by(c.send_after, c.id).limit(limit)
    result = await _run(session, query)
    return [_as_row(mapping) for mapping in result.mappings().all()]


async def _fenced(session: AsyncSession, *, id: int, owner: str, values: dict[str, Any]) -> bool:
    c = NOTIFICATIONS.c
    statement = (
        update(NOTIFICATIONS).where(c.id == id, c.lease_owner == owner, c.state == SENDING).values(**values)
    )
    result = await _run(session, statement)
    return bool(result.rowcount == 1)


async def renew(
    session: AsyncSession,
    *,
    id: int,
    owner: str,
    now: datetime,
    lease: timedelta,
    channel: str | None = None,
) -> bool:
    """Extend `owner`'s lease; with `channel`, also record the intent to post there now."""
    values: dict[str, Any] = {"lease_until": now + lease}
    if channel is not None:
        values |= {"channel": channel, "ts": None}
    return await _fenced(session, id=id, owner=owner, values=values)


async def mark_sent(
    session: AsyncSession, *, id: int, owner: str, channel: str, ts: str, now: datetime
) -> bool:
    """Record the Slack message (channel, ts) the row became; False if the lease was lost."""
    values = {
        "state": NotificationState.SENT.value,
        "channel": channel,
        "ts": ts,
        "sent_at": now,
        "lease_until": None,
        "last_error": None,
    }
    return await _fenced(session, id=id, owner=owner, values=values)


async def mark_retry(
    session: AsyncSession,
    *,
    id: int,
    owner: str,
    send_after: datetime,
    error: str | None,
    keep_intent: bool = False,
    refund: bool = False,
) -> bool:
    """Put the row back to pending until `send_after`.

    keep_intent leaves the send intent in place (the post may have reached Slack, so the next
    attempt reconciles first); refund gives back the attempt (the row was released unsent).
    """
    c = NOTIFICATIONS.c
    values: dict[str, Any] = {
        "state": PENDING,
        "send_after": send_after,
        "lease_until": None,
        "last_error": _clip(error),
    }
    if not keep_intent:
        values["channel"] = None
    if refund:
        values["attempts"] = c.attempts - 1
    return await _fenced(session, id=id, owner=owner, values=values)


async def mark_failed(session: AsyncSession, *, id: int, owner: str, error: str) -> bool:
    """Give up on the row for good, keeping the reason."""
    values = {"state": NotificationState.FAILED.value, "lease_until": None, "last_error": _clip(error)}
    return await _fenced(session, id=id, owner=owner, values=values)


async def mark_skipped(session: AsyncSession, *, id: int, owner: str, reason: str) -> bool:
    """Nothing is left to say (items done, snoozed, stale): the row is settled without a send."""
    values = {"state": NotificationState.SKIPPED.value, "lease_until": None, "last_error": _clip(reason)}
    return await _fenced(session, id=id, owner=owner, values=values)


async def mark_ambiguous(session: AsyncSession, *, id: int, owner: str, error: str) -> bool:
    """The post may or may not have reached Slack and cannot be checked: never resend it."""
    values = {
        "state": NotificationState.AMBIGUOUS.value,
        "lease_until": None,
        "last_error": _clip(error),
    }
    return await _fenced(session, id=id, owner=owner, values=values)


async def find_by_message(
    session: AsyncSession, *, channel: str, ts: str, sent_between: tuple[datetime, datetime]
) -> list[Notification]:
    """The sent rows that became Slack message (channel, ts), found by the (channel, ts) index.

    `sent_between` bounds send_after (a row is sent after it becomes due): a ts is only unique
    within its channel, so this keeps a stale press from matching a message of long ago.
    """
    c = NOTIFICATIONS.c
    low, high = sent_between
    query = (
        select(NOTIFICATIONS)
        .where(c.state == NotificationState.SENT.value)
        .where(c.send_after >= low, c.send_after <= high)
        .where(c.channel == channel, c.ts == ts)
        .order_by(c.id)
    )
    result = await _run(session, query)
    return [_as_row(mapping) for mapping in result.mappings().all()]


async def beat(session: AsyncSession, *, instance_id: str, at: datetime, error: str | None) -> None:
    """Record that `instance_id`'s ticker ran at `at` (and how the tick ended)."""
    dialect = await _dialect(session)
    values = {"instance_id": instance_id, "last_tick_at": at, "last_error": _clip(error)}
    statement = (
        _insert(dialect, HEARTBEATS)
        .values(values)
        .on_conflict_do_update(
            index_elements=["instance_id"], set_={"last_tick_at": at, "last_error": _clip(error)}
        )
    )
    await _run(session, statement)


async def last_beat(session: AsyncSession, *, instance_id: str) -> Heartbeat | None:
    """The last heartbeat `instance_id` recorded, if any."""
    result = await _run(session, select(HEARTBEATS).where(HEARTBEATS.c.instance_id == instance_id))
    mapping = result.mappings().first()
    return None if mapping is None else Heartbeat(**dict(mapping))


async def counts(session: AsyncSession, *, limit: int = 200) -> dict[tuple[str, str], int]:
    """How many outbox rows there are per (state, kind); at most `limit` pairs (for /metrics)."""
    statement = (
        select(NOTIFICATIONS.c.state, NOTIFICATIONS.c.kind, func.count().label("rows"))
        .group_by(NOTIFICATIONS.c.state, NOTIFICATIONS.c.kind)
        .order_by(NOTIFICATIONS.c.state, NOTIFICATIONS.c.kind)
        .limit(limit)
    )
    result = await _run(session, statement)
    return {(str(row["state"]), str(row["kind"])): int(row["rows"]) for row in result.mappings()}


PACES = cast(Table, SendPace.__table__)  # type: ignore[attr-defined]


async def book_send(
    session: AsyncSession, *, budget: str, now: float, interval: float, burst: float
) -> float:
    """Book the next slot of a send budget shared by every instance; returns when it may go.

    GCRA as in reminders.ratelimit.Pace, with the theoretical arrival time kept in one row that
    each booking moves on by `interval` under the row's lock, so instances never share a slot.
    `now` and the answer are Unix seconds (instances share the wall clock, not a monotonic one).
    """
    dialect = await _dialect(session)
    c = PACES.c
    later = func.greatest if dialect == "postgresql" else func.max
    move_on = (
        update(PACES).where(c.budget == budget).values(tat=later(c.tat, now) + interval).returning(c.tat)
    )
    tat = (await _run(session, move_on)).scalar_one_or_none()
    if tat is None:  # the budget's first booking ever: create its row (once, whoever races here)
        await _run(session, _insert(dialect, PACES).values(budget=budget, tat=0.0).on_conflict_do_nothing())
        tat = (await _run(session, move_on)).scalar_one()
    tat = float(tat)
    # The new tat is max(old, now) + interval, so the old one (and the slot) can be read back from it.
    return max(now, tat - interval - (burst - 1) * interval)


# Settled outbox rows are bookkeeping (the audit trail is the record). 400 days outlives the digests
# and check-in cycles their keys guard; an item still orphaned after that is reported once more,
# which does no harm. ProcessedEvent only has to outlast Slack's retries, which stop within hours.
NOTIFICATION_RETENTION = timedelta(days=400)
EVENT_RETENTION = timedelta(days=7)
_SETTLED = (
    NotificationState.SENT.value,
    NotificationState.SKIPPED.value,
    NotificationState.FAILED.value,
    NotificationState.AMBIGUOUS.value,
)


async def prune(
    session: AsyncSession, *, now: datetime, limit: int = 5_000, riders: Collection[str] = ()
) -> tuple[int, int]:
    """Delete up to `limit` settled outbox rows and processed events past retention; how many of each.

    Riders of the `riders` kinds still waiting that long (their reader never had a sending day
    again: they left, or never came back from a pause) go too.
    """
    c = NOTIFICATIONS.c
    done: ColumnElement[bool] = c.state.in_(_SETTLED)
    if riders:
        done = or_(done, and_(c.state == PENDING, c.kind.in_(sorted(riders))))
    old_rows = (
        select(c.id).where(done, c.send_after < now - NOTIFICATION_RETENTION).limit(limit).scalar_subquery()
    )
    rows = await _run(session, delete(NOTIFICATIONS).where(c.id.in_(old_rows)))
    e = EVENTS.c
    old_events = select(e.id).where(e.received_at < now - EVENT_RETENTION).limit(limit).scalar_subquery()
    events = await _run(session, delete(EVENTS).where(e.id.in_(old_events)))
    return int(rows.rowcount or 0), int(events.rowcount or 0)
