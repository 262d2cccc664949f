"""The emulator's own reach into S3 and SQS (moto in tests): image input, review output, events.

boto3 blocks, so every call runs in a worker thread; the clients are built once, lazily, with
dummy credentials, because the emulator must work whatever the test process has configured.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

MAX_S3_IMAGE = 15 * 1024 * 1024  # aws.md §1.6: S3 objects up to 15 MB


class ObjectMissing(Exception):
    """The S3 object cannot be read (missing bucket or key, no endpoint, S3 error)."""


class ObjectTooLarge(Exception):
    """The S3 object is bigger than Rekognition accepts."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/some/prefix/ -> ("bucket", "some/prefix"); trailing slashes dropped."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, prefix.strip("/")


class SideServices:
    """S3 reads and writes and SQS sends against one endpoint (moto serves both on one port)."""

    def __init__(self, endpoint: str | None, sqs_endpoint: str | None, region: str) -> None:
        self.endpoint = endpoint
        self.sqs_endpoint = sqs_endpoint or endpoint
        self.region = region
        self._clients: dict[str, Any] = {}  # boto3 clients are dynamically typed

    def _client(self, service: str) -> Any:
        endpoint = self.endpoint if service == "s3" else self.sqs_endpoint
        if endpoint is None:
            raise ObjectMissing(f"the emulator was started without an endpoint for {service}")
        if service not in self._clients:
            self._clients[service] = boto3.session.Session().client(
                service,  # type: ignore[call-overload]  # stubs want a literal service name
                endpoint_url=endpoint,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": 1}),
            )
        return self._clients[service]

    async def get_image(self, bucket: str, key: str, version: str | None) -> bytes:
        """The object's bytes; ObjectMissing or ObjectTooLarge as Rekognition would judge."""
        s3 = self._client("s3")

        def fetch() -> bytes:
            extra = {"VersionId": version} if version else {}
            try:
                head = s3.head_object(Bucket=bucket, Key=key, **extra)
                if head["ContentLength"] > MAX_S3_IMAGE:
                    raise ObjectTooLarge(f"{head['ContentLength']} bytes")
                body: bytes = s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
            except (ClientError, BotoCoreError) as exc:
                raise ObjectMissing(str(exc)) from exc
            return body

        return await asyncio.to_thread(fetch)

    async def put_json(self, uri: str, document: Any) -> None:
        """Write `document` as compact JSON on one line, as A2I writes output.json."""
        s3 = self._client("s3")
        bucket, key = parse_s3_uri(uri)
        body = json.dumps(document, separators=(",", ":")).encode()
        await asyncio.to_thread(
            s3.put_object, Bucket=bucket, Key=key, Body=body, ContentType="application/json"
        )

    async def put_bytes(self, uri: str, body: bytes) -> None:
        """Write `body` as it is (a broken output.json, for instance)."""
        s3 = self._client("s3")
        bucket, key = parse_s3_uri(uri)
        await asyncio.to_thread(
            s3.put_object, Bucket=bucket, Key=key, Body=body, ContentType="application/json"
        )

    async def send(self, queue_url: str, document: Any) -> None:
        """Deliver one event as an EventBridge SQS target does: the whole event as the body."""
        sqs = self._client("sqs")
        await asyncio.to_thread(
            sqs.send_message, QueueUrl=queue_url, MessageBody=json.dumps(document)
        )
