"""The engine under the request path: SQLite statements in one trip to aiosqlite's thread, reads
that never hold a snapshot once done, and a request's unit of work (one transaction for all its
blocks, all or nothing, with the delivery's record first)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.engine as engine_module
from storage.engine import (
    UnitFailed,
    commit_first_write,
    create_engine,
    first_write,
    is_sqlite,
    outside_units,
    read_connection,
    reading,
    request_unit,
    session_factory,
    transaction,
)
from storage.models import Person, ProcessedEvent

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
PEOPLE = Person.__table__  # type: ignore[attr-defined]
EVENTS = ProcessedEvent.__table__  # type: ignore[attr-defined]


def person(user_id: str) -> dict[str, Any]:
    return {"team_id": "T0REAP", "user_id": user_id, "name": user_id, "role": "member", "created_at": NOW}


async def names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(PEOPLE.c.user_id).order_by(PEOPLE.c.user_id))).scalars())


class Later:
    """A stand-in for BackgroundTasks.spawn: runs what it is given, and can wait for it."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def __call__(self, coro: Coroutine[Any, Any, Any]) -> None:
        context = contextvars.copy_context()
        context.run(outside_units)
        self.tasks.append(asyncio.get_running_loop().create_task(coro, context=context))

    async def drain(self) -> None:
        await asyncio.gather(*self.tasks)


# --- statements ------------------------------------------------------------------------------------


async def test_rows_counts_and_batches_come_back_as_from_any_driver(engine: AsyncEngine):
    async with engine.begin() as conn:
        await conn.execute(insert(PEOPLE), [person("U0A"), person("U0B"), person("U0C")])
        changed = await conn.execute(update(PEOPLE).where(PEOPLE.c.user_id != "U0A").values(name="x"))
        found = await conn.execute(select(PEOPLE.c.user_id, PEOPLE.c.name).order_by(PEOPLE.c.user_id))

        assert changed.rowcount == 2
        assert list(found.keys()) == ["user_id", "name"]
        assert found.all() == [("U0A", "U0A"), ("U0B", "x"), ("U0C", "x")]
        assert (await conn.execute(select(func.count()).select_from(PEOPLE))).scalar_one() == 3


async def test_a_failed_statement_raises_the_drivers_error_and_the_connection_goes_on(engine: AsyncEngine):
    sessions = session_factory(engine)
    with pytest.raises(Exception, match=r"(?i)unique"):
        async with transaction(sessions) as session:
            connection = await session.connection()
            await connection.execute(insert(PEOPLE), [person("U0A"), person("U0A")])
    async with transaction(sessions) as session:
        await (await session.connection()).execute(insert(PEOPLE), [person("U0A")])
    assert await names(engine) == ["U0A"]


async def test_a_finished_read_holds_no_snapshot_so_a_checkpoint_completes(engine: AsyncEngine):
    if not is_sqlite(str(engine.url)):
        pytest.skip("WAL checkpoints are SQLite's")
    sessions = session_factory(engine)
    async with reading(sessions) as session:
        await session.exec(select(func.count()).select_from(PEOPLE))  # type: ignore[call-overload]
    async with read_connection(sessions) as connection:
        await connection.execute(select(PEOPLE.c.id))
    async with transaction(sessions) as session:
        await (await session.connection()).execute(insert(PEOPLE), [person("U0A")])

    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        ((busy, _, _),) = await driver.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    assert busy == 0, "a returned connection still held a read transaction"


# --- a request's unit of work ----------------------------------------------------------------------


async def committed(sessions: Any) -> list[str]:
    """What another request would read now (a read of its own, outside this unit)."""

    async def read() -> list[str]:
        async with reading(sessions) as session:
            return list(await session.exec(select(PEOPLE.c.user_id)))  # type: ignore[call-overload]

    context = contextvars.copy_context()
    context.run(outside_units)
    return await asyncio.get_running_loop().create_task(read(), context=context)


def transactions_of(engine: AsyncEngine) -> list[int]:
    begun = [0]
    event.listen(engine.sync_engine, "begin", lambda _conn: begun.__setitem__(0, begun[0] + 1))
    return begun


async def add(sessions: Any, user_id: str) -> None:
    async with transaction(sessions) as session:
        session.add(Person(**person(user_id)))


async def test_every_block_of_a_unit_shares_one_transaction_committed_at_its_end(engine: AsyncEngine):
    sessions, later = session_factory(engine), Later()
    begun = transactions_of(engine)

    async with request_unit(sessions, spawn=later):
        async with read_connection(sessions) as connection:
            await connection.execute(select(PEOPLE.c.id))
        await add(sessions, "U0A")
        async with reading(sessions) as session:
            seen = await session.exec(select(PEOPLE.c.user_id))  # type: ignore[call-overload]
            assert list(seen) == [("U0A",)]
        await add(sessions, "U0B")
        assert await committed(sessions) == [], "nothing is committed before the unit ends"

    assert begun[0] == 2, "the unit's transaction, and the other read's"
    assert await names(engine) == ["U0A", "U0B"]


async def test_a_block_that_fails_takes_the_whole_unit_with_it(engine: AsyncEngine):
    sessions, later = session_factory(engine), Later()

    with pytest.raises(LookupError):
        async with request_unit(sessions, spawn=later):
            await add(sessions, "U0A")
            async with transaction(sessions) as session:
                session.add(Person(**person("U0B")))
                raise LookupError("refused")
    await later.drain()

    assert await names(engine) == []


async def test_going_on_after_a_failed_block_is_refused_and_commits_nothing(engine: AsyncEngine):
    sessions, later = session_factory(engine), Later()

    with pytest.raises(UnitFailed):
        async with request_unit(sessions, spawn=later):
            await add(sessions, "U0A")
            with pytest.raises(LookupError):
                async with transaction(sessions):
                    raise LookupError("refused")
            await add(sessions, "U0B")
    await later.drain()

    assert await names(engine) == []


async def recorded(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(EVENTS.c.event_id))).scalars())


def record(key: str) -> Any:
    async def write(session: AsyncSession) -> None:
        await (await session.connection()).execute(
            insert(EVENTS), {"team_id": "T0REAP", "event_id": key, "received_at": NOW}
        )

    return write


async def test_the_first_write_goes_first_and_commits_with_the_unit(engine: AsyncEngine):
    sessions, later = session_factory(engine), Later()
    statements: list[str] = []
    event.listen(
        engine.sync_engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql)
    )

    with first_write(record("Ev1")) as pending:
        async with request_unit(sessions, spawn=later):
            await add(sessions, "U0A")

    assert pending.committed
    assert [s.split()[0] for s in statements if not s.startswith("BEGIN")] == ["INSERT", "INSERT"]
    assert "processed_event" in next(s for s in statements if s.startswith("INSERT"))
    assert await recorded(engine) == ["Ev1"] and await names(engine) == ["U0A"]


async def test_a_first_write_rolled_back_with_its_unit_can_be_written_alone(engine: AsyncEngine):
    sessions, later = session_factory(engine), Later()

    with first_write(record("Ev1")) as pending:
        with pytest.raises(LookupError):
            async with request_unit(sessions, spawn=later):
                await add(sessions, "U0A")
                raise LookupError("refused")
        await later.drain()
        assert not pending.committed and await recorded(engine) == []
        await commit_first_write(sessions)

    assert pending.committed
    assert await recorded(engine) == ["Ev1"] and await names(engine) == []


async def test_work_spawned_from_a_unit_runs_on_its_own(engine: AsyncEngine):
    sessions, later = session_factory(engine), Later()

    with first_write(record("Ev1")) as pending:
        async with request_unit(sessions, spawn=later):
            later(add(sessions, "U0LATER"))
            await add(sessions, "U0A")
        await later.drain()

    assert pending.committed
    assert await names(engine) == ["U0A", "U0LATER"]
    assert await recorded(engine) == ["Ev1"]


async def test_outside_a_unit_each_block_is_its_own_transaction(engine: AsyncEngine):
    sessions = session_factory(engine)
    begun = transactions_of(engine)

    await add(sessions, "U0A")
    await add(sessions, "U0B")
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))

    assert begun[0] == 3


# --- PostgreSQL connections, pinged only after being idle -------------------------------------------


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(engine: AsyncEngine, pid: int) -> None:
    # From a connection of its own, so the pool's one is the only casualty.
    admin = create_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await admin.dispose()


@pytest.fixture
def pg_engine(engine: AsyncEngine) -> AsyncEngine:
    if is_sqlite(str(engine.url)):
        pytest.skip("PostgreSQL's pool")
    return engine


def counted_pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ping the pool sends (each still goes to the server)."""
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


async def test_an_idle_connection_whose_server_went_away_is_replaced_unseen(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.05)
    pings = counted_pings(pg_engine, monkeypatch)
    first = await backend_pid(pg_engine)
    await terminate(pg_engine, first)
    await asyncio.sleep(0.1)  # past the idle window: the next checkout pings first

    second = await backend_pid(pg_engine)

    assert second != first
    assert len(pings) == 1


async def test_a_connection_used_a_moment_ago_is_not_pinged_again(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    pings = counted_pings(pg_engine, monkeypatch)
    first = await backend_pid(pg_engine)

    for _ in range(3):
        assert await backend_pid(pg_engine) == first

    assert pings == [], "a connection in steady use costs no extra round trip"
