"""Deletes what MODBOT_RETENTION_DAYS lets go: event ids, finished scans, stored detections.

Kept whatever their age, because they are the record or something still reads them: reviews
and votes (verdicts), the audit log, and alerts. Alerts stay because every reader of a review
needs its alert (the verdict reply goes in the alert's thread and updates its text, a vote
checks the alert's buttons and takes its labels, a re-post links to the first alert of the same
bytes), and they are few (only images judged review or flag). A finished scan is read by
nothing once it has ended (the pending sweep and crash counts look at pending scans only), so
deleting it breaks no alert or review; its scan_runs row goes with it.

Rows go in small batches, each its own short transaction with a pause after it, so intake never
waits long behind the job: on SQLite each batch takes its turn with the other writers, intake
first (WriteGate); on PostgreSQL the rows a batch deletes are locked, never whole tables. One
replica prunes at a time (a session-level pg_try_advisory_lock; the others skip the run), and
each delete repeats its age condition, so a row changed meanwhile (a detection saved again) is
kept and two runs never delete a row twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.adapters.database.scans import Store
from bot.adapters.database.schema import detections, events, scan_runs, scans

# pg_try_advisory_lock key of the job (the bytes of "prune"; the migration lock is "modbot").
ADVISORY_LOCK = 0x7072756E65
BATCH_ROWS = 500
BATCH_PAUSE_SECONDS = 0.2
FINISHED = ("done", "failed", "skipped")


@dataclass(frozen=True)
class _Kind:
    """One kind of row retention deletes: its table, key, and what makes it old enough."""

    table: Table
    key: Column[Any]
    condition: Callable[[float], Any]
    companions: Sequence[tuple[Table, Column[Any]]] = ()  # rows deleted along, by the same key


KINDS = (
    _Kind(events, events.c.event_id, lambda cutoff: events.c.received_at < cutoff),
    _Kind(
        scans,
        scans.c.id,
        lambda cutoff: scans.c.status.in_(FINISHED) & (scans.c.updated_at < cutoff),
        companions=((scan_runs, scan_runs.c.scan_id),),
    ),
    _Kind(detections, detections.c.sha256, lambda cutoff: detections.c.created_at < cutoff),
)


Batches = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Retention:
    """bot.orchestration.retention.Pruner on the store's database."""

    def __init__(
        self, store: Store, *, batch: int = BATCH_ROWS, pause: float = BATCH_PAUSE_SECONDS
    ) -> None:
        self._store = store
        self._batch = batch
        self._pause = pause

    async def prune(self, cutoff: float) -> dict[str, int] | None:
        """Delete rows older than `cutoff` (epoch seconds), batch by batch. None when another
        replica is pruning now (it does the work; this run is skipped)."""
        async with self._transactions() as batches:
            if batches is None:
                return None
            pruned = {kind.table.name: 0 for kind in KINDS}
            for kind in KINDS:
                while True:
                    async with batches() as conn:
                        count = await _delete_batch(conn, kind, cutoff, self._batch)
                    pruned[kind.table.name] += count
                    if count < self._batch:
                        break
                    await asyncio.sleep(self._pause)
            return pruned

    @asynccontextmanager
    async def _transactions(self) -> AsyncIterator[Batches | None]:
        """A factory of short write transactions for this run, or None when the job's lock is
        held elsewhere. On PostgreSQL they run on the connection that holds the lock."""
        engine = self._store.engine
        if engine.dialect.name != "postgresql":
            yield self._store.bulk_write
            return
        async with engine.connect() as conn:
            taken = (
                await conn.execute(text(f"SELECT pg_try_advisory_lock({ADVISORY_LOCK})"))
            ).scalar_one()
            await conn.commit()
            if not taken:
                yield None
                return
            try:

                @asynccontextmanager
                async def batch() -> AsyncIterator[AsyncConnection]:
                    async with conn.begin():
                        yield conn

                yield batch
            finally:
                await conn.execute(text(f"SELECT pg_advisory_unlock({ADVISORY_LOCK})"))
                await conn.commit()


async def _delete_batch(conn: AsyncConnection, kind: _Kind, cutoff: float, limit: int) -> int:
    old = kind.condition(cutoff)
    query = select(kind.key).where(old).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    keys = list((await conn.execute(query)).scalars())
    if not keys:
        return 0
    deleted = list(
        (
            await conn.execute(
                kind.table.delete().where(kind.key.in_(keys), old).returning(kind.key)
            )
        ).scalars()
    )
    for table, column in kind.companions:
        if deleted:
            await conn.execute(table.delete().where(column.in_(deleted)))
    return len(deleted)
