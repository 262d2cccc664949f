"""The hash bank's rows (PRODUCT §11): verdicts with their PDQ hashes, imports, withdrawals.

A verdict enters the bank in the verdict's own transaction (`bank_verdict`, called by the
review store), so whichever backend decided (Slack votes, A2I) the bank follows the review
ledger exactly. Replicas follow the bank by id: rows are only added, and a withdrawal is a row
of its own, so "everything after the last id I saw" is the whole change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, create_engine, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from bot.adapters.database.engine import write_audit
from bot.adapters.database.scans import Store
from bot.adapters.database.schema import bank_withdrawals, hash_bank, scans
from bot.core.pdq import MIN_QUALITY, BankEntry, ImageHashes
from bot.core.verdict import Verdict


@dataclass(frozen=True)
class IndexRow:
    """What the in-memory index needs of a row: the rest is read when a row matches."""

    id: int
    pdq: str
    quality: int
    inner: str | None


async def bank_verdict(conn: AsyncConnection, scan_id: str, verdict: Verdict) -> None:
    """Put a verdict on a hashed image in the bank (inside the verdict's transaction)."""
    row = (
        await conn.execute(
            select(scans.c.pdq, scans.c.pdq_quality, scans.c.pdq_inner, scans.c.sha256).where(
                scans.c.id == scan_id
            )
        )
    ).first()
    if row is None or row.pdq is None:
        return  # not hashed (an image PDQ could not read, or scanned before hashing existed)
    await conn.execute(
        insert(hash_bank).values(
            pdq=row.pdq,
            quality=row.pdq_quality or 0,
            pdq_inner=row.pdq_inner,
            violation=verdict.violation,
            labels=list(verdict.labels),
            first_seen=time.time(),
            scan_id=scan_id,
            sha256=row.sha256,
        )
    )


class BankStore:
    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._write = store.write

    async def save_hashes(self, scan_id: str, hashes: ImageHashes) -> None:
        """Keep the scan's hash with it, before any review of it can be decided."""
        async with self._write() as conn:
            await conn.execute(
                update(scans)
                .where(scans.c.id == scan_id)
                .values(
                    pdq=hashes.pdq,
                    pdq_quality=hashes.quality,
                    pdq_inner=hashes.trimmed[0] if hashes.trimmed else None,
                )
            )

    async def rows_after(self, last_id: int, limit: int) -> Sequence[IndexRow]:
        """Rows with an id above `last_id`, oldest first (the index loads and follows these)."""
        query = (
            select(hash_bank.c.id, hash_bank.c.pdq, hash_bank.c.quality, hash_bank.c.pdq_inner)
            .where(hash_bank.c.id > last_id)
            .order_by(hash_bank.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = await conn.execute(query)
            return [IndexRow(r.id, r.pdq, r.quality, r.pdq_inner) for r in rows]

    async def load_all(self, add: AddHashes, *, min_quality: int) -> tuple[int, int]:
        """Every row of at least `min_quality`, handed to `add(ids, hashes)` in chunks (both
        hashes of a framed picture under the same id); returns the last id read and how many
        rows were handed over.

        The start-up load: read with a synchronous connection in a worker thread, straight from
        the driver, since a million rows through the async driver (a thread hand-off per batch,
        SQLAlchemy rows, dataclasses) took over half a minute where this takes seconds.
        """
        engine = bulk_engine(self._engine)
        if engine is None:
            return await self._load_all_async(add, min_quality=min_quality)
        try:
            return await asyncio.to_thread(_load_sync, engine, add, min_quality)
        finally:
            engine.dispose()

    async def _load_all_async(self, add: AddHashes, *, min_quality: int) -> tuple[int, int]:
        last = count = 0
        while rows := await self.rows_after(last, 50_000):
            usable = [row for row in rows if row.quality >= min_quality]
            _add_rows(add, [(r.id, r.pdq, r.inner) for r in usable])
            count += len(usable)
            last = rows[-1].id
        return last, count

    async def withdrawals_after(self, last_id: int) -> Sequence[tuple[int, int]]:
        """(withdrawal id, entry id) above `last_id`, oldest first."""
        query = (
            select(bank_withdrawals.c.id, bank_withdrawals.c.entry_id)
            .where(bank_withdrawals.c.id > last_id)
            .order_by(bank_withdrawals.c.id)
        )
        async with self._engine.connect() as conn:
            return [(r.id, r.entry_id) for r in await conn.execute(query)]

    async def entries(self, ids: Iterable[int]) -> dict[int, tuple[BankEntry, str | None]]:
        """Rows by id, with the image's sha256 where known."""
        wanted = list(ids)
        if not wanted:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(hash_bank).where(hash_bank.c.id.in_(wanted)))
            return {row.id: (_entry(row), row.sha256) for row in rows}

    async def withdraw(self, *, sha256: str | None = None, scan_id: str | None = None) -> int:
        """Take the violation verdicts on an image out of the bank (an overturned appeal);
        returns how many rows went. Every replica drops them at its next refresh."""
        if (sha256 is None) == (scan_id is None):
            raise ValueError("name the image by exactly one of sha256 or scan_id")
        which = (
            hash_bank.c.sha256 == sha256 if sha256 is not None else hash_bank.c.scan_id == scan_id
        )
        condition = and_(which, hash_bank.c.violation.is_(True))
        async with self._write() as conn:
            ids = [r.id for r in await conn.execute(select(hash_bank.c.id).where(condition))]
            if not ids:
                return 0
            await conn.execute(delete(hash_bank).where(hash_bank.c.id.in_(ids)))
            now = time.time()
            await conn.execute(
                insert(bank_withdrawals), [{"entry_id": entry, "at": now} for entry in ids]
            )
            await write_audit(
                conn, scan_id, "bank_withdrawn", None, {"sha256": sha256, "entries": ids}
            )
            return len(ids)

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(hash_bank))).scalar_one()
            )

    async def export(self, batch: int = 1000) -> AsyncIterator[BankEntry]:
        """Every row, oldest first, read in batches."""
        last = 0
        while True:
            query = select(hash_bank).where(hash_bank.c.id > last).order_by(hash_bank.c.id)
            async with self._engine.connect() as conn:
                rows = list(await conn.execute(query.limit(batch)))
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            last = rows[-1].id

    async def import_entries(self, entries: Sequence[BankEntry]) -> int:
        """Add imported rows in one transaction (all or none); rows whose hash and verdict are
        already in the bank are skipped. Returns how many were added."""
        async with self._write() as conn:
            present = {
                (r.pdq, bool(r.violation))
                for r in await conn.execute(select(hash_bank.c.pdq, hash_bank.c.violation))
            }
            new: list[dict[str, Any]] = []
            for entry in entries:
                key = (entry.pdq, entry.violation)
                if key in present:
                    continue
                present.add(key)
                new.append(
                    {
                        "pdq": entry.pdq,
                        "quality": entry.quality,
                        "violation": entry.violation,
                        "labels": list(entry.labels),
                        "first_seen": entry.first_seen,
                    }
                )
            for start in range(0, len(new), 5000):
                await conn.execute(insert(hash_bank), new[start : start + 5000])
            await write_audit(conn, None, "bank_imported", None, {"rows": len(new)})
            return len(new)

    async def unpushed(self, limit: int = 50) -> Sequence[tuple[int, str]]:
        """Violations decided here and not yet pushed to a partner: (id, pdq)."""
        query = (
            select(hash_bank.c.id, hash_bank.c.pdq)
            .where(
                and_(
                    hash_bank.c.violation.is_(True),
                    hash_bank.c.scan_id.is_not(None),
                    hash_bank.c.pushed_at.is_(None),
                    hash_bank.c.quality >= MIN_QUALITY,  # a weak hash would only mislead others
                )
            )
            .order_by(hash_bank.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [(r.id, r.pdq) for r in await conn.execute(query)]

    async def claim_push(self, entry_id: int) -> bool:
        """Take one row's push for this replica; exactly one replica gets True."""
        async with self._write() as conn:
            changed = await conn.execute(
                update(hash_bank)
                .where(and_(hash_bank.c.id == entry_id, hash_bank.c.pushed_at.is_(None)))
                .values(pushed_at=time.time())
            )
            return bool(changed.rowcount)

    async def release_push(self, entry_id: int) -> None:
        """The push failed: leave it for a later attempt."""
        async with self._write() as conn:
            await conn.execute(
                update(hash_bank).where(hash_bank.c.id == entry_id).values(pushed_at=None)
            )


def _entry(row: Any) -> BankEntry:
    return BankEntry(
        pdq=row.pdq,
        quality=int(row.quality),
        violation=bool(row.violation),
        labels=tuple(str(label) for label in row.labels or ()),
        first_seen=float(row.first_seen),
        scan_id=row.scan_id,
    )


AddHashes = Callable[[list[int], list[str]], None]
LOAD_CHUNK = 100_000


def bulk_engine(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine on the same database (psycopg 3 speaks both; SQLite gets pysqlite),
    or None for an in-memory SQLite database, which another connection would not see."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        url = url.set(drivername="sqlite")
    return create_engine(url, poolclass=NullPool)


def _load_sync(engine: Engine, add: AddHashes, min_quality: int) -> tuple[int, int]:
    query = (
        select(hash_bank.c.id, hash_bank.c.pdq, hash_bank.c.pdq_inner)
        .where(hash_bank.c.quality >= min_quality)
        .order_by(hash_bank.c.id)
    )
    count = 0
    with engine.connect() as conn:
        last = int(conn.execute(select(func.coalesce(func.max(hash_bank.c.id), 0))).scalar_one())
        # The driver's own cursor: SQLAlchemy's row objects doubled the time of a 1e6 load.
        sql = str(
            query.where(hash_bank.c.id <= last).compile(
                dialect=engine.dialect, compile_kwargs={"literal_binds": True}
            )
        )
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
            while chunk := cursor.fetchmany(LOAD_CHUNK):
                _add_rows(add, chunk)
                count += len(chunk)
        finally:
            cursor.close()
    return last, count


def _add_rows(add: AddHashes, rows: list[tuple[int, str, str | None]]) -> None:
    if not rows:
        return
    ids = [row[0] for row in rows]
    hashes = [row[1] for row in rows]
    framed = [(row[0], row[2]) for row in rows if row[2]]
    add(ids + [entry for entry, _ in framed], hashes + [inner for _, inner in framed if inner])
