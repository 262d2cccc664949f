"""The hash bank as the scans see it: human verdicts by PDQ hash, looked up in memory.

Loaded from the database at start, then kept fresh by polling for rows and withdrawals newer
than the last id seen (every MODBOT_BANK_REFRESH_SECONDS, 2 by default): a verdict given on
any replica, the one that recorded it included, is matched by every replica within that time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.adapters.database.bank import BankStore
from bot.adapters.hashindex import HexHashIndex
from bot.core.pdq import MIN_QUALITY, BankMatch, ImageHashes

log = logging.getLogger(__name__)

LOAD_BATCH = 50_000


@dataclass(frozen=True)
class BankLookup:
    """The nearest confirmed violation and the nearest confirmed "no violation" in range, each
    with the sha256 of the image it was decided on (None for imported rows)."""

    violation: BankMatch | None = None
    violation_sha256: str | None = None
    fine: BankMatch | None = None


class HashBank:
    """Lookups over an in-memory index of the bank's matchable rows (quality >= 50)."""

    def __init__(self, store: BankStore, *, distance: int, index: HexHashIndex | None = None):
        self._store = store
        self.distance = distance
        self._index = index if index is not None else HexHashIndex()  # an empty one is falsy
        self._last_row = 0
        self._last_withdrawal = 0
        self._refreshing = asyncio.Lock()

    def __len__(self) -> int:
        """Hashes indexed (withdrawn ones included until the next start)."""
        return len(self._index)

    async def refresh(self) -> int:
        """Take in rows and withdrawals newer than the last seen; returns rows added."""
        async with self._refreshing:
            if self._last_row == 0 and self._last_withdrawal == 0:
                return await self._load()
            added = 0
            batch = self._index.batch()
            while True:
                rows = await self._store.rows_after(self._last_row, LOAD_BATCH)
                if not rows:
                    break
                usable = [row for row in rows if row.quality >= MIN_QUALITY]
                if usable:  # a row with a framed picture is found by either hash
                    ids = [r.id for r in usable] + [r.id for r in usable if r.inner]
                    hexes = [r.pdq for r in usable] + [r.inner for r in usable if r.inner]
                    batch.add_hex(ids, hexes)
                added += len(usable)
                self._last_row = rows[-1].id
            await asyncio.to_thread(batch.commit)  # the merge may take seconds at 1e6
            withdrawals = await self._store.withdrawals_after(self._last_withdrawal)
            if withdrawals:
                self._index.withdraw([entry for _, entry in withdrawals])
                self._last_withdrawal = withdrawals[-1][0]
            return added

    async def _load(self) -> int:
        """The first refresh: the whole bank in one pass (withdrawn rows are gone already)."""
        batch = self._index.batch()
        last, rows = await self._store.load_all(batch.add_hex, min_quality=MIN_QUALITY)
        await asyncio.to_thread(batch.commit)
        self._last_row = last
        withdrawals = await self._store.withdrawals_after(0)
        if withdrawals:
            self._last_withdrawal = withdrawals[-1][0]
        return rows

    async def keep_fresh(self, interval: float) -> None:
        """Poll for other replicas' verdicts, imports and withdrawals (a supervised task)."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    async def lookup(self, hashes: ImageHashes) -> BankLookup:
        """The nearest verdicts within the match distance, over all 8 rotations and mirror
        images; nothing for an image of low quality."""
        if not hashes.matchable or not len(self._index):
            return BankLookup()
        found = await asyncio.to_thread(self._index.within_hex, list(hashes.queries), self.distance)
        if not found:
            return BankLookup()
        rows = await self._store.entries(entry for entry, _ in found)
        violation: tuple[BankMatch, str | None] | None = None
        fine: BankMatch | None = None
        for entry_id, bits in found:  # nearest first
            row = rows.get(entry_id)
            if row is None:
                continue  # withdrawn meanwhile
            entry, sha256 = row
            if entry.violation and violation is None:
                violation = (BankMatch(entry_id, entry, bits), sha256)
            elif not entry.violation and fine is None:
                fine = BankMatch(entry_id, entry, bits)
        if violation is None:
            return BankLookup(fine=fine)
        return BankLookup(violation=violation[0], violation_sha256=violation[1], fine=fine)

    async def forget(self, sha256: str) -> int:
        """An overturned appeal: the violation verdicts on these bytes leave the bank, here at
        once and on other replicas at their next poll. Returns how many rows went."""
        removed = await self._store.withdraw(sha256=sha256)
        await self.refresh()
        return removed

    async def forget_scan(self, scan_id: str) -> int:
        """The same, naming the image by the scan whose verdict it was."""
        removed = await self._store.withdraw(scan_id=scan_id)
        await self.refresh()
        return removed
