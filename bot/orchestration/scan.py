"""The steps of one scan: resolve, download, detect (once per image), decide, act, alert once.

The scheduler (bot/orchestration/scheduler.py) decides when a scan runs and what a failure
means; this module only carries one run through its steps and returns the outcome to record.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from bot.adapters.fetch import Fetcher
from bot.adapters.images.formats import sniff_image
from bot.adapters.slack import Notifier, SlackFile
from bot.core import messages
from bot.core.errors import FetchBlocked, ImageRejected, ScanFailed
from bot.core.metrics import NO_METRICS, Metrics
from bot.core.model import (
    AlertRef,
    Decision,
    Detection,
    History,
    ImageRef,
    ScanReport,
    ScanRequest,
    Trigger,
)
from bot.core.payloads import IMAGE_EXTENSIONS, claims_image, extension
from bot.core.policy import Policy, decide, thresholds_for
from bot.core.verdict import apply_history, flagged_by_partner
from bot.core.work import WorkItem
from bot.orchestration.claims import Claims, Unshared
from bot.orchestration.neardup import NearDuplicates, Recognised
from bot.orchestration.review import ReviewBackend

INLINE_HASH_BYTES = 512 * 1024  # about 0.3 ms of SHA-256: hashed on the loop's thread
# The detection of an image flagged by a hash match alone: the detector never saw it.
NOT_DETECTED = Detection(labels=(), model_version="")


class NotAnImage(Exception):
    """Raised for content that never claimed to be an image (a web page link): skipped quietly."""


class ReviewHistory(Protocol):
    """What earlier posts of the same bytes settled (the review ledger)."""

    async def history(self, sha256: str, scan_id: str) -> History: ...


class ScanRecords(Protocol):
    """What the scan steps keep in the store: detections and alerts."""

    async def detection(self, sha256: str, detector: str) -> Detection | None: ...

    async def save_detection(self, sha256: str, detector: str, detection: Detection) -> None: ...

    async def alert_for(self, scan_id: str) -> AlertRef | None: ...

    async def begin_alert(
        self,
        scan_id: str,
        sha256: str,
        channel: str,
        decision: Decision,
        message: dict[str, Any],
        *,
        causes: Sequence[str],
    ) -> float | None: ...

    async def complete_alert(self, scan_id: str, alert: AlertRef) -> None: ...


class SlackFiles(Protocol):
    """Files hosted by Slack: what files.info says of one."""

    async def file_info(self, file_id: str) -> SlackFile: ...


class AlertWatch(Protocol):
    """Told when an alert is about to be posted and when it is settled (notes wait for it)."""

    def alert_due(self, scan_id: str) -> None: ...

    def alert_settled(self, scan_id: str) -> None: ...


class ScanRemovals(Protocol):
    """Removal under the policy once a scan is alerted (bot/orchestration/removal.py)."""

    async def at_scan(self, report: ScanReport) -> None: ...


class Detector(Protocol):
    """The moderation classifier port. Each adapter prepares its own input from the bytes as
    downloaded (Rekognition's size and format rules live in the Rekognition adapter)."""

    name: str  # detections are stored per detector: one never reuses another's results

    async def detect(self, image: bytes, min_confidence: float) -> Detection: ...


# The detector for one scan, by scan id (A2I's `flow` trigger names its human loop from it).
DetectorFor = Callable[[str], Detector]


def one_detector(detector: Detector) -> DetectorFor:
    """The same detector for every scan."""
    return lambda _scan_id: detector


@dataclass(frozen=True)
class Outcome:
    """What one successful run records."""

    sha256: str
    decision: Decision
    mode: str


class ScanSteps:
    def __init__(
        self,
        *,
        records: ScanRecords,
        fetcher: Fetcher,
        detector_for: DetectorFor,
        notifier: Notifier,
        files: SlackFiles,
        policy: Policy,
        reviews: ReviewBackend | None,
        ledger: ReviewHistory,
        alerts: AlertWatch,
        bot_token: str,
        link_timeout: float,
        metrics: Metrics = NO_METRICS,
        removals: ScanRemovals | None = None,
        near: NearDuplicates | None = None,
        claims: Claims | None = None,
    ) -> None:
        self._removals = removals  # set when SLACK_ADMIN_TOKEN is: alerts get a Remove button
        self._records = records
        self._metrics = metrics
        self._claims: Claims = claims or Unshared()
        self._fetcher = fetcher
        self._detector_for = detector_for
        self._notifier = notifier
        self._files = files
        self._policy = policy
        self._reviews = reviews
        self._ledger = ledger
        self._alerts = alerts
        self._bot_token = bot_token
        self._link_timeout = link_timeout
        self._near = near
        self._inflight: dict[tuple[str, str], asyncio.Future[Detection]] = {}

    async def run(self, item: WorkItem) -> Outcome:
        """One run; raises NotAnImage, ScanFailed, SlackUnavailable or a bug."""
        request = await self._resolve(item.request)
        data = await self._download(request)
        # Hashing a typical upload takes far less than a trip to a thread and back.
        small = len(data) <= INLINE_HASH_BYTES
        sha256 = _sha256(data) if small else await asyncio.to_thread(_sha256, data)
        seen = Recognised()
        if self._near is not None:
            seen = await self._near.recognise(item.scan_id, data)
        if seen.skips_detection:  # a near-duplicate of a violation, or a partner's match
            detection, reused = await self._earlier_detection(item.scan_id, seen), False
        else:
            detection, reused = await self._detection(item.scan_id, sha256, data)
        history = await self._ledger.history(sha256, item.scan_id)
        history = await self._linked(seen.applied_to(history))
        channel = request.origin.channel
        outcome = decide(self._policy, detection, channel)
        if seen.partner is not None:
            outcome = flagged_by_partner(outcome, thresholds_for(self._policy, channel).confirm)
        outcome = apply_history(outcome, history)
        report = ScanReport(
            item.scan_id, request, detection, outcome, sha256, reused, history, seen.partner
        )
        await self._act(report, data, item.accepted_at)
        return Outcome(sha256, outcome.decision, outcome.mode.value)

    async def _earlier_detection(self, scan_id: str, seen: Recognised) -> Detection:
        """What the detector said of the earlier image, shown in the alert; nothing if it was
        never detected here (an imported or partner hash) or retention deleted it."""
        if seen.near_violation_sha256 is not None:
            name = self._detector_for(scan_id).name
            stored = await self._records.detection(seen.near_violation_sha256, name)
            if stored is not None:
                return stored
        return NOT_DETECTED

    async def _linked(self, history: History) -> History:
        """Permalinks for the earlier alerts a re-post's alert will link to."""

        async def link(alert: AlertRef | None) -> AlertRef | None:
            if alert is None or alert.permalink:
                return alert
            return replace(alert, permalink=await self._notifier.permalink(alert.channel, alert.ts))

        verdict, similar = history.verdict, history.similar
        if verdict is not None:
            verdict = replace(verdict, alert=await link(verdict.alert))
        if similar is not None:
            similar = replace(similar, alert=await link(similar.alert))
        return History(
            earlier_alert=await link(history.earlier_alert),
            verdict=verdict,
            open_review=await link(history.open_review),
            similar=similar,
        )

    async def _resolve(self, request: ScanRequest) -> ScanRequest:
        """A file known only by id (file_shared) gets its URL, name and message from files.info."""
        image = request.image
        if image.file_id is None or (image.url and image.name):
            return request
        info = await self._files.file_info(image.file_id)
        if not claims_image(info.mimetype, info.name, info.filetype):
            raise NotAnImage(f"file {image.file_id} is not an image ({info.mimetype})")
        image = ImageRef(
            url=info.download_url,
            file_id=image.file_id,
            name=info.name,
            mimetype=info.mimetype,
        )
        origin = request.origin
        if origin.message_ts is None:
            origin = replace(origin, message_ts=info.share_ts(origin.channel))
        return replace(request, image=image, origin=origin)

    async def _download(self, request: ScanRequest) -> bytes:
        image = request.image
        if image.url is None:
            raise ImageRejected("the file has no download link", image.label)
        automatic_link = image.file_id is None and request.origin.trigger is Trigger.LINK
        token = self._bot_token if image.file_id else None
        try:
            deadline = self._link_timeout if image.file_id is None else None
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
        detector = self._detector_for(scan_id)
        stored = await self._records.detection(sha256, detector.name)
        if stored is not None and stored.min_confidence <= min_confidence:
            return stored, True
        key = (sha256, detector.name)
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running), True
        future: asyncio.Future[Detection] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            shared = await self._shared_detection(sha256, detector, min_confidence)
            if shared is not None:
                future.set_result(shared)
                return shared, True
            try:
                detection = await detector.detect(data, min_confidence)
                await self._records.save_detection(sha256, detector.name, detection)
            finally:
                await asyncio.shield(self._claims.release(_claim_name(sha256, detector.name)))
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
            del self._inflight[key]
        return detection, False

    async def _shared_detection(
        self, sha256: str, detector: Detector, min_confidence: float
    ) -> Detection | None:
        """Claim the detector call for these bytes among replicas; while another replica holds
        the claim, wait for the result it saves. None: the call is ours to make (claimed)."""
        name = _claim_name(sha256, detector.name)
        pause = CLAIM_POLL_SECONDS
        while not await self._claims.take(name):
            await asyncio.sleep(pause)  # its holder renews it while calling, or dies and loses it
            pause = min(pause * 2, CLAIM_POLL_MAX_SECONDS)
            stored = await self._records.detection(sha256, detector.name)
            if stored is not None and stored.min_confidence <= min_confidence:
                return stored
        stored = await self._records.detection(sha256, detector.name)  # saved just before?
        if stored is not None and stored.min_confidence <= min_confidence:
            await self._claims.release(name)
            return stored
        return None

    async def _act(self, report: ScanReport, image: bytes, accepted_at: float | None) -> None:
        request = report.request
        if report.outcome.alerts:
            alert = await self._records.alert_for(report.scan_id)
            if alert is None:  # not posted before a restart interrupted this scan
                alert = await self._post_alert(report)
                since = time.time() - accepted_at if accepted_at is not None else None
                self._metrics.alert_posted(report.outcome.decision.value, since)
            history = report.history
            settled = history.verdict is not None or history.open_review is not None
            if report.outcome.needs_review and self._reviews and not settled:
                await self._reviews.start(report, alert, image)
            if self._removals is not None:
                # The one place where a flag, or a re-post (or near-duplicate) of a confirmed
                # violation, becomes a removal; recorded in the database, idempotent on a rerun.
                await self._removals.at_scan(report)
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
        message = messages.alert(
            report,
            source_link=source_link,
            review_buttons=buttons,
            remove_button=self._removals is not None,
        )
        self._alerts.alert_due(report.scan_id)
        earlier_intent = await self._records.begin_alert(
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
        await self._records.complete_alert(report.scan_id, alert)
        self._alerts.alert_settled(report.scan_id)
        return alert


# Waiting for another replica's detector call for the same bytes: it takes a fraction of a
# second, so look soon, then less often.
CLAIM_POLL_SECONDS = 0.05
CLAIM_POLL_MAX_SECONDS = 1.0


def _claim_name(sha256: str, detector: str) -> str:
    return f"detect:{detector}:{sha256}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
