"""Human review with Amazon A2I, as in AWS's reference design: S3 copy, human loop, SQS events."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from bot.adapters.database.reviews import Review, ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.images.budget import prepare_within_budget
from bot.adapters.rekognition import (
    REKOGNITION,
    TRANSIENT_CODES,
    HumanLoopRequest,
    RekognitionCall,
    S3Image,
)
from bot.adapters.slack import Notifier
from bot.core import messages
from bot.core.errors import DetectionFailed, ModbotError, ReviewFailed
from bot.core.model import AlertRef, Detection, History, ScanReport
from bot.core.retry import RetryPolicy
from bot.core.verdict import Verdict, a2i_answers, a2i_verdict
from bot.orchestration.verdicts import VerdictReporter, review_history

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_a2i_runtime import AugmentedAIRuntimeClient
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


def loop_name(scan_id: str) -> str:
    """A valid, unique HumanLoopName (^[a-z0-9](-*[a-z0-9])*$, at most 63 chars) for a scan."""
    name = f"modbot-{scan_id.lower()}"
    assert len(name) <= 63
    assert name.replace("-", "").isalnum()
    return name


class FlowDetector:
    """The Detector port for one scan with the A2I `flow` trigger: Rekognition with a human
    loop on every call (PRODUCT 6.1), the loop named from the scan."""

    name = REKOGNITION  # the same model as the plain call: its detections are interchangeable

    def __init__(self, reviews: A2IReviews, scan_id: str) -> None:
        self._reviews = reviews
        self._scan_id = scan_id

    async def detect(self, image: bytes, min_confidence: float) -> Detection:
        return await self._reviews.detect_in_flow(self._scan_id, image, min_confidence)


@dataclass(frozen=True)
class A2IConfig:
    flow_definition_arn: str
    bucket: str
    prefix: str
    trigger: str  # "policy" | "flow"
    queue_url: str | None
    poll_seconds: float
    sqs_wait_seconds: int = 20  # SQS long polling: one request per 20 s when idle


@dataclass(frozen=True)
class LoopStatus:
    """A loop's state as DescribeHumanLoop reports it (events are only hints to ask)."""

    name: str
    status: str
    flow_definition_arn: str | None = None
    output_uri: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None


def event_loop_name(body: str) -> str | None:
    """The loop a "SageMaker A2I HumanLoop Status Change" event (as SQS delivers it) is about,
    or None for anything else (pure). Nothing else in an event is trusted: anyone who can send
    to the queue can write one."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    detail = event.get("detail") if isinstance(event, dict) else None
    name = detail.get("humanLoopName") if isinstance(detail, dict) else None
    return name if isinstance(name, str) and name else None


def described_status(name: str, described: dict[str, Any]) -> LoopStatus:
    """A DescribeHumanLoop response as a LoopStatus (pure)."""
    output = described.get("HumanLoopOutput")
    return LoopStatus(
        name=name,
        status=str(described.get("HumanLoopStatus") or ""),
        flow_definition_arn=described.get("FlowDefinitionArn"),
        output_uri=output.get("OutputS3Uri") if isinstance(output, dict) else None,
        failure_code=described.get("FailureCode"),
        failure_reason=described.get("FailureReason"),
    )


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


class A2IReviews:
    """The `a2i` review backend."""

    buttons = False
    name = "a2i"

    def __init__(
        self,
        *,
        config: A2IConfig,
        store: Store,
        reviews: ReviewStore,
        notifier: Notifier,
        reporter: VerdictReporter,
        detector: RekognitionCall,
        s3: S3Client,
        a2i: AugmentedAIRuntimeClient,
        sqs: SQSClient | None,
        retry: RetryPolicy,
    ) -> None:
        self._config = config
        self._retry = retry
        self._store = store
        self._reviews = reviews
        self._notifier = notifier
        self._reporter = reporter
        self._detector = detector
        self._s3 = s3
        self._a2i = a2i
        self._sqs = sqs
        # A long poll blocks its thread for up to 20 s; shutdown must not wait for it.
        self._sqs_threads = ThreadPoolExecutor(1, thread_name_prefix="a2i-sqs")

    def close(self) -> None:
        self._sqs_threads.shutdown(wait=False, cancel_futures=True)

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
        arn = report.detection.human_loop_arn
        if self._config.trigger == "flow":
            if arn is None:
                return  # the flow definition's conditions asked for no human review
        else:
            try:
                arn = await self._retrying(
                    lambda: self._open_loop(scan_id, image, report.detection.min_confidence),
                    f"opening the human loop for {scan_id}",
                )
            except (ModbotError, ClientError, BotoCoreError) as exc:
                await self._start_failed(report, alert, name, exc)
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
            except (ModbotError, ClientError, BotoCoreError) as exc:
                now = time.monotonic()
                first_failure = now if first_failure is None else first_failure
                if not is_transient(exc) or self._retry.exhausted(first_failure, now):
                    raise
                failures += 1
                delay = self._retry.delay(failures)
                log.info("%s: %s; retry %d in %.2fs", what, _reason(exc), failures, delay)
                await asyncio.sleep(delay)

    async def _open_loop(self, scan_id: str, image: bytes, min_confidence: float) -> str:
        """`policy` trigger: a second call, with HumanLoopConfig; the flow must always open one."""
        prepared = await prepare_within_budget(image)
        location = await self._upload(scan_id, prepared.data, prepared.format)
        detection = await self._detector.call(
            location, min_confidence=min_confidence, human_loop=self._loop_request(scan_id)
        )
        if detection.human_loop_arn is None:
            raise ReviewFailed(
                "A2I did not open a human loop",
                "with MODBOT_A2I_TRIGGER=policy the flow definition must have no activation "
                "conditions",
            )
        return detection.human_loop_arn

    async def _start_failed(
        self, report: ScanReport, alert: AlertRef, name: str, exc: Exception
    ) -> None:
        reason = _reason(exc)
        log.warning("A2I review for %s not started: %s", report.scan_id, reason)
        await self._reviews.open(report.scan_id, report.sha256, self.name, loop_name=name)
        await self._reviews.fail(report.scan_id, f"could not start: {reason}")
        self._reporter.wake()

    def _loop_request(self, scan_id: str) -> HumanLoopRequest:
        return HumanLoopRequest(loop_name(scan_id), self._config.flow_definition_arn)

    async def _upload(self, scan_id: str, data: bytes, fmt: str | None = None) -> S3Image:
        fmt = fmt or ("PNG" if data[:4] == b"\x89PNG" else "JPEG")
        key = f"{self._config.prefix}{scan_id}.{'png' if fmt == 'PNG' else 'jpg'}"
        try:
            await asyncio.to_thread(
                self._s3.put_object,
                Bucket=self._config.bucket,
                Key=key,
                Body=data,
                ContentType=f"image/{fmt.lower()}",
                ServerSideEncryption="AES256",
            )
        except (ClientError, BotoCoreError) as exc:
            raise ReviewFailed(
                f"could not copy the image to s3://{self._config.bucket}",
                _reason(exc),
                transient=is_transient(exc),
            ) from None
        return S3Image(self._config.bucket, key)

    async def history(self, sha256: str, scan_id: str) -> History:
        return await review_history(self._store, self._reviews, sha256, scan_id)

    # -- completion ----------------------------------------------------------------------

    async def check(self, name: str, via: str) -> None:
        """Ask A2I (DescribeHumanLoop) how the loop stands and apply a final state once.

        Duplicates and late, out-of-order events change nothing. Transient AWS errors raise
        (the caller retries later); an output that cannot be used closes the review as failed.
        """
        review = await self._reviews.by_loop(name)
        if review is None or review.status != "open":
            return
        described = await asyncio.to_thread(self._a2i.describe_human_loop, HumanLoopName=name)
        status = described_status(name, dict(described))
        if status.flow_definition_arn != self._config.flow_definition_arn:
            log.warning("loop %s belongs to %s, not to our flow", name, status.flow_definition_arn)
            return
        if status.status not in TERMINAL:
            return
        if status.status != "Completed":
            decided = await self._reviews.fail(review.scan_id, _failure_text(status))
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
        parts = urlsplit(uri)
        try:
            response = await asyncio.to_thread(
                self._s3.get_object, Bucket=parts.netloc, Key=parts.path.lstrip("/")
            )
            body = await asyncio.to_thread(response["Body"].read)
        except (ClientError, BotoCoreError) as exc:
            raise ReviewFailed(
                "could not read the A2I output",
                f"{uri}: {_reason(exc)}",
                transient=is_transient(exc),
            ) from None
        try:
            return a2i_answers(json.loads(body))
        except ValueError as exc:
            raise ReviewFailed("the A2I output could not be read", f"{uri}: {exc}") from None

    async def consume_events(self) -> None:
        """Long-poll the SQS queue of EventBridge status events (delivered at least once).

        An event only says which loop to ask about. A message is deleted once handled, and also
        when it is malformed or its loop could not be handled for good (the poller asks about
        every open loop anyway); it stays for SQS to deliver again (and, with a redrive policy,
        to dead-letter) only after a transient AWS error.
        """
        assert self._sqs is not None
        assert self._config.queue_url is not None
        sqs, queue = self._sqs, self._config.queue_url
        while True:
            response = await asyncio.get_running_loop().run_in_executor(
                self._sqs_threads,
                lambda: sqs.receive_message(
                    QueueUrl=queue,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self._config.sqs_wait_seconds,
                ),
            )  # errors (SQS unreachable) go to the Supervisor, which backs off and restarts
            for message in response.get("Messages", []):
                if await self._handle_event(message.get("Body", "")):
                    await asyncio.to_thread(
                        sqs.delete_message, QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"]
                    )

    async def _handle_event(self, body: str) -> bool:
        """Act on one event; False to leave it on the queue for another delivery."""
        name = event_loop_name(body)
        if name is None:
            log.warning("malformed A2I event deleted: %.200r", body)
            return True
        try:
            await self.check(name, "sqs")
        except Exception as exc:
            if is_transient(exc):
                log.warning("A2I event for %s kept for retry: %s", name, _reason(exc))
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
                log.warning("A2I loop %s not checked: %s", review.loop_name, _reason(exc))

    async def run_poller(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self._config.poll_seconds)


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx, timeouts and connection errors: worth another try later."""
    if isinstance(exc, DetectionFailed | ReviewFailed):
        return exc.transient
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code") or "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in TRANSIENT_CODES or code in ("SlowDown", "RequestTimeout") or status >= 500
    return False


def _failure_text(status: LoopStatus) -> str:
    if status.status == "Stopped":
        return "the human loop was stopped"
    if status.failure_code == "Expired":
        return "the human loop expired before the workers answered"
    return f"the human loop failed: {status.failure_reason or status.failure_code or 'unknown'}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DetectionFailed) and exc.code == "HumanLoopQuotaExceededException":
        return "A2I human loop quota exceeded (too many reviews in progress)"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    return str(exc)
