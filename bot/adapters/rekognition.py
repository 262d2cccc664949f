"""Amazon Rekognition DetectModerationLabels: the call (in threads, paced) apart from the parse."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bot.adapters.images.budget import prepare_within_budget
from bot.adapters.ratelimit import RateLimiter
from bot.core.errors import DetectionFailed
from bot.core.metrics import NO_METRICS, CallResult, Metrics
from bot.core.model import ContentType, Detection, Label
from bot.core.pacing import calls_in_flight

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient

log = logging.getLogger(__name__)

THROTTLE_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "TooManyRequestsException"}
)
REKOGNITION = "rekognition"  # detections are stored per detector
TRANSIENT_CODES = THROTTLE_CODES | {"InternalServerError", "ServiceUnavailable"}


@dataclass(frozen=True)
class S3Image:
    bucket: str
    key: str


@dataclass(frozen=True)
class HumanLoopRequest:
    """Ask Rekognition to open an A2I human loop for this call."""

    name: str
    flow_definition_arn: str


class RekognitionCall(Protocol):
    """One DetectModerationLabels call as A2I needs it: an image in S3, a human loop."""

    async def call(
        self,
        image: bytes | S3Image,
        *,
        min_confidence: float,
        human_loop: HumanLoopRequest | None = None,
    ) -> Detection: ...


def parse_detection(response: Mapping[str, Any], min_confidence: float) -> Detection:
    """Translate a DetectModerationLabels response into our own types (pure)."""
    labels = tuple(
        Label(
            name=item["Name"],
            parent=item.get("ParentName") or "",
            level=int(item.get("TaxonomyLevel") or (1 if not item.get("ParentName") else 2)),
            confidence=float(item["Confidence"]),
        )
        for item in response.get("ModerationLabels") or ()
    )
    content_types = tuple(
        ContentType(name=item["Name"], confidence=float(item.get("Confidence", 0.0)))
        for item in response.get("ContentTypes") or ()
    )
    loop = response.get("HumanLoopActivationOutput") or {}
    return Detection(
        labels=labels,
        model_version=str(response.get("ModerationModelVersion") or "unknown"),
        content_types=content_types,
        min_confidence=min_confidence,
        review_ref=loop.get("HumanLoopArn"),
    )


def build_request(
    image: bytes | S3Image, min_confidence: float, human_loop: HumanLoopRequest | None
) -> dict[str, Any]:
    image_param: dict[str, Any] = (
        {"S3Object": {"Bucket": image.bucket, "Name": image.key}}
        if isinstance(image, S3Image)
        else {"Bytes": image}
    )
    params: dict[str, Any] = {"Image": image_param, "MinConfidence": float(min_confidence)}
    if human_loop is not None:
        params["HumanLoopConfig"] = {
            "HumanLoopName": human_loop.name,
            "FlowDefinitionArn": human_loop.flow_definition_arn,
            "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
        }
    return params


def rekognition_client(region: str | None, concurrency: int) -> RekognitionClient:
    """Made the standard way, so the credential chain and AWS_ENDPOINT_URL_* apply unchanged.

    botocore's own retries are off: every attempt must pass through our rate limiter.
    """
    config = Config(
        retries={"total_max_attempts": 1},
        max_pool_connections=concurrency,
        connect_timeout=5,
        read_timeout=30,
    )
    return boto3.session.Session().client("rekognition", region_name=region, config=config)


class RekognitionDetector:
    """The Detector port over Rekognition: prepares the image to Rekognition's size and format
    rules (within the decode memory budget), then calls it from worker threads, paced by a
    RateLimiter, retrying what is transient."""

    name = REKOGNITION

    def __init__(
        self,
        client: RekognitionClient,
        limiter: RateLimiter,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._limiter = limiter
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        workers = calls_in_flight(limiter.ceiling)
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="rekognition")

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def detect(self, image: bytes, min_confidence: float) -> Detection:
        prepared = await prepare_within_budget(image)
        return await self.call(prepared.data, min_confidence=min_confidence)

    async def call(
        self,
        image: bytes | S3Image,
        *,
        min_confidence: float,
        human_loop: HumanLoopRequest | None = None,
    ) -> Detection:
        """One DetectModerationLabels call on an image already fit for Rekognition."""
        params = build_request(image, min_confidence, human_loop)
        loop = asyncio.get_running_loop()
        for attempt in range(1, self._max_attempts + 1):
            await self._limiter.acquire()
            try:
                response = await loop.run_in_executor(
                    self._threads, lambda: self._client.detect_moderation_labels(**params)
                )
            except ClientError as exc:
                failure = _failure(exc)
            except BotoCoreError as exc:  # connection reset, read timeout, endpoint down
                failure = DetectionFailed(type(exc).__name__, str(exc), transient=True)
            else:
                self._limiter.succeeded()
                self._metrics.detector_call(self.name, CallResult.OK)
                return parse_detection(response, min_confidence)
            if failure.code in THROTTLE_CODES:
                self._limiter.throttled()
                self._metrics.detector_call(self.name, CallResult.THROTTLED)
            else:
                self._metrics.detector_call(self.name, CallResult.ERROR)
            if not failure.transient or attempt == self._max_attempts:
                raise failure
            delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            log.info("rekognition %s, retry %d in %.2fs", failure.code, attempt, delay)
            await asyncio.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - jitter only
        raise AssertionError("unreachable")  # pragma: no cover


def _failure(exc: ClientError) -> DetectionFailed:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "Unknown")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    transient = code in TRANSIENT_CODES or status >= 500
    return DetectionFailed(code, str(error.get("Message") or ""), transient=transient)
