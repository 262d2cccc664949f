"""Amazon A2I's wire: images and answers in S3, DescribeHumanLoop, status events from SQS.

Every boto3 call runs in a thread here and every botocore error leaves this module as a
`ReviewFailed` with its `transient` flag; the review logic (bot/orchestration/a2i_review.py)
sees only our own types.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from bot.adapters.rekognition import TRANSIENT_CODES, S3Image
from bot.core.errors import ReviewFailed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_a2i_runtime import AugmentedAIRuntimeClient
    from mypy_boto3_sqs import SQSClient

T = TypeVar("T")


@dataclass(frozen=True)
class LoopStatus:
    """A loop's state as DescribeHumanLoop reports it (events are only hints to ask)."""

    name: str
    status: str
    flow_definition_arn: str | None = None
    output_uri: str | None = None
    failure_code: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class LoopEvent:
    """One status event from the queue: the loop it names (None: malformed) and its handle."""

    handle: str
    loop_name: str | None
    body: str


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


def received_events(response: dict[str, Any]) -> list[LoopEvent]:
    """An SQS ReceiveMessage response as events (pure)."""
    return [
        LoopEvent(
            handle=message["ReceiptHandle"],
            loop_name=event_loop_name(message.get("Body", "")),
            body=message.get("Body", ""),
        )
        for message in response.get("Messages", [])
    ]


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx, timeouts and connection errors: worth another try later."""
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code") or "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in TRANSIENT_CODES or code in ("SlowDown", "RequestTimeout") or status >= 500
    return bool(getattr(exc, "transient", False))


def error_text(exc: BaseException) -> str:
    """A botocore error as one line: `Code: Message` for AWS's answers."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    return str(exc)


class A2IClient:
    """The `HumanLoops` port over boto3: S3 for images and output, A2I runtime, SQS events."""

    def __init__(
        self,
        *,
        bucket: str,
        s3: S3Client,
        a2i: AugmentedAIRuntimeClient,
        sqs: SQSClient | None = None,
        queue_url: str | None = None,
        sqs_wait_seconds: int = 20,  # SQS long polling: one request per 20 s when idle
    ) -> None:
        self._bucket = bucket
        self._s3 = s3
        self._a2i = a2i
        self._sqs = sqs
        self._queue_url = queue_url
        self._sqs_wait_seconds = sqs_wait_seconds
        # A long poll blocks its thread for up to 20 s; shutdown must not wait for it.
        self._sqs_threads = ThreadPoolExecutor(1, thread_name_prefix="a2i-sqs")

    def close(self) -> None:
        self._sqs_threads.shutdown(wait=False, cancel_futures=True)

    async def put_image(self, key: str, data: bytes, fmt: str) -> S3Image:
        await _call(
            f"could not copy the image to s3://{self._bucket}",
            lambda: asyncio.to_thread(
                self._s3.put_object,
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=f"image/{fmt.lower()}",
                ServerSideEncryption="AES256",
            ),
        )
        return S3Image(self._bucket, key)

    async def describe(self, name: str) -> LoopStatus:
        described = await _call(
            f"could not ask A2I about human loop {name}",
            lambda: asyncio.to_thread(self._a2i.describe_human_loop, HumanLoopName=name),
        )
        return described_status(name, dict(described))

    async def read_output(self, uri: str) -> dict[str, Any]:
        parts = urlsplit(uri)

        async def read() -> bytes:
            response = await asyncio.to_thread(
                self._s3.get_object, Bucket=parts.netloc, Key=parts.path.lstrip("/")
            )
            return await asyncio.to_thread(response["Body"].read)

        try:
            body = await read()
        except (ClientError, BotoCoreError) as exc:
            raise ReviewFailed(
                "could not read the A2I output",
                f"{uri}: {error_text(exc)}",
                transient=is_transient(exc),
            ) from None
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ReviewFailed("the A2I output could not be read", f"{uri}: {exc}") from None
        if not isinstance(data, dict):
            raise ReviewFailed(
                "the A2I output could not be read", f"{uri}: output.json is not a JSON object"
            )
        return data

    async def receive_events(self) -> list[LoopEvent]:
        assert self._sqs is not None
        assert self._queue_url is not None
        sqs, queue, wait = self._sqs, self._queue_url, self._sqs_wait_seconds
        response = await _call(
            "could not receive A2I events",
            lambda: asyncio.get_running_loop().run_in_executor(
                self._sqs_threads,
                lambda: sqs.receive_message(
                    QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=wait
                ),
            ),
        )
        return received_events(dict(response))

    async def delete_event(self, handle: str) -> None:
        assert self._sqs is not None
        assert self._queue_url is not None
        sqs, queue = self._sqs, self._queue_url
        await _call(
            "could not delete an A2I event",
            lambda: asyncio.to_thread(sqs.delete_message, QueueUrl=queue, ReceiptHandle=handle),
        )


async def _call(what: str, call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except (ClientError, BotoCoreError) as exc:
        raise ReviewFailed(what, error_text(exc), transient=is_transient(exc)) from None
