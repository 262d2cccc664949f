"""Human review with Amazon A2I, as in AWS's reference design: the image copied to S3, a human
loop per scan, its end learnt from status events or by asking. The wire sits behind `HumanLoops`
(bot/adapters/a2i.py); this module holds the rules: loop names, where answers may be read, when
a loop is settled and what its answers decide."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.adapters.a2i import LoopEvent, LoopStatus
from bot.adapters.database.reviews import Review, ReviewStore
from bot.adapters.images.budget import prepare_within_budget
from bot.adapters.rekognition import REKOGNITION, HumanLoopRequest, RekognitionCall, S3Image
from bot.adapters.slack import Notifier
from bot.core import messages
from bot.core.errors import ModbotError, ReviewFailed
from bot.core.model import AlertRef, Detection, ScanReport
from bot.core.retry import RetryPolicy
from bot.core.verdict import Verdict, a2i_answers, a2i_verdict
from bot.orchestration.claims import Claims, Unshared
from bot.orchestration.verdicts import VerdictReporter

log = logging.getLogger(__name__)

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


class HumanLoops(Protocol):
    """What A2I review needs from AWS: errors arrive as `ReviewFailed` with `transient` set."""

    async def put_image(self, key: str, data: bytes, fmt: str) -> S3Image: ...
    async def describe(self, name: str) -> LoopStatus: ...
    async def read_output(self, uri: str) -> dict[str, Any]: ...
    async def receive_events(self) -> list[LoopEvent]: ...
    async def delete_event(self, handle: str) -> None: ...


def loop_name(scan_id: str) -> str:
    """A valid, unique HumanLoopName (^[a-z0-9](-*[a-z0-9])*$, at most 63 chars) for a scan."""
    name = f"modbot-{scan_id.lower()}"
    assert len(name) <= 63
    assert name.replace("-", "").isalnum()
    return name


def flow_name(flow_definition_arn: str) -> str:
    """arn:aws:sagemaker:<region>:<account>:flow-definition/<name> -> <name>."""
    return flow_definition_arn.rsplit("/", 1)[-1]


def output_in_flow_location(uri: str, flow: str, loop: str) -> bool:
    """Whether `uri` is where A2I writes this loop's answers (pure):
    s3://<bucket>/<S3OutputPath prefix>/<flow name>/YYYY/MM/DD/hh/mm/ss/<loop name>/output.json.
    """
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        return False
    dated = r"\d{4}/\d{2}/\d{2}/\d{2}/\d{2}/\d{2}"
    pattern = rf"(?:.*/)?{re.escape(flow)}/{dated}/{re.escape(loop)}/output\.json"
    return re.fullmatch(pattern, parts.path.lstrip("/")) is not None


def _transient(exc: BaseException) -> bool:
    """Our own errors say whether another try later may work (throttling, 5xx, timeouts)."""
    return bool(getattr(exc, "transient", False))


@dataclass(frozen=True)
class A2IConfig:
    flow_definition_arn: str
    prefix: str
    trigger: str  # "policy" | "flow"
    poll_seconds: float


class FlowDetector:
    """The Detector port for one scan with the A2I `flow` trigger: Rekognition with a human
    loop on every call (PRODUCT 6.1), the loop named from the scan."""

    name = REKOGNITION  # the same model as the plain call: its detections are interchangeable

    def __init__(self, reviews: A2IReviews, scan_id: str) -> None:
        self._reviews = reviews
        self._scan_id = scan_id

    async def detect(self, image: bytes, min_confidence: float) -> Detection:
        return await self._reviews.detect_in_flow(self._scan_id, image, min_confidence)


class A2IReviews:
    """The `a2i` review backend."""

    buttons = False
    name = "a2i"

    def __init__(
        self,
        *,
        config: A2IConfig,
        reviews: ReviewStore,
        notifier: Notifier,
        reporter: VerdictReporter,
        detector: RekognitionCall,
        loops: HumanLoops,
        retry: RetryPolicy,
        claims: Claims | None = None,
    ) -> None:
        self._config = config
        self._claims: Claims = claims or Unshared()
        self._retry = retry
        self._reviews = reviews
        self._notifier = notifier
        self._reporter = reporter
        self._detector = detector
        self._loops = loops

    @property
    def detects(self) -> bool:
        """With the `flow` trigger every scan call carries HumanLoopConfig, so we make it."""
        return self._config.trigger == "flow"

    def detector_for(self, scan_id: str) -> FlowDetector:
        """`flow` trigger: the detector for one scan, its human loop named from the scan.

        A detector per scan (not a loop name derived from the image's hash): the loop is that
        scan's review, recorded under loop_name(scan_id) when the review opens, and loop names
        must be unique, which a hash is not once the same bytes are scanned again (for
        instance when a lower MinConfidence makes the stored detection unusable).
        """
        return FlowDetector(self, scan_id)

    async def detect_in_flow(self, scan_id: str, image: bytes, min_confidence: float) -> Detection:
        """Prepare to Rekognition's rules, copy to S3, and let the flow definition's
        conditions decide whether a human loop opens."""
        prepared = await prepare_within_budget(image)
        location = await self._upload(scan_id, prepared.data, prepared.format)
        return await self._detector.call(
            location, min_confidence=min_confidence, human_loop=self._loop_request(scan_id)
        )

    async def start(self, report: ScanReport, alert: AlertRef, image: bytes) -> None:
        scan_id = report.scan_id
        name = loop_name(scan_id)
        arn = report.detection.review_ref
        if self._config.trigger == "flow":
            if arn is None:
                return  # the flow definition's conditions asked for no human review
        else:
            try:
                arn = await self._retrying(
                    lambda: self._open_loop(scan_id, image, report.detection.min_confidence),
                    f"opening the human loop for {scan_id}",
                )
            except ModbotError as exc:
                await self._start_failed(report, name, exc)
                return
        if await self._reviews.open(scan_id, report.sha256, self.name, loop_name=name):
            await self._notifier.reply(alert, messages.a2i_review_started(name, arn))

    async def _retrying(self, attempt: Callable[[], Awaitable[str]], what: str) -> str:
        """`attempt()`, retried with backoff while it fails transiently, up to the retry limit.

        The scan waits meanwhile (it stays pending, so a restart resumes it); reusing the loop
        name makes a retry after an unseen success return the same loop.
        """
        first_failure: float | None = None
        failures = 0
        while True:
            try:
                return await attempt()
            except ModbotError as exc:
                now = time.monotonic()
                first_failure = now if first_failure is None else first_failure
                if not _transient(exc) or self._retry.exhausted(first_failure, now):
                    raise
                failures += 1
                delay = self._retry.delay(failures)
                log.info("%s: %s; retry %d in %.2fs", what, exc, failures, delay)
                await asyncio.sleep(delay)

    async def _open_loop(self, scan_id: str, image: bytes, min_confidence: float) -> str:
        """`policy` trigger: a second call, with HumanLoopConfig; the flow must always open one."""
        prepared = await prepare_within_budget(image)
        location = await self._upload(scan_id, prepared.data, prepared.format)
        detection = await self._detector.call(
            location, min_confidence=min_confidence, human_loop=self._loop_request(scan_id)
        )
        if detection.review_ref is None:
            raise ReviewFailed(
                "A2I did not open a human loop",
                "with MODBOT_A2I_TRIGGER=policy the flow definition must have no activation "
                "conditions",
            )
        return detection.review_ref

    async def _start_failed(self, report: ScanReport, name: str, exc: Exception) -> None:
        log.warning("A2I review for %s not started: %s", report.scan_id, exc)
        await self._reviews.open(report.scan_id, report.sha256, self.name, loop_name=name)
        await self._reviews.fail(report.scan_id, messages.review_not_started(exc))
        self._reporter.wake()

    def _loop_request(self, scan_id: str) -> HumanLoopRequest:
        return HumanLoopRequest(loop_name(scan_id), self._config.flow_definition_arn)

    async def _upload(self, scan_id: str, data: bytes, fmt: str | None = None) -> S3Image:
        fmt = fmt or ("PNG" if data[:4] == b"\x89PNG" else "JPEG")
        key = f"{self._config.prefix}{scan_id}.{'png' if fmt == 'PNG' else 'jpg'}"
        return await self._loops.put_image(key, data, fmt)

    # -- completion ----------------------------------------------------------------------

    async def check(self, name: str, via: str) -> None:
        """Ask A2I (DescribeHumanLoop) how the loop stands and apply a final state once.

        Duplicates and late, out-of-order events change nothing. Transient AWS errors raise
        (the caller retries later); an output that cannot be used closes the review as failed.
        Claimed: of the replicas that get the same event (or poll at once), one asks; the
        others leave it (if that one dies midway, the poller asks again once its claim ends).
        """
        claim = f"a2i:{name}"
        if not await self._claims.take(claim):
            return
        try:
            await self._check(name, via)
        finally:
            await asyncio.shield(self._claims.release(claim))

    async def _check(self, name: str, via: str) -> None:
        review = await self._reviews.by_loop(name)
        if review is None or review.status != "open":
            return
        status = await self._loops.describe(name)
        if status.flow_definition_arn != self._config.flow_definition_arn:
            log.warning("loop %s belongs to %s, not to our flow", name, status.flow_definition_arn)
            return
        if status.status not in TERMINAL:
            return
        if status.status != "Completed":
            failure = messages.a2i_loop_failure(
                status.status, status.failure_code, status.failure_reason
            )
            decided = await self._reviews.fail(review.scan_id, failure)
        else:
            try:
                answers = await self._read_answers(status)
            except ReviewFailed as exc:
                if exc.transient:
                    raise
                log.warning("A2I output of %s unusable: %s", name, exc)
                decided = await self._reviews.fail(review.scan_id, str(exc))
            else:
                decided = await self._decide(review, answers, via)
        if decided:
            self._reporter.wake()

    async def _decide(self, review: Review, answers: list[list[str]], via: str) -> bool:
        violation, labels = a2i_verdict(answers)
        verdict = Verdict(
            violation=violation,
            labels=labels,
            workers=len(answers),
            loop_name=review.loop_name,
            seconds=time.time() - review.created_at,
        )
        return await self._reviews.decide(review.scan_id, verdict, f"a2i-{via}")

    async def _read_answers(self, status: LoopStatus) -> list[list[str]]:
        """The workers' answers in output.json, read from where DescribeHumanLoop says and only
        from the flow definition's output layout."""
        uri = status.output_uri
        if not uri:
            raise ReviewFailed(
                "the completed human loop has no output", status.name, transient=True
            )
        if not output_in_flow_location(
            uri, flow_name(self._config.flow_definition_arn), status.name
        ):
            raise ReviewFailed("the A2I output is outside the flow definition's output path", uri)
        output = await self._loops.read_output(uri)
        try:
            return a2i_answers(output)
        except ValueError as exc:
            raise ReviewFailed("the A2I output could not be read", f"{uri}: {exc}") from None

    async def consume_events(self) -> None:
        """Take the EventBridge status events off their SQS queue (delivered at least once).

        An event only says which loop to ask about. A message is deleted once handled, and also
        when it is malformed or its loop could not be handled for good (the poller asks about
        every open loop anyway); it stays for SQS to deliver again (and, with a redrive policy,
        to dead-letter) only after a transient AWS error.
        """
        while True:
            # errors (SQS unreachable) go to the Supervisor, which backs off and restarts
            for event in await self._loops.receive_events():
                if await self._handle_event(event):
                    await self._loops.delete_event(event.handle)

    async def _handle_event(self, event: LoopEvent) -> bool:
        """Act on one event; False to leave it on the queue for another delivery."""
        name = event.loop_name
        if name is None:
            log.warning("malformed A2I event deleted: %.200r", event.body)
            return True
        try:
            await self.check(name, "sqs")
        except Exception as exc:
            if _transient(exc):
                log.warning("A2I event for %s kept for retry: %s", name, exc)
                return False
            log.exception("A2I event for %s could not be handled; deleted", name)
        return True

    async def poll(self) -> None:
        """The fallback: ask DescribeHumanLoop about every open loop; one never blocks another."""
        for review in await self._reviews.open_reviews(self.name):
            if review.loop_name is None:
                continue
            try:
                await self.check(review.loop_name, "poll")
            except Exception as exc:
                log.warning("A2I loop %s not checked: %s", review.loop_name, exc)

    async def run_poller(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self._config.poll_seconds)
