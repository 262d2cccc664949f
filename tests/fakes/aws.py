"""An in-process emulator of Rekognition DetectModerationLabels and the A2I runtime, over real HTTP.

moto implements neither API (aws.md "Read this first"), so tests and benchmarks point boto3 here.
One aiohttp server serves both protocols:

- Rekognition (awsJson1_1): ``POST /`` with
  ``X-Amz-Target: RekognitionService.DetectModerationLabels``;
- SageMaker (awsJson1_1): ``POST /`` with ``X-Amz-Target: SageMaker.<Op>`` for the flow-definition
  and human-task-UI calls (aws_sagemaker.py; ``AWS_ENDPOINT_URL_SAGEMAKER``);
- A2I runtime (rest-json): ``POST /human-loops``, ``GET /human-loops``, ``GET|DELETE
  /human-loops/{name}``, ``POST /human-loops/stop``;
- test control (JSON): ``/_emulator/...``, so a separate bot process or a benchmark can script it.

Point a client at it with ``endpoint_url=emulator.url``, or through botocore's per-service
environment variables (names derived from the service IDs "Rekognition" and "SageMaker A2I
Runtime", checked against botocore 1.44.8's ``configprovider``)::

    AWS_ENDPOINT_URL_REKOGNITION=http://127.0.0.1:PORT
    AWS_ENDPOINT_URL_SAGEMAKER_A2I_RUNTIME=http://127.0.0.1:PORT

For one attempt per call use ``Config(retries={"total_max_attempts": 1})``: botocore's
``max_attempts`` counts *retries*, so ``{"max_attempts": 1}`` still sends a failed call twice.

Any SigV4 ``Authorization`` header is accepted; it must be present, as AWS requires.
S3 (image input, review output) and SQS (loop events) are moto's, reached via ``s3_endpoint``.

Standalone: ``python -m tests.fakes.aws --port 0 --s3-endpoint URL`` prints its URL as the first
line of stdout and serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .aws_a2i import A2iRuntime, FlowDefinition, HumanLoop
from .aws_a2i_api import A2iApi
from .aws_control import control_routes
from .aws_rekognition import Rekognition, RekognitionCall, Scenario
from .aws_sagemaker import TARGET_PREFIX, SageMakerApi
from .aws_storage import SideServices
from .aws_wire import (
    AwsError,
    json11_error,
    json11_response,
    new_request_id,
    rest_json_error,
    rest_json_response,
)

__all__ = ["AwsEmulator", "FlowDefinition", "HumanLoop", "RekognitionCall", "Scenario"]

DETECT_TARGET = "RekognitionService.DetectModerationLabels"
MAX_BODY = 64 * 1024 * 1024  # base64 of a 5 MiB image, with room to exercise the limit

Handler = Callable[[web.Request], Awaitable[dict[str, Any]]]


class AwsEmulator:
    """Rekognition moderation plus the A2I runtime, scripted by colour; see the module docstring."""

    def __init__(
        self,
        *,
        s3_endpoint: str | None = None,
        sqs_endpoint: str | None = None,  # defaults to s3_endpoint: moto serves both
        region: str = "us-east-1",
        account: str = "111122223333",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.region = region
        self.account = account
        self.host = host
        self.port = port
        self.url = ""
        self._side = SideServices(s3_endpoint, sqs_endpoint, region)
        self.a2i = A2iRuntime(self._side, region, account)
        self.rekognition = Rekognition(self.a2i, self._side)
        self.sagemaker = SageMakerApi(self.a2i)  # CreateFlowDefinition & co. (aws_sagemaker.py)
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = port
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        self.sagemaker.close()
        await self.a2i.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AwsEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- Rekognition scripting -------------------------------------------------------------------

    @property
    def calls(self) -> list[RekognitionCall]:
        return self.rekognition.calls

    def script(
        self,
        color: tuple[int, int, int],
        labels: dict[str, float],
        content_types: dict[str, float] | None = None,
    ) -> None:
        """Images whose mean colour is within 24 of `color` get these labels (plus ancestors)."""
        self.rekognition.script(color, labels, content_types)

    def fail_next(self, code: str, count: int = 1) -> None:
        """The next `count` Rekognition calls return this modeled error."""
        self.rekognition.fail_next(code, count)

    def fail_next_human_loop_calls(self, code: str, count: int = 1) -> None:
        """The next `count` Rekognition calls that carry HumanLoopConfig return this error
        (calls without it are served normally): throttling aimed at opening human loops."""
        self.rekognition.fail_next_human_loop_calls(code, count)

    def set_fault_rate(
        self,
        rate: float,
        codes: tuple[str, ...] = (
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "InternalServerError",
        ),
        seed: int = 0,
    ) -> None:
        """Each call fails with probability `rate`, from a seeded generator (reproducible)."""
        self.rekognition.set_fault_rate(rate, codes, seed)

    def set_latency(self, seconds: float) -> None:
        """Every Rekognition call takes at least this long (without blocking the event loop)."""
        self.rekognition.latency = seconds

    def set_tps_quota(self, tps: float | None) -> None:
        """More than `tps` accepted calls in any sliding second: ProvisionedThroughputExceeded."""
        self.rekognition.set_tps_quota(tps)

    def reset(self) -> None:
        """Forget scripts, faults and recorded calls; flows and loops stay."""
        self.rekognition.reset()

    # -- A2I scripting ---------------------------------------------------------------------------

    @property
    def loops(self) -> dict[str, HumanLoop]:
        return self.a2i.loops

    def add_flow_definition(
        self,
        name: str,
        *,
        output_s3_uri: str,
        conditions: dict[str, Any] | None = None,
        task_count: int = 1,
    ) -> str:
        """Register a Rekognition-sourced flow definition; returns its ARN."""
        return self.a2i.add_flow_definition(
            name, output_s3_uri=output_s3_uri, conditions=conditions, task_count=task_count
        )

    async def complete_loop(
        self,
        name: str,
        answers: list[list[str]],
        *,
        events_queue_url: str | None = None,
        duplicate_event: bool = False,
        raw_output: bytes | None = None,
    ) -> str:
        """Workers answer (one label list each); output.json is written; returns its S3 URI.

        `raw_output`, when given, is written instead of the output.json A2I would write."""
        return await self.a2i.complete_loop(
            name,
            answers,
            events_queue_url=events_queue_url,
            duplicate_event=duplicate_event,
            raw_output=raw_output,
        )

    async def fail_loop(
        self,
        name: str,
        *,
        code: str = "Expired",
        reason: str = "The human loop expired before all workers answered.",
        events_queue_url: str | None = None,
        duplicate_event: bool = False,
    ) -> None:
        await self.a2i.fail_loop(
            name,
            code=code,
            reason=reason,
            events_queue_url=events_queue_url,
            duplicate_event=duplicate_event,
        )

    async def stop_loop(
        self, name: str, *, events_queue_url: str | None = None, duplicate_event: bool = False
    ) -> None:
        """Move a loop to Stopped (and announce it), as if its last worker let go."""
        await self.a2i.stop_loop(
            name, events_queue_url=events_queue_url, duplicate_event=duplicate_event
        )

    def set_active_loop_limit(self, n: int | None) -> None:
        """At most `n` InProgress/Stopping loops; above it new loops are refused."""
        self.a2i.active_loop_limit = n

    def set_events_queue(self, url: str | None) -> None:
        """Default SQS queue for status-change events (auto-stops and calls without a queue)."""
        self.a2i.events_queue_url = url

    def add_events_target(self, url: str) -> None:
        """Another SQS queue the status-change rule targets (EventBridge fans out to each)."""
        self.a2i.more_events_queues.append(url)

    def set_stop_delay(self, seconds: float | None) -> None:
        """Stopping -> Stopped after this delay; None keeps loops Stopping until stop_loop()."""
        self.a2i.stop_delay = seconds

    # -- HTTP ------------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        a2i = A2iApi(self.a2i)
        app.router.add_post("/", self._rekognition)
        app.router.add_post("/human-loops", _rest(a2i.api_start))
        app.router.add_get("/human-loops", _rest(a2i.api_list))
        app.router.add_post("/human-loops/stop", _rest(a2i.api_stop))
        app.router.add_get("/human-loops/{name}", _rest(a2i.api_describe))
        app.router.add_delete("/human-loops/{name}", _rest(a2i.api_delete))
        for method, path, handler in control_routes(self):
            app.router.add_route(method, f"/_emulator/{path}", handler)
        return app

    async def _rekognition(self, request: web.Request) -> web.Response:
        request_id = new_request_id()
        try:
            _check_signed(request)
            target = request.headers.get("X-Amz-Target", "")
            if target.startswith(TARGET_PREFIX):
                return await self.sagemaker.handle(request, target)
            if target != DETECT_TARGET:
                raise AwsError(
                    "UnknownOperationException", f"Operation {target!r} is not emulated."
                )
            try:
                body = json.loads(await request.read())
            except ValueError:
                raise AwsError(
                    "SerializationException", "Request body is not valid JSON."
                ) from None
            return json11_response(await self.rekognition.detect(body, request_id), request_id)
        except AwsError as exc:
            return json11_error(exc, request_id)


def _check_signed(request: web.Request) -> None:
    if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
        raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")


def _rest(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Wrap an A2I operation: signature check, request id, rest-json errors."""

    async def wrapped(request: web.Request) -> web.Response:
        request_id = new_request_id()
        try:
            _check_signed(request)
            return rest_json_response(await handler(request), request_id)
        except AwsError as exc:
            return rest_json_error(exc, request_id)

    return wrapped


async def _serve(args: argparse.Namespace) -> None:
    emulator = AwsEmulator(
        s3_endpoint=args.s3_endpoint,
        sqs_endpoint=args.sqs_endpoint,
        region=args.region,
        host=args.host,
        port=args.port,
    )
    await emulator.start()
    print(emulator.url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--s3-endpoint", default=None, help="moto (or S3) endpoint for images/output"
    )
    parser.add_argument("--sqs-endpoint", default=None, help="defaults to --s3-endpoint")
    parser.add_argument("--region", default="us-east-1")
    asyncio.run(_serve(parser.parse_args(argv if argv is not None else sys.argv[1:])))


if __name__ == "__main__":
    main()
