"""Which scans this process holds, and in which lane: files, links and crash suspects apart.

Slack files and links wait in separate queues served by separate workers, so a link that
never answers holds a link worker, never an upload's. Scans that were running when the
process died last time wait in a third queue served by one worker, so a scan that crashes the
process does not take the crash counts of others up with it. Every scan held here (queued,
running, waiting for a retry or for its note) is tracked by id: the pipeline is idle when none
is, and the sweep leaves held scans alone.
"""

from __future__ import annotations

import asyncio

from bot.core.work import Lane


class Lanes:
    def __init__(self) -> None:
        self.files: asyncio.Queue[str] = asyncio.Queue()
        self.links: asyncio.Queue[str] = asyncio.Queue()
        self.suspects: asyncio.Queue[str] = asyncio.Queue()
        self._held: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._drained = asyncio.Event()
        self._drained.set()
        self._alerts_due: set[str] = set()
        self.alerts_clear = asyncio.Event()  # set while no alert is waiting to be posted
        self.alerts_clear.set()
        self.open = True

    def holds(self, scan_id: str) -> bool:
        return scan_id in self._held

    def put(self, scan_id: str, lane: Lane | None) -> None:
        """Queue a scan unless it is held already. `lane` None: not known yet; the file worker
        that takes it sends it on to the links if it is one."""
        if scan_id in self._held:
            return
        self._held.add(scan_id)
        self._drained.clear()
        self.queue(lane).put_nowait(scan_id)

    def move_to_links(self, scan_id: str) -> None:
        """A held scan a file worker found to be a link."""
        self.links.put_nowait(scan_id)

    def retry_in(self, delay: float, scan_id: str, lane: Lane) -> None:
        """Hold a scan and queue it after `delay` seconds (unless the pipeline stops first)."""
        self._held.add(scan_id)
        self._drained.clear()
        self._timers[scan_id] = asyncio.get_running_loop().call_later(
            max(0.0, delay), self._due, scan_id, lane
        )

    def release(self, scan_id: str) -> None:
        """The pipeline no longer holds this scan (an outcome, or left pending for later)."""
        self._held.discard(scan_id)
        self.alert_settled(scan_id)
        if not self._held:
            self._drained.set()

    def close(self) -> int:
        """Stop: release everything queued or waiting for a retry (it stays pending in the
        database for the next start). Returns how many scans that was."""
        self.open = False
        parked = 0
        for queue in (self.files, self.links, self.suspects):
            while not queue.empty():
                self.release(queue.get_nowait())
                parked += 1
        for scan_id, timer in list(self._timers.items()):
            timer.cancel()
            self.release(scan_id)
            parked += 1
        self._timers.clear()
        return parked

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def queued(self) -> int:
        return self.files.qsize() + self.links.qsize() + self.suspects.qsize()

    async def drained(self) -> None:
        """Wait until no scan is held."""
        await self._drained.wait()

    def alert_due(self, scan_id: str) -> None:
        """This scan is about to post an alert: notes wait until it is settled."""
        self._alerts_due.add(scan_id)
        self.alerts_clear.clear()

    def alert_settled(self, scan_id: str) -> None:
        """No alert is due for this scan any more (posted, or the scan is being reported)."""
        self._alerts_due.discard(scan_id)
        if not self._alerts_due:
            self.alerts_clear.set()

    def queue(self, lane: Lane | None) -> asyncio.Queue[str]:
        if lane is Lane.SUSPECT:
            return self.suspects
        return self.links if lane is Lane.LINK else self.files

    def _due(self, scan_id: str, lane: Lane) -> None:
        self._timers.pop(scan_id, None)
        if self.open:
            self.queue(lane).put_nowait(scan_id)  # still held
        else:
            self.release(scan_id)
