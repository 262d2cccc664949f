"""Database plumbing shared by the stores: the engine, one writer at a time, portable inserts."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import SingletonThreadPool

from bot.schema import audit


def make_engine(url: str) -> AsyncEngine:
    if not url.startswith("sqlite"):
        return create_async_engine(url)
    # Readers (history look-ups by many workers) each hold a connection; writes are serialised
    # by WriteGate, so the pool only has to cover concurrent reads.
    engine = create_async_engine(url, pool_size=10, max_overflow=30)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def sync_intake_engine(engine: AsyncEngine) -> Engine | None:
    """For SQLite, a synchronous engine on the same file, used by intake under the WriteGate.

    Slack waits for intake. A few rows in WAL mode take well under a millisecond written
    directly, while every statement through aiosqlite is a hand-off to its thread that must
    then wait for a turn on a busy event loop. The gate guarantees no other writer meanwhile.
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    sync = create_engine(engine.url.set(drivername="sqlite"), poolclass=SingletonThreadPool)
    event.listen(sync, "connect", _sqlite_pragmas)
    return sync


class WriteGate:
    """One writer at a time, first come first served, urgent writers (Slack waits) first.

    SQLite allows a single writer; left to itself it makes the others sleep and retry with
    growing pauses (up to 100 ms each), which is what slowed acks and scans under load.
    Queueing writers here instead hands the lock over with no sleeping at all.
    """

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._held:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            (self._urgent if urgent else self._normal).append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed the lock just as we were cancelled: pass it on
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # ownership passes on; _held stays True
                    return
        self._held = False


class NoGate(WriteGate):
    """Databases with concurrent writers (PostgreSQL) need no gate."""

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        yield


def gate_for(engine: AsyncEngine) -> WriteGate:
    return WriteGate() if engine.dialect.name == "sqlite" else NoGate()


@asynccontextmanager
async def writing(
    engine: AsyncEngine, gate: WriteGate, *, urgent: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A write transaction, taken in turn."""
    async with gate.hold(urgent=urgent), engine.begin() as conn:
        yield conn


def insert_ignoring_duplicates(dialect: str) -> Callable[[Table], Any]:
    """INSERT ... ON CONFLICT DO NOTHING, which both SQLite and PostgreSQL speak."""
    if dialect == "postgresql":
        return lambda table: postgresql_insert(table).on_conflict_do_nothing()
    return lambda table: sqlite_insert(table).on_conflict_do_nothing()


async def write_audit(
    conn: AsyncConnection,
    scan_id: str | None,
    action: str,
    actor: str | None,
    detail: dict[str, Any],
) -> None:
    clean = {key: value for key, value in detail.items() if value is not None}
    await conn.execute(
        insert(audit).values(
            at=time.time(), scan_id=scan_id, action=action, actor=actor, detail=clean
        )
    )


def _sqlite_pragmas(dbapi_conn: Connection, _record: object) -> None:
    # WAL lets readers proceed while a writer commits; the busy timeout covers another
    # process (a second modbot, an operator's sqlite3 shell) holding the write lock.
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
