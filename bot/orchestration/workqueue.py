"""The work-queue port: where accepted scans wait, durably, until one worker carries each to
its outcome. The database implementation is bot/adapters/database/workqueue.py; the fake is in
tests/fakes/ports.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from bot.core.model import Decision, ScanRequest
from bot.core.work import WorkItem


class WorkQueue(Protocol):
    holder: str  # who this process is when it claims work

    @property
    def shared(self) -> bool:
        """Other processes (replicas) work this queue too."""

    async def open(self) -> None:
        """Before the first claim (a single-process queue voids leases of earlier lives)."""

    async def put(
        self, requests: Iterable[ScanRequest], *, event_id: str | None = None
    ) -> list[str]:
        """Record new work durably (before Slack's ack); the ids of the scans that are new. A
        redelivered event id or a dedup key already taken adds nothing."""

    async def waiting(self) -> list[WorkItem]:
        """Pending items no one else holds a live lease on, oldest first (their retry clock
        may still be running: `not_before`)."""

    async def claim(self, scan_id: str) -> WorkItem | None:
        """Lease the item to this holder and count a start before the work (a start that never
        ends is a crash). None: finished meanwhile, or leased to another holder."""

    async def release(self, scan_id: str, *, keep_lease: bool = False) -> None:
        """The run ended without an outcome and without a crash (shutdown, a lane change, or
        waiting for its note: `keep_lease`)."""

    async def retry_later(self, scan_id: str, *, delay: float, bug: bool) -> WorkItem | None:
        """A transient failure (`bug`: an unexpected exception) ended the run: counted, the
        retry clock started, the lease given up. The updated item."""

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
        """The one outcome: decided, reported (error) or skipped."""
