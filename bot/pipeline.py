"""The moderation pipeline: fetch, check, hash, detect (once per image), decide and act."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from bot import messages
from bot.decode_budget import prepare_within_budget
from bot.detector import Detector
from bot.errors import FetchBlocked, ImageRejected, ScanFailed
from bot.extract import IMAGE_EXTENSIONS, claims_image, extension
from bot.fetch import Fetcher
from bot.image_format import sniff_image
from bot.model import (
    AlertRef,
    ChannelMode,
    Detection,
    History,
    ImageRef,
    ScanReport,
    ScanRequest,
    Trigger,
)
from bot.notifier import Notifier
from bot.policy import Policy, decide
from bot.store import PendingScan, Store
from bot.verdict import apply_history

log = logging.getLogger(__name__)


class NotAnImage(Exception):
    """Raised for content that never claimed to be an image (a web page link): skipped quietly."""


class ReviewStarter(Protocol):
    """What the pipeline needs from a review backend."""

    buttons: bool  # the alert itself carries vote buttons

    async def start(self, report: ScanReport, alert: AlertRef, image: bytes) -> None: ...

    async def history(self, sha256: str, scan_id: str) -> History: ...


# Makes the Rekognition call for one scan: (scan id, prepared image, MinConfidence).
ScanDetect = Callable[[str, bytes, float], Awaitable[Detection]]


def plain_detect(detector: Detector) -> ScanDetect:
    async def detect(_scan_id: str, image: bytes, min_confidence: float) -> Detection:
        return await detector.detect(image, min_confidence=min_confidence)

    return detect


@dataclass(frozen=True)
class PipelineConfig:
    bot_token: str
    workers: int = 8
    max_attempts: int = 5  # transient failures (throttling, Slack/AWS outages) before giving up
    retry_delay: float = 2.0
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
        reviews: ReviewStarter | None,
        config: PipelineConfig,
    ) -> None:
        self._store = store
        self._fetcher = fetcher
        self._detect = detect
        self._notifier = notifier
        self._policy = policy
        self._reviews = reviews
        self._config = config
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._inflight: dict[str, asyncio.Future[Detection]] = {}
        self._unfinished = 0  # queued + running + waiting for a retry
        self._drained = asyncio.Event()
        self._drained.set()
        self.accepting = True

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
        for scan_id in scan_ids:
            self._enqueue(scan_id)
        return len(scan_ids)

    def _enqueue(self, scan_id: str) -> None:
        self._unfinished += 1
        self._drained.clear()
        self._queue.put_nowait(scan_id)

    def _done(self) -> None:
        self._unfinished -= 1
        if self._unfinished == 0:
            self._drained.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume accepted work left unfinished by a crash or a restart, then start workers."""
        for pending in await self._store.pending():
            self._enqueue(pending.scan_id)
        self._workers = [
            asyncio.create_task(self._worker(), name=f"scan-worker-{n}")
            for n in range(self._config.workers)
        ]

    async def stop(self, grace: float = 20.0) -> None:
        """Stop taking work; let scans in progress finish for up to `grace` seconds.

        Whatever is still queued or running then stays `pending` in the database and is
        resumed at the next start, so nothing accepted is lost.
        """
        self.accepting = False
        parked = self._queue.qsize()
        for _ in range(parked):  # queued but not started: leave for next start
            self._queue.get_nowait()
            self._done()
        log.info(
            "stopping: %d scans in progress, %d parked; grace %.1fs",
            self._unfinished,
            parked,
            grace,
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._drained.wait()
        if self._unfinished:
            log.info(
                "stopped with %d scans unfinished; they resume at the next start", self._unfinished
            )
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def idle(self) -> None:
        """Wait until nothing is queued, running or waiting for a retry."""
        await self._drained.wait()

    async def _worker(self) -> None:
        while True:
            scan_id = await self._queue.get()
            try:
                await self._run(scan_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the worker; the scan stays pending
                log.exception("scan %s crashed", scan_id)
            finally:
                self._done()

    # -- one scan -------------------------------------------------------------------------

    async def _run(self, scan_id: str) -> None:
        pending = await self._store.load(scan_id)
        if pending is None:
            return
        try:
            await self._scan(pending)
        except NotAnImage as exc:
            await self._store.finish(scan_id, skipped=str(exc))
        except ScanFailed as exc:
            await self._failed(pending, exc)
        except Exception as exc:
            log.exception("scan %s failed unexpectedly", scan_id)
            await self._failed(pending, ScanFailed("internal error", type(exc).__name__))

    async def _failed(self, pending: PendingScan, error: ScanFailed) -> None:
        attempts = await self._store.count_attempt(pending.scan_id)
        if error.transient and attempts < self._config.max_attempts:
            delay = self._config.retry_delay * 2 ** (attempts - 1)
            log.info("scan %s: %s; retry %d in %.1fs", pending.scan_id, error, attempts, delay)
            self._unfinished += 1  # the retry is still unfinished work
            asyncio.get_running_loop().call_later(delay, self._retry, pending.scan_id)
            return
        message = messages.could_not_scan(error, pending.request)
        response_url = pending.request.origin.response_url
        if response_url:
            await self._notifier.respond(response_url, message)
        else:
            await self._notifier.note(message)
        await self._store.finish(pending.scan_id, error=error.reason)

    def _retry(self, scan_id: str) -> None:
        if self.accepting:
            self._queue.put_nowait(scan_id)  # already counted as unfinished
        else:
            self._done()  # shutting down: it stays pending in the database

    async def _scan(self, pending: PendingScan) -> None:
        request = await self._resolve(pending.request)
        data = await self._download(request)
        sha256 = await asyncio.to_thread(_sha256, data)
        detection, reused = await self._detection(pending.scan_id, sha256, data)
        if self._reviews is not None:
            history = await self._reviews.history(sha256, pending.scan_id)
        else:
            earlier = await self._store.earliest_alert(sha256, excluding=pending.scan_id)
            history = History(earlier_alert=earlier)
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
            fetched = await self._fetcher.fetch(image.url, token=token)
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
        record = {**message.as_kwargs(), "causes": [label.name for label in report.outcome.causes]}
        earlier_intent = await self._store.begin_alert(
            report.scan_id,
            report.sha256,
            self._notifier.alert_channel,
            report.outcome.decision,
            record,
        )
        alert = None
        if earlier_intent is not None:  # posted before a crash? Slack's history knows
            alert = await self._notifier.find_alert(report.scan_id)
        if alert is None:
            alert = await self._notifier.post_alert(message, scan_id=report.scan_id)
        await self._store.complete_alert(report.scan_id, alert)
        return alert


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
