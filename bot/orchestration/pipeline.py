"""The moderation pipeline: fetch, check, hash, detect (once per image), decide and act."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from bot.adapters.database.scans import PendingScan, Store
from bot.adapters.fetch import Fetcher
from bot.adapters.images.budget import prepare_within_budget
from bot.adapters.images.formats import sniff_image
from bot.adapters.rekognition import Detector
from bot.adapters.slack import Notifier, SlackUnavailable
from bot.core import messages
from bot.core.errors import FetchBlocked, FetchFailed, ImageRejected, ScanFailed
from bot.core.model import (
    AlertRef,
    ChannelMode,
    Detection,
    History,
    ImageRef,
    ScanReport,
    ScanRequest,
    Trigger,
)
from bot.core.payloads import IMAGE_EXTENSIONS, claims_image, extension
from bot.core.policy import Policy, decide
from bot.core.retry import RetryPolicy
from bot.core.verdict import apply_history
from bot.orchestration.ledger import ReviewLedger
from bot.orchestration.notes import Note, NoteOutbox
from bot.orchestration.review import ReviewBackend
from bot.orchestration.workqueue import WorkQueue

log = logging.getLogger(__name__)


class NotAnImage(Exception):
    """Raised for content that never claimed to be an image (a web page link): skipped quietly."""


# Makes the Rekognition call for one scan: (scan id, prepared image, MinConfidence).
ScanDetect = Callable[[str, bytes, float], Awaitable[Detection]]


def plain_detect(detector: Detector) -> ScanDetect:
    async def detect(_scan_id: str, image: bytes, min_confidence: float) -> Detection:
        return await detector.detect(image, min_confidence=min_confidence)

    return detect


@dataclass(frozen=True)
class PipelineConfig:
    bot_token: str
    workers: int = 8  # Slack files and on-demand scans
    link_workers: int = 4  # links posted in chat: their own pool, so they never hold up uploads
    link_timeout: float = 15.0  # a whole link download (redirects, connect, body) within this
    # Transient failures: retried with backoff, reported once the limit has passed.
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    crash_limit: int = 3  # starts that never ended (the process died) before giving up
    bug_limit: int = 3  # unexpected exceptions retried before they are reported
    note_interval: float = 5.0  # at most one "Could not scan" note per this many seconds
    sweep_interval: float | None = None  # look for forgotten pending scans; None: retry.cap
    watch_channels: frozenset[str] = frozenset()


class Pipeline:
    """Takes accepted scans from a queue and carries each to exactly one recorded outcome."""

    def __init__(
        self,
        *,
        store: Store,
        fetcher: Fetcher,
        detect: ScanDetect,
        notifier: Notifier,
        policy: Policy,
        reviews: ReviewBackend | None,
        config: PipelineConfig,
        ledger: ReviewLedger | None = None,
    ) -> None:
        self._store = store
        self._fetcher = fetcher
        self._detect = detect
        self._notifier = notifier
        self._policy = policy
        self._reviews = reviews
        self._ledger = ledger or ReviewLedger(store)
        self._config = config
        self._work = WorkQueue()
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: dict[str, asyncio.Future[Detection]] = {}
        self._notes = NoteOutbox(
            post=notifier.note,
            posted=self._notes_posted,
            given_up=self._notes_given_up,
            released=self._notes_released,
            alerts_clear=self._work.alerts_clear,
            interval=config.note_interval,
            retry=config.retry,
        )

    @property
    def accepting(self) -> bool:
        return self._work.open

    # -- intake ---------------------------------------------------------------------------

    def wanted(self, request: ScanRequest) -> bool:
        """Watched channel and not switched off by the policy. On-demand scans always run."""
        if request.origin.trigger in (Trigger.COMMAND, Trigger.SHORTCUT):
            return True
        channel = request.origin.channel
        watch = self._config.watch_channels
        if watch and channel not in watch:
            return False
        return self._policy.mode_for(channel) is not ChannelMode.OFF

    async def accept(self, requests: Iterable[ScanRequest], *, event_id: str | None = None) -> int:
        """Record new work durably, then queue it. Returns how many scans were new."""
        if not self.accepting:
            raise RuntimeError("modbot is shutting down")
        wanted = [request for request in requests if self.wanted(request)]
        if not wanted and event_id is None:
            return 0
        scan_ids = await self._store.accept(wanted, event_id=event_id)
        kinds = {_is_link(request) for request in wanted}
        link = kinds.pop() if len(kinds) == 1 else None  # mixed: each worker sorts its own
        for scan_id in scan_ids:
            self._work.put(scan_id, link)
        return len(scan_ids)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume accepted work left unfinished by a crash or a restart, then start workers."""
        for pending in await self._store.pending():
            self._resume(pending)
        work = self._work
        workers = [("file", work.files)] * self._config.workers
        workers += [("link", work.links)] * self._config.link_workers
        workers += [("suspect", work.suspects)]
        self._tasks = [
            asyncio.create_task(self._worker(kind, queue), name=f"scan-{kind}-{n}")
            for n, (kind, queue) in enumerate(workers)
        ]
        self._tasks.append(asyncio.create_task(self._notes.run(), name="scan-notes"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="scan-sweep"))

    async def stop(self, grace: float = 20.0) -> None:
        """Stop taking work; let scans in progress finish for up to `grace` seconds.

        Whatever is still queued, running or waiting for a retry then stays `pending` in the
        database and is resumed at the next start, so nothing accepted is lost.
        """
        parked = self._work.close()  # queued or waiting for a retry: left for the next start
        self._notes.hurry()
        log.info(
            "stopping: %d scans in progress, %d parked; grace %.1fs",
            self._work.held,
            parked,
            grace,
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._work.drained()
        if self._work.held:
            log.info(
                "stopped with %d scans unfinished; they resume at the next start",
                self._work.held,
            )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _resume(self, pending: PendingScan) -> None:
        self._work.put(pending.scan_id, _is_link(pending.request), suspect=pending.crashes > 0)

    @property
    def queued(self) -> int:
        return self._work.queued

    async def idle(self) -> None:
        """Wait until nothing is queued, running, waiting for a retry or for its note."""
        await self._work.drained()

    async def _worker(self, kind: str, queue: asyncio.Queue[str]) -> None:
        while True:
            scan_id = await queue.get()
            settled = True
            try:
                settled = await self._run(scan_id, sort=kind == "file")
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker; the sweep picks the scan up
                log.exception("scan %s crashed", scan_id)
            finally:
                if settled:
                    self._work.release(scan_id)

    async def _sweep(self) -> None:
        """Re-queue pending scans nothing is working on, so none stays pending in a live
        process whatever went wrong (the retry limit still ends each of them)."""
        interval = self._config.sweep_interval or self._config.retry.cap
        while True:
            await asyncio.sleep(interval)
            try:
                for pending in await self._store.pending():
                    if self.accepting and not self._work.holds(pending.scan_id):
                        log.warning(
                            "scan %s was pending with nothing on it; queued again", pending.scan_id
                        )
                        self._resume(pending)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for forgotten scans failed")

    # -- one scan -------------------------------------------------------------------------

    async def _run(self, scan_id: str, *, sort: bool) -> bool:
        """One run of one scan. True: the scan left the pipeline (an outcome, or nothing to
        do); False: it is still held here (a retry is scheduled, or its note is waiting).
        `sort`: a file worker, which sends links on to the link workers."""
        pending = await self._store.begin_run(scan_id)
        if pending is None:
            return True  # finished meanwhile
        if sort and _is_link(pending.request):
            await self._store.end_run(scan_id)  # not a run after all: it belongs with the links
            self._work.move_to_links(scan_id)
            return False
        if pending.crashes >= self._config.crash_limit:
            reason = f"modbot stopped {pending.crashes} times while scanning it"
            log.error("scan %s: %s; giving up", scan_id, reason)
            return await self._report(pending, ScanFailed(reason))
        return await self._attempt(pending)

    async def _attempt(self, pending: PendingScan) -> bool:
        scan_id = pending.scan_id
        try:
            await self._scan(pending)
            return True
        except asyncio.CancelledError:  # shutting down: this run did not crash the process
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.end_run(scan_id))
            raise
        except NotAnImage as exc:
            await self._store.finish(scan_id, skipped=str(exc))
            return True
        except (ScanFailed, SlackUnavailable) as exc:
            return await self._failed(pending, exc)
        except Exception as exc:
            log.exception("scan %s failed unexpectedly", scan_id)
            return await self._failed(pending, exc)

    async def _failed(self, pending: PendingScan, exc: Exception) -> bool:
        """Retry what is transient until the retry limit; report the rest."""
        failure, transient, retry_after = _classify(exc, pending, self._config.bug_limit)
        now = time.time()
        first = pending.first_failure_at or now
        if transient and not self._config.retry.exhausted(first, now):
            await self._retry_later(pending, failure, retry_after, bug=_is_bug(exc))
            return False
        return await self._report(pending, failure)

    async def _retry_later(
        self, pending: PendingScan, failure: ScanFailed, retry_after: float | None, *, bug: bool
    ) -> None:
        updated = await self._store.record_failure(pending.scan_id, bug=bug)
        attempt = updated.failures if updated else pending.failures + 1
        delay = self._config.retry.delay(attempt, retry_after=retry_after)
        log.info("scan %s: %s; retry %d in %.1fs", pending.scan_id, failure, attempt, delay)
        self._work.retry_in(delay, pending.scan_id, _is_link(pending.request))

    async def _report(self, pending: PendingScan, failure: ScanFailed) -> bool:
        """Say "Could not scan": to whoever asked, or in a (possibly summarised) note."""
        self._work.alert_settled(pending.scan_id)  # its own note must not wait for its alert
        message = messages.could_not_scan(failure, pending.request)
        response_url = pending.request.origin.response_url
        if not response_url:
            await self._store.end_run(pending.scan_id)  # waiting for its note is no crash
            self._notes.add(Note(pending.scan_id, failure, pending.request))
            return False  # finished once the note is posted (_notes_posted)
        try:
            await self._notifier.respond(response_url, message)
        except SlackUnavailable as exc:
            now = time.time()
            first = pending.first_failure_at or now
            if exc.transient and not self._config.retry.exhausted(first, now):
                await self._retry_later(pending, failure, exc.retry_after, bug=False)
                return False
            log.error("scan %s: could not tell the caller (%s): %s", pending.scan_id, exc, failure)
        await self._store.finish(pending.scan_id, error=messages.failure_reason(failure))
        return True

    async def _notes_posted(self, notes: Sequence[Note]) -> None:
        for note in notes:
            await self._store.finish(note.scan_id, error=messages.failure_reason(note.error))
            self._work.release(note.scan_id)

    def _notes_released(self, notes: Sequence[Note]) -> None:
        """The outbox hit a bug: these scans are still pending; the sweep takes them up again."""
        for note in notes:
            self._work.release(note.scan_id)

    async def _notes_given_up(self, notes: Sequence[Note], why: str) -> None:
        for note in notes:
            log.error(
                "scan %s: Could not scan note not posted (%s): %s", note.scan_id, why, note.error
            )
            await self._store.finish(note.scan_id, error=messages.failure_reason(note.error))
            self._work.release(note.scan_id)

    async def _scan(self, pending: PendingScan) -> None:
        request = await self._resolve(pending.request)
        data = await self._download(request)
        sha256 = await asyncio.to_thread(_sha256, data)
        detection, reused = await self._detection(pending.scan_id, sha256, data)
        history = await self._ledger.history(sha256, pending.scan_id)
        history = await self._linked(history)
        outcome = apply_history(decide(self._policy, detection, request.origin.channel), history)
        report = ScanReport(pending.scan_id, request, detection, outcome, sha256, reused, history)
        await self._act(report, data)
        await self._store.finish(
            pending.scan_id, sha256=sha256, decision=outcome.decision, mode=outcome.mode.value
        )

    async def _linked(self, history: History) -> History:
        """Permalinks for the earlier alerts a re-post's alert will link to."""

        async def link(alert: AlertRef | None) -> AlertRef | None:
            if alert is None or alert.permalink:
                return alert
            return replace(alert, permalink=await self._notifier.permalink(alert.channel, alert.ts))

        verdict = history.verdict
        if verdict is not None:
            verdict = replace(verdict, alert=await link(verdict.alert))
        return History(
            earlier_alert=await link(history.earlier_alert),
            verdict=verdict,
            open_review=await link(history.open_review),
        )

    async def _resolve(self, request: ScanRequest) -> ScanRequest:
        """A file known only by id (file_shared) gets its URL, name and message from files.info."""
        image = request.image
        if image.file_id is None or (image.url and image.name):
            return request
        info = await self._notifier.file_info(image.file_id)
        if not claims_image(info.get("mimetype"), info.get("name"), info.get("filetype")):
            raise NotAnImage(f"file {image.file_id} is not an image ({info.get('mimetype')})")
        image = ImageRef(
            url=info.get("url_private_download") or info.get("url_private"),
            file_id=image.file_id,
            name=info.get("name"),
            mimetype=info.get("mimetype"),
        )
        origin = request.origin
        if origin.message_ts is None:
            origin = replace(origin, message_ts=_share_ts(info, origin.channel))
        return replace(request, image=image, origin=origin)

    async def _download(self, request: ScanRequest) -> bytes:
        image = request.image
        if image.url is None:
            raise ImageRejected("the file has no download link", image.label)
        automatic_link = image.file_id is None and request.origin.trigger is Trigger.LINK
        token = self._config.bot_token if image.file_id else None
        try:
            deadline = self._config.link_timeout if image.file_id is None else None
            fetched = await self._fetcher.fetch(image.url, token=token, deadline=deadline)
        except FetchBlocked:
            raise
        except ScanFailed as exc:
            # A dead link in chat is only worth a note if it looked like an image.
            if automatic_link and extension(image.url) not in IMAGE_EXTENSIONS:
                raise NotAnImage(f"link not fetched: {exc}") from None
            raise
        if automatic_link and sniff_image(fetched.data) is None:
            said_image = (fetched.content_type or "").lower().startswith("image/")
            if not said_image and extension(image.url) not in IMAGE_EXTENSIONS:
                raise NotAnImage(f"link is not an image ({fetched.content_type})")
        return fetched.data

    async def _detection(self, scan_id: str, sha256: str, data: bytes) -> tuple[Detection, bool]:
        """Reuse an earlier result for the same bytes; concurrent scans of them share one call."""
        min_confidence = self._policy.call_min_confidence
        stored = await self._store.detection(sha256)
        if stored is not None and stored.min_confidence <= min_confidence:
            return stored, True
        running = self._inflight.get(sha256)
        if running is not None:
            return await asyncio.shield(running), True
        future: asyncio.Future[Detection] = asyncio.get_running_loop().create_future()
        self._inflight[sha256] = future
        try:
            prepared = await prepare_within_budget(data)
            detection = await self._detect(scan_id, prepared.data, min_confidence)
            await self._store.save_detection(sha256, detection)
        except asyncio.CancelledError:
            future.cancel()  # shutting down: waiters are cancelled too and resume next start
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, get it re-raised
            raise
        else:
            future.set_result(detection)
        finally:
            del self._inflight[sha256]
        return detection, False

    async def _act(self, report: ScanReport, image: bytes) -> None:
        request = report.request
        if report.outcome.alerts:
            alert = await self._store.alert_for(report.scan_id)
            if alert is None:  # not posted before a restart interrupted this scan
                alert = await self._post_alert(report)
            history = report.history
            settled = history.verdict is not None or history.open_review is not None
            if report.outcome.needs_review and self._reviews and not settled:
                await self._reviews.start(report, alert, image)
        if request.origin.response_url:
            await self._notifier.respond(request.origin.response_url, messages.scan_result(report))

    async def _post_alert(self, report: ScanReport) -> AlertRef:
        """Post the alert exactly once, even across a crash between posting and saving it."""
        origin = report.request.origin
        source_link = None
        if origin.channel and origin.message_ts:
            source_link = await self._notifier.permalink(origin.channel, origin.message_ts)
        history = report.history
        buttons = bool(
            self._reviews
            and self._reviews.buttons
            and report.outcome.needs_review
            and history.verdict is None
            and history.open_review is None
        )
        message = messages.alert(report, source_link=source_link, review_buttons=buttons)
        self._work.alert_due(report.scan_id)
        earlier_intent = await self._store.begin_alert(
            report.scan_id,
            report.sha256,
            self._notifier.alert_channel,
            report.outcome.decision,
            message.as_kwargs(),
            causes=[label.name for label in report.outcome.causes],
        )
        alert = None
        if earlier_intent is not None:  # posted before a crash? Slack's history knows
            alert = await self._notifier.find_alert(report.scan_id, since=earlier_intent)
        if alert is None:
            alert = await self._notifier.post_alert(message, scan_id=report.scan_id)
        await self._store.complete_alert(report.scan_id, alert)
        self._work.alert_settled(report.scan_id)
        return alert


def _is_link(request: ScanRequest) -> bool:
    """A link (posted in chat or given to /moderate) rather than a file hosted by Slack."""
    return request.image.file_id is None


def _is_bug(exc: Exception) -> bool:
    return not isinstance(exc, ScanFailed | SlackUnavailable)


def _classify(
    exc: Exception, pending: PendingScan, bug_limit: int
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
        if _is_link(pending.request) and isinstance(exc, FetchFailed):
            # A link that never answered or refused the connection is not worth another wait;
            # any other hiccup gets one more try.
            transient = transient and not exc.unreachable and pending.failures < 1
        return exc, transient, None
    # A bug: worth a few more tries (it may depend on timing), then it is reported.
    failure = ScanFailed("internal error", type(exc).__name__)
    return failure, pending.bugs < bug_limit, None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _share_ts(info: dict[str, object], channel: str | None) -> str | None:
    shares = info.get("shares")
    if not isinstance(shares, dict) or channel is None:
        return None
    for scope in ("public", "private"):
        entries = (shares.get(scope) or {}).get(channel) or []
        if entries and isinstance(entries[0], dict) and entries[0].get("ts"):
            return str(entries[0]["ts"])
    return None
