"""The Amazon A2I state of the emulator: flow definitions, human loops and their life cycle, and
the simulated reviewers who finish loops (output.json to S3, EventBridge events to SQS).

Choices on points aws.md leaves UNCONFIRMED:
- a reused loop name with the same input (flow ARN + image, or InputContent) returns the
  existing loop, whatever its status; different input is refused (the caller picks the code);
- HumanLoopOutput (Describe) and humanLoopOutput (events) appear only for Completed loops;
- StopHumanLoop leaves the loop Stopping; it turns Stopped after `stop_delay` seconds (0 =
  at once; None = only when the test calls stop_loop);
- complete_loop wants exactly the flow's task_count answers; a loop created by StartHumanLoop
  gets the same Rekognition-shaped output.json, with its parsed InputContent as inputContent.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import aws_conditions
from .aws_storage import SideServices, parse_s3_uri
from .aws_wire import AwsError, iso_ms, validation_message
from .taxonomy_v7 import NODES

REQUEST_SOURCE = "AWS/Rekognition/DetectModerationLabels/Image/V3"
LOOP_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
FLOW_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
FLOW_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:flow-definition/.*$")
CONTENT_CLASSIFIERS = ("FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent")
MAX_INPUT_CONTENT = 3_145_728
ACTIVE = frozenset({"InProgress", "Stopping"})
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
FAILURE_CODES = ("ValidationError", "Expired", "InternalError")


@dataclass
class FlowDefinition:
    """What the emulator needs of a flow definition: where output goes and when loops open."""

    name: str
    arn: str
    output_s3_uri: str
    conditions: dict[str, Any] | None  # None: every HumanLoopConfig call opens a loop
    task_count: int


@dataclass
class HumanLoop:
    """One human loop's state, as Describe reports it plus what output.json needs."""

    name: str
    arn: str
    flow_definition_arn: str
    creation_time: datetime
    input_key: str  # identity of the input, for idempotency and conflicts
    input_content: dict[str, Any]  # output.json's inputContent
    status: str = "InProgress"
    failure_code: str | None = None
    failure_reason: str | None = None
    output_s3_uri: str | None = None

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "CreationTime": iso_ms(self.creation_time),
            "HumanLoopStatus": self.status,
            "HumanLoopName": self.name,
            "HumanLoopArn": self.arn,
            "FlowDefinitionArn": self.flow_definition_arn,
        }
        if self.failure_code:
            body["FailureCode"] = self.failure_code
        if self.failure_reason:
            body["FailureReason"] = self.failure_reason
        if self.output_s3_uri:
            body["HumanLoopOutput"] = {"OutputS3Uri": self.output_s3_uri}
        return body

    def to_json(self) -> dict[str, Any]:
        """For the control API: the Describe view plus the input."""
        return {**self.describe(), "InputContent": self.input_content}


def check_loop_name(name: object, where: str = "humanLoopName") -> str:
    """ValidationException unless the name is 1-63 chars of the documented pattern."""
    if not isinstance(name, str) or not name:
        raise AwsError(
            "ValidationException", validation_message(name, where, "Member must not be null")
        )
    if len(name) > 63:
        raise AwsError(
            "ValidationException",
            validation_message(name, where, "Member must have length less than or equal to 63"),
        )
    if not LOOP_NAME.match(name):
        raise AwsError(
            "ValidationException",
            validation_message(
                name,
                where,
                "Member must satisfy regular expression pattern: ^[a-z0-9](-*[a-z0-9])*$",
            ),
        )
    return name


def check_content_classifiers(data_attributes: object, where: str) -> list[str] | None:
    """The DataAttributes.ContentClassifiers enum, which botocore leaves to the server."""
    if data_attributes is None:
        return None
    classifiers = (
        data_attributes.get("ContentClassifiers") if isinstance(data_attributes, dict) else None
    )
    if not isinstance(classifiers, list) or len(classifiers) > 256:
        raise AwsError("ValidationException", validation_message(classifiers, where, "bad list"))
    for item in classifiers:
        if item not in CONTENT_CLASSIFIERS:
            raise AwsError(
                "ValidationException",
                validation_message(
                    item,
                    where,
                    f"Member must satisfy enum value set: [{', '.join(CONTENT_CLASSIFIERS)}]",
                ),
            )
    return classifiers


class A2iRuntime:
    """Flow definitions and loops, shared by Rekognition (which opens loops) and the REST API."""

    def __init__(self, side: SideServices, region: str, account: str) -> None:
        self.side = side
        self.region = region
        self.account = account
        self.flows: dict[str, FlowDefinition] = {}  # by ARN
        self.loops: dict[str, HumanLoop] = {}  # by name; deleted loops are removed
        self.active_loop_limit: int | None = None
        self.events_queue_url: str | None = None  # default sink for status-change events
        self.more_events_queues: list[str] = []  # further targets of the EventBridge rule
        self.stop_delay: float | None = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: list[asyncio.TimerHandle] = []

    # -- scripting -------------------------------------------------------------------------------

    def add_flow_definition(
        self,
        name: str,
        *,
        output_s3_uri: str,
        conditions: dict[str, Any] | None = None,
        task_count: int = 1,
    ) -> str:
        if not FLOW_NAME.match(name):
            raise ValueError(f"flow definition name {name!r} breaks [a-z0-9](-*[a-z0-9]){{0,62}}")
        if not 1 <= task_count <= 3:
            raise ValueError("task_count must be 1-3")
        parse_s3_uri(output_s3_uri)  # only s3:// output paths are emulated
        if conditions is not None:
            aws_conditions.validate(conditions)
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:flow-definition/{name}"
        self.flows[arn] = FlowDefinition(name, arn, output_s3_uri, conditions, task_count)
        return arn

    def open_loop(
        self,
        name: str,
        flow: FlowDefinition,
        input_key: str,
        input_content: dict[str, Any],
        *,
        conflict: AwsError,
        quota: AwsError,
    ) -> HumanLoop:
        """The existing loop for the same name and input, else a new InProgress loop."""
        existing = self.loops.get(name)
        if existing is not None:
            if existing.flow_definition_arn == flow.arn and existing.input_key == input_key:
                return existing
            raise conflict
        active = sum(1 for loop in self.loops.values() if loop.status in ACTIVE)
        if self.active_loop_limit is not None and active >= self.active_loop_limit:
            raise quota
        loop = HumanLoop(
            name=name,
            arn=f"arn:aws:sagemaker:{self.region}:{self.account}:human-loop/{name}",
            flow_definition_arn=flow.arn,
            creation_time=datetime.now(UTC),
            input_key=input_key,
            input_content=input_content,
        )
        self.loops[name] = loop
        return loop

    def _loop_in(self, name: str, statuses: frozenset[str]) -> HumanLoop:
        loop = self.loops.get(name)
        if loop is None:
            raise KeyError(f"no human loop {name!r}")
        if loop.status not in statuses:
            raise ValueError(f"human loop {name!r} is {loop.status}, not one of {sorted(statuses)}")
        return loop

    async def complete_loop(
        self,
        name: str,
        answers: list[list[str]],
        *,
        events_queue_url: str | None = None,
        duplicate_event: bool = False,
        raw_output: bytes | None = None,
    ) -> str:
        """Play the workers: write output.json, mark the loop Completed, announce it.

        `raw_output` replaces the output.json A2I would write (for odd or broken outputs)."""
        loop = self._loop_in(name, frozenset({"InProgress"}))
        flow = self.flows[loop.flow_definition_arn]
        if len(answers) != flow.task_count:
            raise ValueError(f"flow {flow.name} wants {flow.task_count} worker answer(s)")
        for worker in answers:
            for label in worker:
                if label not in NODES:
                    raise ValueError(f"unknown v7 label {label!r}")
        created = loop.creation_time.astimezone(UTC)
        uri = (
            "/".join(
                [
                    flow.output_s3_uri.rstrip("/"),
                    flow.name,
                    created.strftime("%Y/%m/%d/%H/%M/%S"),
                    name,
                ]
            )
            + "/output.json"
        )
        if raw_output is not None:
            await self.side.put_bytes(uri, raw_output)
        else:
            await self.side.put_json(uri, self._output_document(loop, answers))
        loop.status = "Completed"
        loop.output_s3_uri = uri
        await self._announce(loop, events_queue_url, duplicate_event)
        return uri

    async def fail_loop(
        self,
        name: str,
        *,
        code: str = "Expired",
        reason: str = "The human loop expired before all workers answered.",
        events_queue_url: str | None = None,
        duplicate_event: bool = False,
    ) -> None:
        """End a loop as Failed (expiry by default), and announce it."""
        if code not in FAILURE_CODES:
            raise ValueError(f"failure code must be one of {FAILURE_CODES}")
        loop = self._loop_in(name, ACTIVE)
        loop.status, loop.failure_code, loop.failure_reason = "Failed", code, reason
        await self._announce(loop, events_queue_url, duplicate_event)

    async def stop_loop(
        self, name: str, *, events_queue_url: str | None = None, duplicate_event: bool = False
    ) -> None:
        """Finish a stop: InProgress or Stopping -> Stopped, and announce it."""
        loop = self._loop_in(name, ACTIVE)
        loop.status = "Stopped"
        await self._announce(loop, events_queue_url, duplicate_event)

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- what AWS would write ----------------------------------------------------------------------

    def _output_document(self, loop: HumanLoop, answers: list[list[str]]) -> dict[str, Any]:
        now = datetime.now(UTC)
        human_answers = []
        for index, labels in enumerate(answers):
            seed = f"{loop.name}/{index}"
            spent = 5.0 + index
            human_answers.append(
                {
                    "acceptanceTime": iso_ms(now - timedelta(seconds=spent)),
                    "answerContent": {
                        REQUEST_SOURCE: {
                            "moderationLabels": [
                                {"name": label, "parentName": NODES[label].parent}
                                for label in labels
                            ]
                        }
                    },
                    "submissionTime": iso_ms(now),
                    "timeSpentInSeconds": spent,
                    "workerId": hashlib.sha256(seed.encode()).hexdigest()[:16],
                    "workerMetadata": {
                        "identityData": {
                            "identityProviderType": "Cognito",
                            "issuer": f"https://cognito-idp.{self.region}.amazonaws.com/"
                            f"{self.region}_Emulated",
                            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, seed)),
                        }
                    },
                }
            )
        return {
            "awsManagedHumanLoopRequestSource": REQUEST_SOURCE,
            "flowDefinitionArn": loop.flow_definition_arn,
            "humanAnswers": human_answers,
            "humanLoopName": loop.name,
            "inputContent": loop.input_content,
        }

    def _event(self, loop: HumanLoop) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "creationTime": iso_ms(loop.creation_time),
            "failureCode": loop.failure_code,
            "failureReason": loop.failure_reason,
            "flowDefinitionArn": loop.flow_definition_arn,
            "humanLoopArn": loop.arn,
            "humanLoopName": loop.name,
            "humanLoopStatus": loop.status,
        }
        if loop.output_s3_uri:
            detail["humanLoopOutput"] = {"outputS3Uri": loop.output_s3_uri}
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "SageMaker A2I HumanLoop Status Change",
            "source": "aws.sagemaker",
            "account": self.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [loop.arn],
            "detail": dict(sorted(detail.items())),
        }

    async def _announce(self, loop: HumanLoop, queue_url: str | None, duplicate: bool) -> None:
        queue_url = queue_url or self.events_queue_url
        if queue_url is None:
            return
        event = self._event(loop)
        # At-least-once delivery: a duplicate is the very same event (same id) sent again. An
        # EventBridge rule may have several targets (one queue per replica): each gets it.
        for target in (queue_url, *self.more_events_queues):
            for _ in range(2 if duplicate else 1):
                await self.side.send(target, event)

    def begin_stop(self, loop: HumanLoop) -> None:
        """StopHumanLoop: InProgress -> Stopping, then Stopped after `stop_delay` (if set)."""
        loop.status = "Stopping"
        if self.stop_delay is not None:
            timer = asyncio.get_running_loop().call_later(
                self.stop_delay, self._finish_stop, loop.name
            )
            self._timers.append(timer)

    def _finish_stop(self, name: str) -> None:
        loop = self.loops.get(name)
        if loop is not None and loop.status == "Stopping":
            task = asyncio.get_running_loop().create_task(self.stop_loop(name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
