"""Runs the real modbot app against every local stand-in, for the *_functional tests.

Slack: FakeSlack (Web API, file hosting, Socket Mode). AWS: the Rekognition/A2I emulator.
Links: an image server on 127.0.0.2 (the only private address the bot is allowed to reach)
and a "target" server on 127.0.0.1 that plays the internal service an attacker aims at.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.adapters.http_server import start as start_http
from bot.app import RUNTIME, Runtime, http_app, socket_mode
from bot.core.policy import load_policy
from bot.settings import load_settings
from tests.fakes import slack_payloads as payloads
from tests.fakes.aws import AwsEmulator
from tests.fakes.images import make_image
from tests.fakes.slack import FakeSlack
from tests.fakes.web import WebServer

REPO_ROOT = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "test-signing-secret-0123456789"
ALERTS = "C0ALERTS"
GENERAL = "C0GENERAL"
POSTER = "U0POSTER"
MODERATOR = "U0MOD"

# Colours the emulator recognises (see AwsEmulator.script); anything else scans clean.
REVIEW_COLOR = (200, 40, 40)
FLAG_COLOR = (40, 40, 200)
CLEAN_COLOR = (40, 200, 40)


@dataclass
class Stack:
    """The stand-ins, started; the bot is pointed at them through its normal settings."""

    slack: FakeSlack
    aws: AwsEmulator
    web: WebServer  # 127.0.0.2, allowed by MODBOT_ALLOW_PRIVATE_NETWORKS
    target: WebServer  # 127.0.0.1, must never be contacted
    env: dict[str, str]
    tmp: Path

    def script_defaults(self) -> None:
        self.aws.script(REVIEW_COLOR, {"Exposed Female Nipple": 72.4})
        self.aws.script(FLAG_COLOR, {"Exposed Male Genitalia": 97.26, "Weapons": 55.0})

    def upload(
        self,
        color: tuple[int, int, int],
        *,
        name: str = "photo.png",
        channel: str = GENERAL,
        size: tuple[int, int] = (320, 240),
        data: bytes | None = None,
        mimetype: str = "image/png",
    ) -> dict[str, Any]:
        """Put a file on the fake Slack and return its file object."""
        data = data if data is not None else make_image(color, size, "PNG")
        return self.slack.add_file(data, name=name, mimetype=mimetype, channel=channel, user=POSTER)

    def alerts(self) -> list[dict[str, Any]]:
        """Top-level messages in the alerts channel (thread replies excluded)."""
        return [m for m in self.slack.messages.get(ALERTS, []) if not m.get("thread_ts")]

    def thread(self, alert: dict[str, Any]) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages.get(ALERTS, []) if m.get("thread_ts") == alert["ts"]]

    def rekognition_calls(self) -> int:
        return len(self.aws.calls)


@dataclass
class Bot:
    """A running modbot and ways to talk to it the way Slack does."""

    runtime: Runtime
    stack: Stack
    send: Callable[[str, dict[str, Any], int], Any]
    events_sent: list[str] = field(default_factory=list)

    async def event(self, body: dict[str, Any], *, retry: int = 0) -> Any:
        return await self.send("events", body, retry)

    async def command(
        self, text: str, *, channel: str = GENERAL, user: str = POSTER, key: str = "cmd"
    ) -> Any:
        body = payloads.slash_command(text, channel, user, self.stack.slack.response_url(key))
        return await self.send("commands", body, 0)

    async def interaction(self, body: dict[str, Any]) -> Any:
        return await self.send("interactive", body, 0)

    async def idle(self, within: float = 10.0) -> None:
        """Wait until every accepted scan has reached its outcome."""
        await asyncio.wait_for(self.runtime.pipeline.idle(), within)


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 10.0) -> None:
    """Await an async condition (a database or HTTP state), polled every 20 ms, with a timeout."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@asynccontextmanager
async def started_stack(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, *, moto_url: str | None = None
) -> AsyncIterator[Stack]:
    slack = FakeSlack(wall_clock_ts=True)  # Slack's ts follow the clock; history `oldest` needs it
    aws = AwsEmulator(s3_endpoint=moto_url)
    web_server = WebServer(host="127.0.0.2")
    target = WebServer(host="127.0.0.1")
    for server in (slack, aws, web_server, target):
        await server.start()
    env = {
        **({"AWS_ENDPOINT_URL_S3": moto_url, "AWS_ENDPOINT_URL_SQS": moto_url} if moto_url else {}),
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "MODBOT_ALERT_CHANNEL": ALERTS,
        "DATABASE_URL": f"sqlite:///{tmp}/modbot.db",
        "MODBOT_ALLOW_PRIVATE_NETWORKS": "127.0.0.2/32",
        "MODBOT_REKOGNITION_TPS": "50",
        "AWS_ENDPOINT_URL_REKOGNITION": aws.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_A2I_RUNTIME": aws.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    _set_env(monkeypatch, env)
    stack = Stack(slack, aws, web_server, target, env, tmp)
    stack.script_defaults()
    try:
        yield stack
    finally:
        for server in (target, web_server, aws, slack):
            await server.close()


@asynccontextmanager
async def http_bot(stack: Stack) -> AsyncIterator[Bot]:
    """modbot in HTTP mode on an ephemeral port; requests are signed like Slack's."""
    settings = load_settings()
    app = http_app(settings, load_policy(settings.policy_file))
    runner = await start_http(app, "127.0.0.1", 0)  # production's server and limits
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/slack/events"
    async with aiohttp.ClientSession() as session:

        async def send(kind: str, body: dict[str, Any], retry: int) -> dict[str, Any]:
            raw, content_type = payloads.http_body(kind, body)
            headers = {**payloads.signed_headers(SIGNING_SECRET, raw), "Content-Type": content_type}
            if retry:
                headers["X-Slack-Retry-Num"] = str(retry)
                headers["X-Slack-Retry-Reason"] = "http_timeout"
            async with session.post(url, data=raw.encode(), headers=headers) as response:
                text = await response.text()
                return {"status": response.status, "body": text}

        bot = Bot(app[RUNTIME], stack, send)
        bot.url = url  # type: ignore[attr-defined]
        try:
            yield bot
        finally:
            await runner.cleanup()


@asynccontextmanager
async def socket_bot(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    """modbot in Socket Mode: envelopes pushed by the fake, acks recorded by it."""
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-test")
    settings = load_settings()
    async with socket_mode(settings, load_policy(settings.policy_file)) as runtime:
        await stack.slack.wait_connected()

        async def send(kind: str, body: dict[str, Any], retry: int) -> dict[str, Any]:
            envelope_id = await stack.slack.push(payloads.envelope(kind, body, retry))
            ack = await stack.slack.wait_ack(envelope_id)
            return {"status": 200, "body": json.dumps(ack.get("payload") or {}), "ack": ack}

        yield Bot(runtime, stack, send)


@dataclass
class A2I:
    """A2I wiring for a test: bucket, events queue and flow definition (moto + emulator)."""

    bucket: str
    queue_url: str | None
    flow_arn: str
    sqs: Any

    def queue_depth(self) -> int:
        if self.queue_url is None:
            return 0
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())


def enable_a2i(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
    *,
    trigger: str = "policy",
    events: bool = True,
    poll_seconds: float = 3600,
    conditions: dict[str, Any] | None = None,
    task_count: int = 1,
) -> A2I:
    """Configure MODBOT_REVIEW_BACKEND=a2i against moto S3/SQS and the emulator's A2I."""
    import uuid

    import boto3

    suffix = uuid.uuid4().hex[:10]
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", **keys)
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1", **keys)
    bucket = f"modbot-{suffix}"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=f"a2i-{suffix}")["QueueUrl"] if events else None
    flow_arn = stack.aws.add_flow_definition(
        f"fd-{suffix}",
        output_s3_uri=f"s3://{bucket}/a2i-output",
        conditions=conditions,
        task_count=task_count,
    )
    stack.aws.set_events_queue(queue_url)
    env = {
        "MODBOT_REVIEW_BACKEND": "a2i",
        "MODBOT_A2I_FLOW_DEFINITION_ARN": flow_arn,
        "MODBOT_A2I_TRIGGER": trigger,
        "MODBOT_S3_BUCKET": bucket,
        "MODBOT_A2I_POLL_SECONDS": str(poll_seconds),
    }
    if queue_url:
        env["MODBOT_A2I_EVENTS_QUEUE_URL"] = queue_url
    _set_env(monkeypatch, env)
    return A2I(bucket, queue_url, flow_arn, sqs)


class BotProcess:
    """`modbot serve` as a real child process, for kill and shutdown tests."""

    def __init__(
        self, stack: Stack, *, open_files: int | None = None, transport: str = "--http"
    ) -> None:
        self.stack = stack
        self.transport = transport  # --socket: Socket Mode, with /healthz on PORT all the same
        self.open_files = open_files  # RLIMIT_NOFILE for the child, as a container may set it
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.output = b""
        self._drain: asyncio.Task[None] | None = None

    async def start(self, within: float = 30.0) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PORT": str(self.port)}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            self.transport,
            env=env,
            cwd=self.stack.tmp,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=self._limit_files if self.open_files else None,
        )
        # Read the child's output as it comes: a full pipe would block its logging, and with it
        # the child itself (as hundreds of logged accept() errors once did at shutdown).
        self._drain = asyncio.create_task(self._pump())
        async with asyncio.timeout(within), aiohttp.ClientSession() as session:
            while True:  # wait for the condition "serving", not for a fixed time
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if self.process.returncode is not None:
                    raise AssertionError(await self._read_output())
                await asyncio.sleep(0.05)

    def _limit_files(self) -> None:
        import resource

        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    async def event(self, body: dict[str, Any]) -> int:
        return await self.send("events", body)

    async def interaction(self, body: dict[str, Any]) -> int:
        """A signed interactivity payload (a click, a modal submission); the HTTP status."""
        return await self.send("interactive", body)

    async def send(self, kind: str, body: dict[str, Any]) -> int:
        raw, content_type = payloads.http_body(kind, body)
        headers = {**payloads.signed_headers(SIGNING_SECRET, raw), "Content-Type": content_type}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/slack/events", data=raw.encode(), headers=headers
            ) as response,
        ):
            return response.status

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()
        await self._read_output()

    async def terminate(self, within: float = 30.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit code."""
        assert self.process is not None
        self.process.terminate()
        async with asyncio.timeout(within):
            code = await self.process.wait()
        await self._read_output()
        return code

    async def _pump(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(65536):
            self.output += chunk

    async def _read_output(self) -> str:
        """Everything the child wrote, once it has exited."""
        assert self._drain is not None
        await self._drain
        return self.output.decode(errors="replace")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
