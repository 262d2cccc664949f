"""The work queue over the scans and scan_runs tables (SQLite or PostgreSQL).

A claim is a lease: the item carries who holds it and until when, and an expired lease is
claimable again. The holder renews its leases while it works (DatabaseLeases.renew, the
heartbeat), so only a holder that died or lost the database loses them.

SQLite serves one process (`exclusive`): at open it voids the leases of its own earlier lives,
so a restart resumes everything at once. On PostgreSQL any number of replicas share the queue
(`exclusive=False`): a lease held by another replica is never voided (it may be alive), a
claim locks the scan's row with FOR UPDATE SKIP LOCKED so two replicas never wait on each
other for one scan, and a dead replica's scans are taken up by the others' sweeps once its
leases have expired.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from bot.adapters.database.scans import Store
from bot.core.model import Decision, ScanRequest
from bot.core.work import WorkItem

DEFAULT_LEASE_SECONDS = 60.0  # MODBOT_LEASE_SECONDS


class DatabaseWorkQueue:
    def __init__(
        self,
        store: Store,
        *,
        holder: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        exclusive: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.holder = holder or uuid.uuid4().hex[:16]
        self._lease_seconds = lease_seconds
        self._exclusive = exclusive
        self._clock = clock

    @property
    def shared(self) -> bool:
        """Other replicas work this queue too: pending work here may be theirs, in hand."""
        return not self._exclusive

    async def open(self) -> None:
        if self._exclusive:
            await self._store.drop_leases(keep=self.holder)

    async def put(
        self, requests: Iterable[ScanRequest], *, event_id: str | None = None
    ) -> list[str]:
        return await self._store.accept(requests, event_id=event_id)

    async def waiting(self) -> list[WorkItem]:
        now = self._clock()
        return [item for item in await self._store.pending() if self._free(item, now)]

    async def claim(self, scan_id: str) -> WorkItem | None:
        now = self._clock()
        return await self._store.begin_run(
            scan_id, holder=self.holder, lease_until=now + self._lease_seconds, now=now
        )

    async def release(self, scan_id: str, *, keep_lease: bool = False) -> None:
        await self._store.end_run(scan_id, keep_lease=keep_lease)

    async def retry_later(self, scan_id: str, *, delay: float, bug: bool) -> WorkItem | None:
        return await self._store.record_failure(scan_id, bug=bug, not_before=self._clock() + delay)

    async def finish(
        self,
        scan_id: str,
        *,
        sha256: str | None = None,
        decision: Decision | None = None,
        mode: str | None = None,
        error: str | None = None,
        skipped: str | None = None,
    ) -> None:
        await self._store.finish(
            scan_id, sha256=sha256, decision=decision, mode=mode, error=error, skipped=skipped
        )

    def _free(self, item: WorkItem, now: float) -> bool:
        return (
            item.holder is None
            or item.holder == self.holder
            or item.lease_until is None
            or item.lease_until <= now
        )
