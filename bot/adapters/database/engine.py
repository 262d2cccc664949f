"""Database plumbing shared by the stores: URLs, engines, one SQLite writer at a time, portable
inserts."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import URL, Engine, Table, create_engine, event, insert, make_url
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.adapters.database.schema import audit

# How long opening a PostgreSQL connection may take before it counts as unreachable (libpq's
# connect_timeout; a `?connect_timeout=N` in DATABASE_URL wins). Without it a server that is
# gone without a reset (a failed-over host, a dropped route) hangs /healthz and the start.
CONNECT_TIMEOUT_SECONDS = 5

# DATABASE_URL schemes and the async driver each one runs on.
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",  # Heroku's spelling
    "postgresql+psycopg": "postgresql+psycopg",
}


def async_url(database_url: str) -> str:
    """DATABASE_URL as operators write it, as the URL of SQLAlchemy's async driver for it."""
    scheme, separator, rest = database_url.partition(":")
    driver = _DRIVERS.get(scheme.lower())
    if not separator or driver is None:
        raise ValueError(
            "must be sqlite:///path.db, postgresql://user:password@host:5432/name or postgres://..."
        )
    return f"{driver}:{rest}"


def masked(url: str | URL) -> str:
    """A database URL fit for a log line or an error message: the password replaced by ***."""
    try:
        parsed = make_url(url)
        plain = parsed.set(drivername=parsed.get_backend_name())  # as operators write it
        return plain.render_as_string(hide_password=True)
    except Exception:  # unparseable: say nothing that could be a password
        return "(unparseable URL)"


def make_engine(url: str | URL, **options: Any) -> AsyncEngine:
    url = make_url(url)
    if url.get_backend_name() == "postgresql":
        return create_async_engine(url, **_postgresql_options(url, options))
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, **options)
    # Readers (history look-ups by many workers) each hold a connection; writes are serialised
    # by WriteGate, so the pool only has to cover concurrent reads.
    in_memory = url.database in (None, "", ":memory:")  # one shared connection (StaticPool)
    if "poolclass" not in options and not in_memory:
        options = {"pool_size": 10, "max_overflow": 30, **options}
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _postgresql_options(url: URL, options: dict[str, Any]) -> dict[str, Any]:
    timeout = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if "poolclass" in options:
        return {"connect_args": timeout, **options}
    return {
        "connect_args": timeout,
        # A pooled connection may have died with a server restart or fail-over: test it on
        # checkout so work resumes on a fresh one instead of failing once per stale connection.
        "pool_pre_ping": True,
        # Concurrent writers need no gate here, so workers hold connections at once; PostgreSQL's
        # default of 100 connections leaves room for several replicas at 20 each.
        "pool_size": 10,
        "max_overflow": 10,
        **options,
    }


def sync_intake_engine(engine: AsyncEngine) -> Engine | None:
    """For SQLite, a synchronous engine on the same file, used on the event loop's thread by
    intake and by the stores' short reads and writes (InlineConnection).

    A few rows in WAL mode take well under a millisecond read or written directly, while every
    statement through aiosqlite is several hand-offs to its thread and back (cursor, execute,
    fetch, close, commit), each waking the event loop: that was most of a scan's CPU. Writers
    still take turns through the WriteGate. Its connections stay on the loop's thread; a pool
    (not one connection per thread) so that a read never shares a connection with a write.
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    sync = create_engine(engine.url.set(drivername="sqlite"), pool_size=5, max_overflow=20)
    event.listen(sync, "connect", _sqlite_pragmas)
    return sync


class InlineConnection:
    """The AsyncConnection methods the stores call, answered at once by a synchronous SQLite
    connection on the event loop's thread (see sync_intake_engine).

    Every store transaction is a few statements with nothing but database calls in between, so
    none of them waits on anything while it holds its connection. Results are read inside the
    `async with` block, as with AsyncConnection.
    """

    def __init__(self, conn: Connection) -> None:
        self.sync_connection = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync_connection.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync_connection.scalar(statement, parameters)

    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(self.sync_connection, *args, **kwargs)


@asynccontextmanager
async def inline_reading(sync: Engine) -> AsyncIterator[AsyncConnection]:
    """A read on the loop's thread; in WAL mode readers never wait for the writer."""
    with sync.connect() as conn:
        # Typed as what it stands in for: the stores' code is the same on every database.
        yield cast(AsyncConnection, InlineConnection(conn))


@asynccontextmanager
async def inline_writing(
    sync: Engine, gate: WriteGate, *, urgent: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A write transaction on the loop's thread, taken in turn."""
    async with gate.hold(urgent=urgent):
        with sync.begin() as conn:
            yield cast(AsyncConnection, InlineConnection(conn))


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


_AUDIT = insert(audit)  # built once: every scan writes a few of these


async def write_audit(
    conn: AsyncConnection,
    scan_id: str | None,
    action: str,
    actor: str | None,
    detail: dict[str, Any],
) -> None:
    clean = {key: value for key, value in detail.items() if value is not None}
    values = {"at": time.time(), "scan_id": scan_id, "action": action, "actor": actor}
    await conn.execute(_AUDIT, {**values, "detail": clean})


def _sqlite_pragmas(dbapi_conn: Connection, _record: object) -> None:
    # WAL lets readers proceed while a writer commits; the busy timeout covers another
    # process (a second modbot, an operator's sqlite3 shell) holding the write lock.
    # The busy timeout comes first: switching a new file to WAL needs the lock too.
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@functools.cache
def upsert_statement(
    dialect: str, table: Table, key: tuple[str, ...], columns: tuple[str, ...]
) -> Any:
    """upsert() without its values, built once per shape: execute it with the row's values."""
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
    changed = {name: statement.excluded[name] for name in columns if name not in key}
    return statement.on_conflict_do_update(index_elements=list(key), set_=changed)


def upsert(dialect: str, table: Table, key: Sequence[str], values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE: one atomic statement, where an update followed
    by an insert would race between two PostgreSQL transactions (no WriteGate there)."""
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
    statement = statement.values(**values)
    changed = {name: statement.excluded[name] for name in values if name not in key}
    return statement.on_conflict_do_update(index_elements=list(key), set_=changed)
