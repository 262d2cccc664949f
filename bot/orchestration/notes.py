"""The "Could not scan" outbox: notes about automatic scans wait for alerts and are summarised.

Slack allows about one chat.postMessage per second per channel, and alerts and notes share the
alerts channel. So alerts go first (a note waits while an alert is due, for a bounded time),
notes are posted at most once per interval, and the notes that gathered meanwhile go out as
one summarised message: a flood of dead links costs one post, not dozens. A note is never
dropped silently: its scan is finished only once the note (or the summary naming it) was
posted, or, after the retry limit or a permanent Slack error, logged as an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.adapters.slack import SlackUnavailable
from bot.core import messages
from bot.core.errors import ScanFailed
from bot.core.messages import SlackMessage
from bot.core.model import ScanRequest
from bot.core.retry import RetryPolicy

log = logging.getLogger(__name__)

# However long alerts keep coming, a note waits at most this long for them.
ALERTS_FIRST_MAX_WAIT = 60.0


@dataclass(frozen=True)
class Note:
    scan_id: str
    error: ScanFailed
    request: ScanRequest


class NoteOutbox:
    """Queues notes; `run` posts them (a task for the life of the pipeline)."""

    def __init__(
        self,
        *,
        post: Callable[[SlackMessage], Awaitable[None]],
        posted: Callable[[Sequence[Note]], Awaitable[None]],
        given_up: Callable[[Sequence[Note], str], Awaitable[None]],
        released: Callable[[Sequence[Note]], None],
        alerts_clear: asyncio.Event,
        interval: float,
        retry: RetryPolicy,
    ) -> None:
        self._post = post
        self._posted = posted
        self._given_up = given_up
        self._released = released
        self._alerts_clear = alerts_clear
        self._interval = interval
        self._retry = retry
        self._waiting: list[Note] = []
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()
        self._last_post = -float("inf")

    def add(self, note: Note) -> None:
        self._waiting.append(note)
        self._wake.set()

    def hurry(self) -> None:
        """Shutting down: post what is waiting now, without pacing or waiting for alerts."""
        self._hurry.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            batch: list[Note] = []
            try:
                await self._pace()
                batch = self._take()
                if batch:
                    await self._deliver(batch)
                    self._last_post = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:  # the outbox outlives any bug; the notes' scans stay pending
                log.exception("posting Could not scan notes failed")
                self._released(batch)

    async def _pace(self) -> None:
        """At most one note per interval; alerts due first (each wait ends early on hurry)."""
        pause = self._last_post + self._interval - time.monotonic()
        if pause > 0:
            await self._unless_hurried(asyncio.sleep(pause), pause)
        await self._unless_hurried(self._alerts_clear.wait(), ALERTS_FIRST_MAX_WAIT)

    async def _unless_hurried(self, work: Awaitable[object], within: float) -> None:
        waits = [asyncio.ensure_future(work), asyncio.ensure_future(self._hurry.wait())]
        try:
            await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)

    def _take(self) -> list[Note]:
        batch, self._waiting = self._waiting, []
        self._wake.clear()
        return batch

    async def _deliver(self, batch: list[Note]) -> None:
        first_failure: float | None = None
        attempt = 0
        while True:
            message = messages.could_not_scan_all([(n.error, n.request) for n in batch])
            try:
                await self._post(message)
            except SlackUnavailable as exc:
                now = time.time()
                first_failure = first_failure or now
                if not exc.transient or self._retry.exhausted(first_failure, now):
                    await self._given_up(batch, str(exc))
                    return
                attempt += 1
                delay = self._retry.delay(attempt, retry_after=exc.retry_after)
                log.info("note for %d scans: %s; retry in %.1fs", len(batch), exc, delay)
                await asyncio.sleep(delay)
                batch += self._take()  # notes that came meanwhile join this one
                continue
            await self._posted(batch)
            return
