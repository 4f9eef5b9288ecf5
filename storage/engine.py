"""Async engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any
from weakref import WeakKeyDictionary

import aiosqlite
from sqlalchemy import String, any_, bindparam, event, util
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long to wait for a PostgreSQL connection (a new one, or a free one from the pool): a request
# must still be answered within Slack's 3 seconds when the server refuses or never answers.
CONNECT_TIMEOUT_SECONDS = 2.0
# Bound values per IN list on SQLite, far below its 32,766-parameter limit.
SQLITE_IN_CHUNK = 500

Sessions = async_sessionmaker[AsyncSession]

_read_only: ContextVar[bool] = ContextVar("reap_read_only", default=False)
_write_locks: WeakKeyDictionary[Any, asyncio.Lock] = WeakKeyDictionary()


class StorageConfigError(Exception):
    """The database could not be configured the way REAP needs it."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"database: {problem}")


def is_sqlite(url: str) -> bool:
    """Whether `url` names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """Create an async engine tuned for the backend in `url`."""
    if is_sqlite(url):
        return _sqlite_engine(url, echo=echo)
    parsed = make_url(url)
    server_settings = {"timezone": "UTC", "application_name": "reap-tracker"}
    # Our own `?search_path=` lets tests (and shared servers) isolate REAP in one schema.
    if search_path := parsed.query.get("search_path"):
        server_settings["search_path"] = str(search_path)
        parsed = parsed.difference_update_query(["search_path"])
    engine = create_async_engine(
        parsed,
        echo=echo,
        pool_recycle=1800,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        connect_args={
            "server_settings": server_settings,
            "command_timeout": 30,
            "timeout": CONNECT_TIMEOUT_SECONDS,
        },
    )
    _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection idle longer than this is pinged before use (survive a restart,
# sqlalchemy#5776); one used more recently is not (SQLAlchemy's pool_pre_ping pings every checkout:
# a round trip per request). Should the server die within the window, the first query on each
# such connection fails and SQLAlchemy refreshes the whole pool. HikariCP's bypass window is 0.5 s.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["reap_returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("reap_returned_at")
        if returned is None or time.monotonic() - returned <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            alive = False
            reason: BaseException | None = exc
        else:
            reason = None
        if not alive:
            # As pool_pre_ping does: the server went away, so every connection pooled before now
            # goes, and this checkout opens a fresh one.
            raise InvalidatePoolError("a pooled connection stopped answering") from reason


def _run_whole(
    connection: sqlite3.Connection, sql: str, parameters: Any, many: bool
) -> tuple[Any, list[Any], int, int | None]:
    """One statement from start to finish in aiosqlite's thread: execute, fetch, close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _WholeStatementCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, running each statement in one trip to aiosqlite's thread.

    The stock cursor makes four (open a cursor, execute, fetch, close), and each trip costs the
    event loop a queue put, a thread wake-up and a self-pipe write: on the request path that was
    more CPU than SQLite spent answering. Results are read whole, as the stock cursor does too.
    """

    __slots__ = ("_description", "_lastrowid", "_rowcount")
    server_side = False

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = util.EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _whole(self, operation: Any, parameters: Any, many: bool) -> None:
        driver = self._connection
        async with self._adapt_connection._execute_mutex:
            found = await driver._execute(_run_whole, driver._conn, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = found
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._whole(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._whole(operation, seq_of_parameters, many=True)

    async def _async_soft_close(self) -> None:
        return

    def close(self) -> None:
        self._rows.clear()


class _WholeStatementConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _WholeStatementCursor


class _WholeStatementDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite for SQLAlchemy, connecting with the one-trip cursor."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        stock = super().connect(*arg, **kw)
        return _WholeStatementConnection(self, stock._connection)


def _sqlite_engine(url: str, *, echo: bool) -> AsyncEngine:
    engine = create_async_engine(
        url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        module=_WholeStatementDBAPI(aiosqlite, sqlite3),
        # The pool would roll back every connection it takes back, even one whose transaction
        # has just committed; _on_reset rolls back only those still in one.
        pool_reset_on_return=None,
    )
    in_memory = make_url(url).database in (None, "", ":memory:")

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so we can BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        mode = cursor.fetchone()[0]
        # SQLite reports a failed switch by returning the old mode rather than raising.
        if mode.lower() != "wal" and not in_memory:
            raise StorageConfigError(f"SQLite refused WAL mode (got {mode!r}); is it on a network drive?")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
        if state.terminate_only or not state.asyncio_safe:
            return
        driver = dbapi_connection._connection._connection  # sqlite3, or None once closed
        if driver is not None and driver.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred BEGIN that later writes can fail with BUSY_SNAPSHOT despite busy_timeout;
        # IMMEDIATE takes the write lock up front and waits politely instead. Reads declared
        # with `reading()` stay deferred so they never queue behind writers in WAL mode.
        connection.exec_driver_sql("BEGIN" if _read_only.get() else "BEGIN IMMEDIATE")

    _write_locks[engine.sync_engine] = asyncio.Lock()
    return engine


def session_factory(engine: AsyncEngine) -> Sessions:
    """A session factory whose objects stay usable after commit (no lazy refresh in async code)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


class FirstWrite:
    """A write that must commit with a request's first unit of work, whichever that turns out to be.

    A request's record of its delivery (commands.handlers) is one: folded into the command's
    own transaction it costs one statement instead of a transaction of its own, and it commits
    or rolls back with what the command did, so a replay can never find the one without the
    other. `committed` says whether it has; if no unit of work took it, the caller writes it alone.
    """

    def __init__(self, write: Callable[[AsyncSession], Awaitable[None]]) -> None:
        self.write = write
        self.claimed = False
        self.committed = False


_first_write: ContextVar[FirstWrite | None] = ContextVar("reap_first_write", default=None)


@contextmanager
def first_write(write: Callable[[AsyncSession], Awaitable[None]]) -> Iterator[FirstWrite]:
    """Within the block, the first `transaction()` or `reading()` to begin runs `write` first and
    commits it with its own work (a `reading()` then becomes a transaction)."""
    pending = FirstWrite(write)
    token = _first_write.set(pending)
    try:
        yield pending
    finally:
        _first_write.reset(token)


def _claim() -> FirstWrite | None:
    pending = _first_write.get()
    if pending is None or pending.claimed:
        return None
    pending.claimed = True
    return pending


class UnitFailed(RuntimeError):
    """A request went on with the database after a part of its unit of work had failed."""

    def __init__(self) -> None:
        super().__init__("a request used its unit of work after a part of it failed")


class RequestUnit:
    """One request's unit of work: every `transaction()`, `reading()` and `read_connection()` inside
    `request_unit()` shares one session and one transaction, begun on first use (the pending first
    write first) and committed when the request is done, so a command costs one transaction
    however its code is divided. A block that raises fails the whole unit: it is rolled back, and
    any later use of it raises UnitFailed rather than commit half of what the block did.
    `commit_sent` says whether its COMMIT has gone to the server: from then on, until `commit()`
    returns, only the server knows whether the unit took."""

    def __init__(self, sessions: Sessions, spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self.sessions = sessions
        self.spawn = spawn
        self.session: AsyncSession | None = None
        self.failed = False
        self.commit_sent = False
        self._pending: FirstWrite | None = None
        self._lock: asyncio.Lock | None = None

    async def begin(self) -> AsyncSession:
        """The unit's session, opened (and its first write written) on first use."""
        if self.failed:
            raise UnitFailed()
        if self.session is not None:
            return self.session
        lock = _write_locks.get(_engine_of(self.sessions))
        if lock is not None:
            # SQLite: the unit writes (its record, at least), so it queues as a writer from the start.
            await lock.acquire()
            self._lock = lock
        self.session = self.sessions()
        try:
            self._pending = _claim()
            if self._pending is not None:
                await self._pending.write(self.session)
        except BaseException:
            self.failed = True
            raise
        return self.session

    async def commit(self) -> None:
        """Commit what the unit did (nothing if it never began)."""
        if self.failed:
            self.discard()
            raise UnitFailed()
        session, self.session = self.session, None
        if session is None:
            return
        try:
            # What the unit still holds is written first, so a failure here is a plain rollback.
            await session.flush()
            self.commit_sent = True
            await session.commit()
        except BaseException:
            self._close_later(session)
            raise
        await session.close()
        self._release()
        if self._pending is not None:
            self._pending.committed = True

    def discard(self) -> None:
        """Roll back, after the request has answered: a database that does not answer must not keep
        Slack waiting (SQLAlchemy waits seconds to close a silent connection politely)."""
        if self._pending is not None:
            self._pending.claimed = False  # rolled back: whoever writes next writes it
        session, self.session = self.session, None
        if session is None:
            self._release()
            return
        self._close_later(session)

    def _close_later(self, session: AsyncSession) -> None:
        async def close() -> None:
            try:
                await session.close()
            finally:
                self._release()

        self.spawn(close())

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


_unit: ContextVar[RequestUnit | None] = ContextVar("reap_unit", default=None)


@asynccontextmanager
async def request_unit(
    sessions: Sessions, *, spawn: Callable[[Coroutine[Any, Any, Any]], None]
) -> AsyncIterator[RequestUnit]:
    """Run a request's database work as one unit (see RequestUnit): committed if the block ends
    normally, rolled back (after the answer) if it raises. `spawn` runs work after the request."""
    unit = RequestUnit(sessions, spawn)
    token = _unit.set(unit)
    try:
        yield unit
    except BaseException:
        unit.failed = True
        unit.discard()
        raise
    finally:
        _unit.reset(token)
    await unit.commit()


def outside_units() -> None:
    """Leave the current context's unit of work and pending first write to the request that owns
    them (for work spawned from it, which runs after the request has answered)."""
    _unit.set(None)
    _first_write.set(None)


def _joined(sessions: Sessions) -> RequestUnit | None:
    unit = _unit.get()
    return unit if unit is not None and unit.sessions is sessions else None


@asynccontextmanager
async def _in_unit(unit: RequestUnit) -> AsyncIterator[AsyncSession]:
    session = await unit.begin()
    try:
        yield session
    except BaseException:
        unit.failed = True
        raise


@asynccontextmanager
async def transaction(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit if the block succeeds, roll back everything if it raises (inside a
    request's unit, the block is part of it and commits with it)."""
    if (unit := _joined(sessions)) is not None:
        async with _in_unit(unit) as session:
            yield session
        return
    pending = _claim()
    try:
        async with _begun(sessions) as session:
            if pending is not None:
                await pending.write(session)
            yield session
    except BaseException:
        if pending is not None:
            pending.claimed = False  # rolled back with the block: the next unit of work takes it
        raise
    if pending is not None:
        pending.committed = True


async def commit_first_write(sessions: Sessions) -> None:
    """Commit the pending first write in a transaction of its own (when no unit of work took it)."""
    async with transaction(sessions):
        pass


@asynccontextmanager
async def _begun(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    lock = _write_locks.get(_engine_of(sessions))
    if lock is None:
        async with sessions() as session, session.begin():
            yield session
        return
    # SQLite has one writer at a time; queueing writers of this process on an asyncio lock is
    # fair and cheap, where SQLite's own busy handler sleeps and lets unlucky writers starve.
    async with lock, sessions() as session, session.begin():
        yield session


@asynccontextmanager
async def reading(sessions: Sessions) -> AsyncIterator[AsyncSession]:
    """A read-only unit of work: on SQLite it begins deferred, so it never waits for writers
    (unless a first write is pending: then it is a transaction that writes that first). Inside a
    request's unit, the block is part of it."""
    if (unit := _joined(sessions)) is not None:
        async with _in_unit(unit) as session:
            yield session
        return
    pending = _first_write.get()
    if pending is not None and not pending.claimed:
        async with transaction(sessions) as session:
            yield session
        return
    token = _read_only.set(True)
    try:
        async with sessions() as session:
            yield session
    finally:
        _read_only.reset(token)


@asynccontextmanager
async def read_connection(sessions: Sessions) -> AsyncIterator[AsyncConnection]:
    """A read-only connection for Core statements, without a Session's bookkeeping (the request
    path's caller lookup); on SQLite it begins deferred, like `reading()`. Inside a request's
    unit, it is the unit's connection."""
    if (unit := _joined(sessions)) is not None:
        async with _in_unit(unit) as session:
            yield await session.connection()
        return
    token = _read_only.set(True)
    try:
        async with sessions.kw["bind"].connect() as connection:
            yield connection
    finally:
        _read_only.reset(token)


def _engine_of(sessions: Sessions) -> Any:
    bind = sessions.kw.get("bind")
    return getattr(bind, "sync_engine", None)


def one_of(column: Any, values: Sequence[str], *, dialect: str) -> list[ColumnElement[bool]]:
    """Conditions that together select rows whose string `column` is in `values`; run each one.

    On PostgreSQL that is a single `= ANY(:array)`: one bound parameter, so the statement is
    compiled once and cached however many values there are, where an IN list renders a bind per
    value on every call. SQLite has no arrays, so it gets IN lists of SQLITE_IN_CHUNK values.
    """
    if not values:
        return []
    if dialect == "postgresql":
        return [column == any_(bindparam("one_of", list(values), type_=postgresql.ARRAY(String)))]
    return [
        column.in_(values[start : start + SQLITE_IN_CHUNK])
        for start in range(0, len(values), SQLITE_IN_CHUNK)
    ]
