"""Human review with Amazon A2I, as in AWS's reference design: S3 copy, human loop, SQS events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from bot import messages
from bot.decode_budget import prepare_within_budget
from bot.detector import Detector, HumanLoopRequest, S3Image
from bot.errors import DetectionFailed, ModbotError, ReviewFailed
from bot.model import AlertRef, Detection, History, ScanReport
from bot.notifier import Notifier
from bot.review_store import ReviewStore
from bot.store import Store
from bot.verdict import Verdict, a2i_answers, a2i_verdict
from bot.verdict_reporter import VerdictReporter, review_history

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
    """A loop's state, from an EventBridge event or DescribeHumanLoop."""

    name: str
    status: str
    output_uri: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None


def parse_status_event(body: str) -> LoopStatus | None:
    """The "SageMaker A2I HumanLoop Status Change" event as delivered to SQS (pure)."""
    try:
        event = json.loads(body)
    except json.JSONDecodeError:
        return None
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict) or not detail.get("humanLoopName"):
        return None
    output = detail.get("humanLoopOutput") or {}
    return LoopStatus(
        name=str(detail["humanLoopName"]),
        status=str(detail.get("humanLoopStatus") or ""),
        output_uri=output.get("outputS3Uri"),
        failure_code=detail.get("failureCode"),
        failure_reason=detail.get("failureReason"),
    )


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
        detector: Detector,
        s3: S3Client,
        a2i: AugmentedAIRuntimeClient,
        sqs: SQSClient | None,
    ) -> None:
        self._config = config
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

    async def detect(self, scan_id: str, image: bytes, min_confidence: float) -> Detection:
        """`flow` trigger: copy to S3 and let the flow definition's conditions decide."""
        location = await self._upload(scan_id, image)
        return await self._detector.detect(
            location, min_confidence=min_confidence, human_loop=self._loop_request(scan_id)
        )

    async def start(self, report: ScanReport, alert: AlertRef, image: bytes) -> None:
        scan_id = report.scan_id
        name = loop_name(scan_id)
        try:
            arn = report.detection.human_loop_arn
            if self._config.trigger == "flow":
                if arn is None:
                    return  # the flow definition's conditions asked for no human review
            else:
                arn = await self._open_loop(scan_id, image, report.detection.min_confidence)
        except (ModbotError, ClientError, BotoCoreError) as exc:
            await self._start_failed(report, alert, name, exc)
            return
        if await self._reviews.open(scan_id, report.sha256, self.name, loop_name=name):
            await self._notifier.reply(alert, messages.a2i_review_started(name, arn))

    async def _open_loop(self, scan_id: str, image: bytes, min_confidence: float) -> str:
        """`policy` trigger: a second call, with HumanLoopConfig; the flow must always open one."""
        prepared = await prepare_within_budget(image)
        location = await self._upload(scan_id, prepared.data, prepared.format)
        detection = await self._detector.detect(
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
                f"could not copy the image to s3://{self._config.bucket}", _reason(exc)
            ) from None
        return S3Image(self._config.bucket, key)

    async def history(self, sha256: str, scan_id: str) -> History:
        return await review_history(self._store, self._reviews, sha256, scan_id)

    # -- completion ----------------------------------------------------------------------

    async def settle(self, status: LoopStatus, via: str) -> None:
        """Apply a loop's state once. Duplicates and late, out-of-order events change nothing."""
        if status.status not in TERMINAL:
            return
        review = await self._reviews.by_loop(status.name)
        if review is None or review.status != "open":
            return
        if status.status == "Completed":
            if not status.output_uri:
                raise ReviewFailed("completed loop has no output", status.name)
            answers = a2i_answers(await self._read_output(status.output_uri))
            violation, labels = a2i_verdict(answers)
            verdict = Verdict(
                violation=violation,
                labels=labels,
                workers=len(answers),
                loop_name=status.name,
                seconds=time.time() - review.created_at,
            )
            decided = await self._reviews.decide(review.scan_id, verdict, f"a2i-{via}")
        else:
            decided = await self._reviews.fail(review.scan_id, _failure_text(status))
        if decided:
            self._reporter.wake()

    async def _read_output(self, uri: str) -> dict[str, Any]:
        parts = urlsplit(uri)
        try:
            response = await asyncio.to_thread(
                self._s3.get_object, Bucket=parts.netloc, Key=parts.path.lstrip("/")
            )
            body = await asyncio.to_thread(response["Body"].read)
        except (ClientError, BotoCoreError) as exc:
            raise ReviewFailed("could not read the A2I output", f"{uri}: {_reason(exc)}") from None
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ReviewFailed("A2I output is not a JSON object", uri)
        return data

    async def consume_events(self) -> None:
        """Long-poll the SQS queue of EventBridge status events (delivered at least once)."""
        assert self._sqs is not None
        assert self._config.queue_url is not None
        sqs, queue = self._sqs, self._config.queue_url
        while True:
            try:
                response = await asyncio.get_running_loop().run_in_executor(
                    self._sqs_threads,
                    lambda: sqs.receive_message(
                        QueueUrl=queue,
                        MaxNumberOfMessages=10,
                        WaitTimeSeconds=self._config.sqs_wait_seconds,
                    ),
                )
            except (ClientError, BotoCoreError) as exc:
                log.warning("SQS receive failed (polling continues): %s", _reason(exc))
                await asyncio.sleep(5)
                continue
            for message in response.get("Messages", []):
                status = parse_status_event(message.get("Body", ""))
                try:
                    if status is not None:
                        await self.settle(status, "sqs")
                except (ModbotError, ClientError, BotoCoreError) as exc:
                    log.warning(
                        "A2I event for %s kept for retry: %s", status.name if status else "?", exc
                    )
                    continue  # not deleted: SQS shows it again after the visibility timeout
                await asyncio.to_thread(
                    sqs.delete_message, QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"]
                )

    async def poll(self) -> None:
        """The fallback: ask DescribeHumanLoop about every open loop."""
        for review in await self._reviews.open_reviews(self.name):
            if review.loop_name is None:
                continue
            try:
                described = await asyncio.to_thread(
                    self._a2i.describe_human_loop, HumanLoopName=review.loop_name
                )
                output = described.get("HumanLoopOutput") or {}
                await self.settle(
                    LoopStatus(
                        name=review.loop_name,
                        status=described["HumanLoopStatus"],
                        output_uri=output.get("OutputS3Uri"),
                        failure_code=described.get("FailureCode"),
                        failure_reason=described.get("FailureReason"),
                    ),
                    "poll",
                )
            except (ModbotError, ClientError, BotoCoreError) as exc:
                log.warning("DescribeHumanLoop %s failed: %s", review.loop_name, _reason(exc))

    async def run_poller(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self._config.poll_seconds)


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
