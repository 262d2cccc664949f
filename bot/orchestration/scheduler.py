"""The scan scheduler: lanes, workers, retries and the sweep, over the WorkQueue port.

Every accepted scan ends in exactly one recorded outcome: decided, skipped, or reported as
"Could not scan" (to whoever asked, or in a paced note). Transient failures are retried with
the one retry rule; a scan whose starts keep taking the process down is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bot.adapters.slack import Notifier, SlackUnavailable
from bot.core import messages
from bot.core.errors import FetchFailed, ScanFailed
from bot.core.metrics import NO_METRICS, Metrics
from bot.core.retry import RetryPolicy
from bot.core.work import Lane, WorkItem, is_link
from bot.orchestration.lanes import Lanes
from bot.orchestration.notes import Note, NoteOutbox
from bot.orchestration.scan import NotAnImage, Outcome
from bot.orchestration.workqueue import WorkQueue

log = logging.getLogger(__name__)

RunScan = Callable[[WorkItem], Awaitable[Outcome]]


@dataclass(frozen=True)
class SchedulerConfig:
    workers: int = 8  # Slack files and on-demand scans
    link_workers: int = 4  # links posted in chat: their own pool, so they never hold up uploads
    # Transient failures: retried with backoff, reported once the limit has passed.
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    crash_limit: int = 3  # starts that never ended (the process died) before giving up
    bug_limit: int = 3  # unexpected exceptions retried before they are reported
    note_interval: float = 5.0  # at most one "Could not scan" note per this many seconds
    # Look for pending scans nothing holds (forgotten here, or a dead replica's whose leases ran
    # out); None: retry.cap.
    sweep_interval: float | None = None


class Scheduler:
    """Takes scans from the work queue and carries each to exactly one recorded outcome."""

    def __init__(
        self,
        *,
        queue: WorkQueue,
        run: RunScan,
        notifier: Notifier,
        lanes: Lanes,
        config: SchedulerConfig,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._queue = queue
        self._metrics = metrics
        self._run_scan = run
        self._notifier = notifier
        self._lanes = lanes
        self._config = config
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._notes = NoteOutbox(
            post=notifier.note,
            posted=self._notes_posted,
            given_up=self._notes_given_up,
            released=self._notes_released,
            alerts_clear=lanes.alerts_clear,
            interval=config.note_interval,
            retry=config.retry,
        )

    @property
    def accepting(self) -> bool:
        return self._lanes.open

    @property
    def queued(self) -> int:
        return self._lanes.queued

    def put(self, scan_ids: Sequence[str], lane: Lane | None) -> None:
        """New scans, already recorded in the work queue."""
        for scan_id in scan_ids:
            self._lanes.put(scan_id, lane)

    async def start(self) -> None:
        """Take up accepted work left unfinished by a crash or a restart, then start workers."""
        await self._queue.open()
        for item in await self._queue.waiting():
            self._resume(item)
        lanes = self._lanes
        workers = [(Lane.FILE, lanes.files)] * self._config.workers
        workers += [(Lane.LINK, lanes.links)] * self._config.link_workers
        workers += [(Lane.SUSPECT, lanes.suspects)]
        self._tasks = [
            asyncio.create_task(self._worker(lane, queue), name=f"scan-{lane.value}-{n}")
            for n, (lane, queue) in enumerate(workers)
        ]
        self._tasks.append(asyncio.create_task(self._notes.run(), name="scan-notes"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="scan-sweep"))

    async def stop(self, grace: float = 20.0) -> None:
        """Stop taking work; let scans in progress finish for up to `grace` seconds.

        Whatever is still queued, running or waiting for a retry then stays pending in the work
        queue and is taken up at the next start, so nothing accepted is lost.
        """
        lanes = self._lanes
        parked = lanes.close()  # queued or waiting for a retry: left for the next start
        self._notes.hurry()
        log.info(
            "stopping: %d scans in progress, %d parked; grace %.1fs", lanes.held, parked, grace
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await lanes.drained()
        if lanes.held:
            log.info("stopped with %d scans unfinished; they resume at the next start", lanes.held)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def idle(self) -> None:
        """Wait until nothing is queued, running, waiting for a retry or for its note."""
        await self._lanes.drained()

    def _resume(self, item: WorkItem) -> None:
        """Hold a waiting item here: queued now, or when its retry clock runs out."""
        if self._lanes.holds(item.scan_id):
            return
        wait = (item.not_before or 0.0) - self._clock()
        if wait > 0:
            self._lanes.retry_in(wait, item.scan_id, item.lane)
        else:
            self._lanes.put(item.scan_id, item.lane)

    async def _worker(self, lane: Lane, queue: asyncio.Queue[str]) -> None:
        while True:
            scan_id = await queue.get()
            settled = True
            try:
                settled = await self._run(scan_id, sort=lane is Lane.FILE)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker; the sweep picks the scan up
                log.exception("scan %s crashed", scan_id)
            finally:
                if settled:
                    self._lanes.release(scan_id)

    async def _sweep(self) -> None:
        """Take up pending scans nothing here is working on, so none stays pending in a live
        process whatever went wrong (the retry limit still ends each of them)."""
        interval = self._config.sweep_interval or self._config.retry.cap
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for forgotten scans failed")

    async def sweep_once(self) -> None:
        for item in await self._queue.waiting():
            if self.accepting and not self._lanes.holds(item.scan_id):
                if self._queue.shared:
                    # Another replica's backlog, or a dead replica's scan whose lease ran out:
                    # both are ours to help with; a claim decides who runs it.
                    log.debug("scan %s pending and unleased; queued here too", item.scan_id)
                else:
                    log.warning(
                        "scan %s was pending with nothing on it; queued again", item.scan_id
                    )
                self._resume(item)

    # -- one run ----------------------------------------------------------------------------

    async def _run(self, scan_id: str, *, sort: bool) -> bool:
        """One run of one scan. True: the scan left this process (an outcome, nothing to do, or
        another holder has it); False: still held here (a retry is scheduled, or its note is
        waiting). `sort`: a file worker, which sends links on to the link workers."""
        item = await self._queue.claim(scan_id)
        if item is None:
            return True  # finished meanwhile, or leased to another holder
        if sort and is_link(item.request):
            await self._queue.release(scan_id)  # not a run after all: it belongs with the links
            self._lanes.move_to_links(scan_id)
            return False
        if item.crashes >= self._config.crash_limit:
            reason = f"modbot stopped {item.crashes} times while scanning it"
            log.error("scan %s: %s; giving up", scan_id, reason)
            return await self._report(item, ScanFailed(reason))
        return await self._attempt(item)

    async def _attempt(self, item: WorkItem) -> bool:
        scan_id = item.scan_id
        try:
            outcome = await self._run_scan(item)
        except asyncio.CancelledError:  # shutting down: this run did not crash the process
            with contextlib.suppress(Exception):
                await asyncio.shield(self._queue.release(scan_id))
            raise
        except NotAnImage as exc:
            await self._queue.finish(scan_id, skipped=str(exc))
            self._metrics.scan_finished("skipped")
            return True
        except (ScanFailed, SlackUnavailable) as exc:
            return await self._failed(item, exc)
        except Exception as exc:
            log.exception("scan %s failed unexpectedly", scan_id)
            return await self._failed(item, exc)
        await self._queue.finish(
            scan_id, sha256=outcome.sha256, decision=outcome.decision, mode=outcome.mode
        )
        self._metrics.scan_finished(outcome.decision.value, outcome.mode)
        return True

    async def _failed(self, item: WorkItem, exc: Exception) -> bool:
        """Retry what is transient until the retry limit; report the rest."""
        failure, transient, retry_after = classify(exc, item, self._config.bug_limit)
        now = self._clock()
        first = item.first_failure_at or now
        if transient and not self._config.retry.exhausted(first, now):
            await self._retry_later(item, failure, retry_after, bug=_is_bug(exc))
            return False
        return await self._report(item, failure)

    async def _retry_later(
        self, item: WorkItem, failure: ScanFailed, retry_after: float | None, *, bug: bool
    ) -> None:
        attempt = item.failures + 1
        delay = self._config.retry.delay(attempt, retry_after=retry_after)
        await self._queue.retry_later(item.scan_id, delay=delay, bug=bug)
        log.info("scan %s: %s; retry %d in %.1fs", item.scan_id, failure, attempt, delay)
        self._lanes.retry_in(delay, item.scan_id, Lane.LINK if is_link(item.request) else Lane.FILE)

    async def _report(self, item: WorkItem, failure: ScanFailed) -> bool:
        """Say "Could not scan": to whoever asked, or in a (possibly summarised) note."""
        self._lanes.alert_settled(item.scan_id)  # its own note must not wait for its alert
        message = messages.could_not_scan(failure, item.request)
        response_url = item.request.origin.response_url
        if not response_url:
            # Waiting for its note is no crash; the lease stays: the note is on its way here.
            await self._queue.release(item.scan_id, keep_lease=True)
            self._notes.add(Note(item.scan_id, failure, item.request))
            return False  # finished once the note is posted (_notes_posted)
        try:
            await self._notifier.respond(response_url, message)
        except SlackUnavailable as exc:
            now = self._clock()
            first = item.first_failure_at or now
            if exc.transient and not self._config.retry.exhausted(first, now):
                await self._retry_later(item, failure, exc.retry_after, bug=False)
                return False
            log.error("scan %s: could not tell the caller (%s): %s", item.scan_id, exc, failure)
        await self._queue.finish(item.scan_id, error=messages.failure_reason(failure))
        self._metrics.scan_finished("failed")
        return True

    async def _notes_posted(self, notes: Sequence[Note]) -> None:
        for note in notes:
            await self._queue.finish(note.scan_id, error=messages.failure_reason(note.error))
            self._metrics.scan_finished("failed")
            self._lanes.release(note.scan_id)

    def _notes_released(self, notes: Sequence[Note]) -> None:
        """The outbox hit a bug: these scans are still pending; the sweep takes them up again."""
        for note in notes:
            self._lanes.release(note.scan_id)

    async def _notes_given_up(self, notes: Sequence[Note], why: str) -> None:
        for note in notes:
            log.error(
                "scan %s: Could not scan note not posted (%s): %s", note.scan_id, why, note.error
            )
            await self._queue.finish(note.scan_id, error=messages.failure_reason(note.error))
            self._metrics.scan_finished("failed")
            self._lanes.release(note.scan_id)


def _is_bug(exc: Exception) -> bool:
    return not isinstance(exc, ScanFailed | SlackUnavailable)


def classify(
    exc: Exception, item: WorkItem, bug_limit: int
) -> tuple[ScanFailed, bool, float | None]:
    """What to report if it comes to that, whether to retry, and Slack's Retry-After (pure)."""
    if isinstance(exc, SlackUnavailable):
        # Transient: said only once the retry limit has passed. Permanent (channel_not_found,
        # invalid_auth, ...): the method and Slack's error code are what an operator needs.
        failure = ScanFailed("Slack was unavailable" if exc.transient else str(exc), str(exc))
        failure.transient = exc.transient
        return failure, exc.transient, exc.retry_after
    if isinstance(exc, ScanFailed):
        transient = exc.transient
        if is_link(item.request) and isinstance(exc, FetchFailed):
            # A link that never answered or refused the connection is not worth another wait;
            # any other hiccup gets one more try.
            transient = transient and not exc.unreachable and item.failures < 1
        return exc, transient, None
    # A bug: worth a few more tries (it may depend on timing), then it is reported.
    failure = ScanFailed("internal error", type(exc).__name__)
    return failure, item.bugs < bug_limit, None
