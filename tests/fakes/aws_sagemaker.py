"""The SageMaker control-plane calls A2I set-up needs (json 1.1, ``X-Amz-Target: SageMaker.<Op>``):
CreateHumanTaskUi, DescribeHumanTaskUi, CreateFlowDefinition, DescribeFlowDefinition,
DeleteFlowDefinition. moto implements none of them (aws.md "Read this first").

They share ``POST /`` with Rekognition; aws.py hands every ``SageMaker.*`` target here. A flow
definition created here is registered with the emulator's A2I runtime once it is ``Active``, so
Rekognition can open loops against it exactly as against ``add_flow_definition``'s.

Server-side checks botocore skips (aws.md §3.1): name patterns and lengths, ARN patterns, the
request-source enum, TaskCount 1-3, TaskAvailabilityLifetimeInSeconds 1-864000,
TaskTimeLimitInSeconds >= 30, TaskKeywords, the S3 output path, the activation conditions (JSON,
at most 10,240 characters, the grammar of aws_conditions), required members. Errors are
SageMaker's: ``ValidationException``, ``ResourceInUse``, ``ResourceNotFound`` (no "Exception"
suffix), HTTP 400, ``{"__type", "message"}``.

Choices on points aws.md leaves UNCONFIRMED:
- a new flow definition is ``Initializing`` for ``activation_delay`` seconds (0: ``Active`` at
  once), or turns ``Failed`` with a reason set by ``fail_next_activation``;
- CreateFlowDefinition refuses a HumanTaskUiArn that names no task UI (``ResourceNotFound``) and
  an activation config on a flow without a managed request source (``ValidationException``);
- only ``s3://`` output paths are emulated (``https://`` is refused as a ValidationException);
- DescribeHumanTaskUi's ``UiTemplate.ContentSha256`` is the hex SHA-256 of the content;
- DeleteFlowDefinition removes the flow at once (no visible ``Deleting`` state).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .aws_a2i import FLOW_NAME, REQUEST_SOURCE, A2iRuntime, FlowDefinition
from .aws_conditions import ConditionError
from .aws_conditions import validate as validate_conditions
from .aws_storage import parse_s3_uri
from .aws_wire import JSON_11, AwsError, new_request_id, validation_message

TARGET_PREFIX = "SageMaker."
UI_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")
WORKTEAM_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:workteam/.*$")
TASK_UI_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:human-task-ui/.*$")
ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
S3_OUTPUT = re.compile(r"^(https|s3)://([^/]+)/?(.*)$")
KEYWORD = re.compile(r"^[A-Za-z0-9]+( [A-Za-z0-9]+)*$")
REQUEST_SOURCES = (REQUEST_SOURCE, "AWS/Textract/AnalyzeDocument/Forms/V1")
MAX_CONDITIONS = 10_240
MAX_UI_CONTENT = 128_000
MAX_LIFETIME = 864_000  # the Terraform provider's documented range (aws.md §3.1)


@dataclass
class TaskUi:
    name: str
    arn: str
    content: str
    creation_time: datetime

    def describe(self) -> dict[str, Any]:
        return {
            "HumanTaskUiArn": self.arn,
            "HumanTaskUiName": self.name,
            "HumanTaskUiStatus": "Active",
            "CreationTime": self.creation_time.timestamp(),
            "UiTemplate": {
                "Url": f"https://emulated-task-ui.s3.amazonaws.com/{self.name}.liquid",
                "ContentSha256": hashlib.sha256(self.content.encode()).hexdigest(),
            },
        }


@dataclass
class FlowRecord:
    """A flow definition as SageMaker describes it; `request` is the Create body, as sent."""

    name: str
    arn: str
    request: dict[str, Any]
    conditions: dict[str, Any] | None
    creation_time: datetime
    status: str = "Initializing"
    failure_reason: str | None = None

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "FlowDefinitionArn": self.arn,
            "FlowDefinitionName": self.name,
            "FlowDefinitionStatus": self.status,
            "CreationTime": self.creation_time.timestamp(),
            "HumanLoopConfig": self.request["HumanLoopConfig"],
            "OutputConfig": self.request["OutputConfig"],
            "RoleArn": self.request["RoleArn"],
        }
        for key in ("HumanLoopRequestSource", "HumanLoopActivationConfig"):
            if key in self.request:
                body[key] = self.request[key]
        if self.failure_reason:
            body["FailureReason"] = self.failure_reason
        return body


@dataclass
class SageMakerApi:
    """State and handlers of the emulated SageMaker operations."""

    runtime: A2iRuntime
    activation_delay: float = 0.0
    task_uis: dict[str, TaskUi] = field(default_factory=dict)
    flows: dict[str, FlowRecord] = field(default_factory=dict)  # by name
    calls: list[str] = field(default_factory=list)  # operation names, in order
    _fail_activation: str | None = None
    _timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def fail_next_activation(self, reason: str) -> None:
        """The next flow definition created turns Failed with this reason, not Active."""
        self._fail_activation = reason

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()

    # -- wire ------------------------------------------------------------------------------------

    async def handle(self, request: web.Request, target: str) -> web.Response:
        """One json-1.1 call whose X-Amz-Target starts with "SageMaker."."""
        request_id = new_request_id()
        operation = target.removeprefix(TARGET_PREFIX)
        self.calls.append(operation)
        handler = {
            "CreateHumanTaskUi": self.create_human_task_ui,
            "DescribeHumanTaskUi": self.describe_human_task_ui,
            "CreateFlowDefinition": self.create_flow_definition,
            "DescribeFlowDefinition": self.describe_flow_definition,
            "DeleteFlowDefinition": self.delete_flow_definition,
        }.get(operation)
        try:
            if handler is None:
                raise AwsError("UnknownOperationException", f"{target!r} is not emulated.")
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                raise AwsError("SerializationException", "Body is not valid JSON.") from None
            if not isinstance(body, dict):
                raise AwsError("SerializationException", "Request body must be a JSON object.")
            result = handler(body)
        except AwsError as exc:
            return web.Response(
                status=400,
                body=json.dumps({"__type": exc.code, "message": exc.message}).encode(),
                content_type=JSON_11,
                headers={"x-amzn-RequestId": request_id},
            )
        return web.Response(
            body=json.dumps(result).encode(),
            content_type=JSON_11,
            headers={"x-amzn-RequestId": request_id},
        )

    # -- human task UIs --------------------------------------------------------------------------

    def create_human_task_ui(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _name(body.get("HumanTaskUiName"), "humanTaskUiName", UI_NAME)
        content = _string(
            (body.get("UiTemplate") or {}).get("Content"), "uiTemplate.content", 1, MAX_UI_CONTENT
        )
        _tags(body)
        if name in self.task_uis:
            raise AwsError("ResourceInUse", f"Human task UI {name} already exists.")
        arn = f"{self._arn_base()}:human-task-ui/{name}"
        self.task_uis[name] = TaskUi(name, arn, content, datetime.now(UTC))
        return {"HumanTaskUiArn": arn}

    def describe_human_task_ui(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _name(body.get("HumanTaskUiName"), "humanTaskUiName", UI_NAME)
        ui = self.task_uis.get(name)
        if ui is None:
            raise AwsError("ResourceNotFound", f"Human task UI {name} does not exist.")
        return ui.describe()

    # -- flow definitions ------------------------------------------------------------------------

    def create_flow_definition(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _name(body.get("FlowDefinitionName"), "flowDefinitionName", FLOW_NAME)
        source = body.get("HumanLoopRequestSource")
        if source is not None:
            _enum(
                (source or {}).get("AwsManagedHumanLoopRequestSource"),
                "humanLoopRequestSource.awsManagedHumanLoopRequestSource",
                REQUEST_SOURCES,
            )
        conditions = self._activation_conditions(body, managed=source is not None)
        config = body.get("HumanLoopConfig")
        if not isinstance(config, dict):
            raise AwsError("ValidationException", _null("humanLoopConfig"))
        self._check_loop_config(config)
        output = body.get("OutputConfig")
        path = _string(
            output.get("S3OutputPath") if isinstance(output, dict) else None,
            "outputConfig.s3OutputPath",
            1,
            1024,
            S3_OUTPUT,
        )
        if not path.startswith("s3://"):
            raise AwsError("ValidationException", "Only s3:// output paths are emulated.")
        parse_s3_uri(path)
        _string(body.get("RoleArn"), "roleArn", 20, 2048, ROLE_ARN)
        _tags(body)
        if name in self.flows:
            raise AwsError("ResourceInUse", f"Flow definition {name} already exists.")
        arn = f"{self._arn_base()}:flow-definition/{name}"
        record = FlowRecord(name, arn, body, conditions, datetime.now(UTC))
        self.flows[name] = record
        if self.activation_delay > 0:
            timer = asyncio.get_running_loop().call_later(
                self.activation_delay, self._activate, record
            )
            self._timers.append(timer)
        else:
            self._activate(record)
        return {"FlowDefinitionArn": arn}

    def describe_flow_definition(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._flow(body).describe()

    def delete_flow_definition(self, body: dict[str, Any]) -> dict[str, Any]:
        record = self._flow(body)
        del self.flows[record.name]
        self.runtime.flows.pop(record.arn, None)
        return {}

    def _flow(self, body: dict[str, Any]) -> FlowRecord:
        name = _name(body.get("FlowDefinitionName"), "flowDefinitionName", FLOW_NAME)
        record = self.flows.get(name)
        if record is None:
            raise AwsError("ResourceNotFound", f"Flow definition {name} does not exist.")
        return record

    def _activate(self, record: FlowRecord) -> None:
        if self.flows.get(record.name) is not record:
            return  # deleted meanwhile
        if self._fail_activation is not None:
            record.status, record.failure_reason = "Failed", self._fail_activation
            self._fail_activation = None
            return
        record.status = "Active"
        config = record.request["HumanLoopConfig"]
        self.runtime.flows[record.arn] = FlowDefinition(
            record.name,
            record.arn,
            record.request["OutputConfig"]["S3OutputPath"],
            record.conditions,
            int(config["TaskCount"]),
        )

    def _activation_conditions(
        self, body: dict[str, Any], *, managed: bool
    ) -> dict[str, Any] | None:
        activation = body.get("HumanLoopActivationConfig")
        if activation is None:
            return None  # every request goes to humans
        if not managed:
            raise AwsError(
                "ValidationException",
                "HumanLoopActivationConfig is only supported with a HumanLoopRequestSource.",
            )
        where = "humanLoopActivationConfig.humanLoopActivationConditionsConfig"
        text = _string(
            ((activation or {}).get("HumanLoopActivationConditionsConfig") or {}).get(
                "HumanLoopActivationConditions"
            ),
            f"{where}.humanLoopActivationConditions",
            0,
            MAX_CONDITIONS,
        )
        try:
            conditions = json.loads(text)
            validate_conditions(conditions)
        except (ValueError, ConditionError) as exc:
            raise AwsError(
                "ValidationException", f"HumanLoopActivationConditions is invalid: {exc}"
            ) from None
        return dict(conditions)

    def _check_loop_config(self, config: dict[str, Any]) -> None:
        where = "humanLoopConfig"
        _string(config.get("WorkteamArn"), f"{where}.workteamArn", 1, 256, WORKTEAM_ARN)
        ui_arn = _string(
            config.get("HumanTaskUiArn"), f"{where}.humanTaskUiArn", 1, 1024, TASK_UI_ARN
        )
        if not any(ui.arn == ui_arn for ui in self.task_uis.values()):
            raise AwsError("ResourceNotFound", f"Human task UI {ui_arn} does not exist.")
        _string(config.get("TaskTitle"), f"{where}.taskTitle", 1, 128)
        _string(config.get("TaskDescription"), f"{where}.taskDescription", 1, 255)
        _integer(config.get("TaskCount"), f"{where}.taskCount", 1, 3)
        if "TaskAvailabilityLifetimeInSeconds" in config:
            _integer(
                config["TaskAvailabilityLifetimeInSeconds"],
                f"{where}.taskAvailabilityLifetimeInSeconds",
                1,
                MAX_LIFETIME,
            )
        if "TaskTimeLimitInSeconds" in config:
            _integer(config["TaskTimeLimitInSeconds"], f"{where}.taskTimeLimitInSeconds", 30, None)
        if "TaskKeywords" in config:
            keywords = config["TaskKeywords"]
            if not isinstance(keywords, list) or not 1 <= len(keywords) <= 5:
                raise AwsError(
                    "ValidationException",
                    validation_message(
                        keywords, f"{where}.taskKeywords", "Member must have length between 1 and 5"
                    ),
                )
            for keyword in keywords:
                _string(keyword, f"{where}.taskKeywords.member", 1, 30, KEYWORD)

    def _arn_base(self) -> str:
        return f"arn:aws:sagemaker:{self.runtime.region}:{self.runtime.account}"


# -- constraint checks, each raising the front-end validator's ValidationException --------------


def _null(where: str) -> str:
    return validation_message(None, where, "Member must not be null")


def _string(
    value: object,
    where: str,
    least: int,
    most: int,
    pattern: re.Pattern[str] | None = None,
) -> str:
    if not isinstance(value, str):
        raise AwsError("ValidationException", _null(where))
    if len(value) < least:
        raise AwsError(
            "ValidationException",
            validation_message(
                value, where, f"Member must have length greater than or equal to {least}"
            ),
        )
    if len(value) > most:
        raise AwsError(
            "ValidationException",
            validation_message(
                value[:64] + "...", where, f"Member must have length less than or equal to {most}"
            ),
        )
    if pattern is not None and not pattern.match(value):
        raise AwsError(
            "ValidationException",
            validation_message(
                value, where, f"Member must satisfy regular expression pattern: {pattern.pattern}"
            ),
        )
    return value


def _name(value: object, where: str, pattern: re.Pattern[str]) -> str:
    return _string(value, where, 1, 63, pattern)


def _integer(value: object, where: str, least: int, most: int | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AwsError("ValidationException", _null(where))
    if value < least:
        raise AwsError(
            "ValidationException",
            validation_message(
                value, where, f"Member must have value greater than or equal to {least}"
            ),
        )
    if most is not None and value > most:
        raise AwsError(
            "ValidationException",
            validation_message(
                value, where, f"Member must have value less than or equal to {most}"
            ),
        )
    return value


def _enum(value: object, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise AwsError(
            "ValidationException",
            validation_message(
                value, where, f"Member must satisfy enum value set: [{', '.join(allowed)}]"
            ),
        )
    assert isinstance(value, str)
    return value


def _tags(body: dict[str, Any]) -> None:
    tags = body.get("Tags")
    if tags is not None and (not isinstance(tags, list) or len(tags) > 50):
        raise AwsError(
            "ValidationException",
            validation_message("...", "tags", "Member must have length less than or equal to 50"),
        )
