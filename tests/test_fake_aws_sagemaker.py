"""The emulator's SageMaker flow-definition and human-task-UI calls, driven by real boto3.

boto3 blocks and the emulator runs on the test's event loop, so calls go through to_thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from tests.fakes.aws import AwsEmulator

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/A2IFlowDefinitionRole"
WORKTEAM = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:workteam/private-crowd/moderators"
SOURCE = "AWS/Rekognition/DetectModerationLabels/Image/V3"
TEMPLATE = "<crowd-form><crowd-rekognition-detect-moderation-labels/></crowd-form>"
CONDITIONS = {
    "Conditions": [
        {
            "ConditionType": "ModerationLabelConfidenceCheck",
            "ConditionParameters": {"ModerationLabelName": "*", "ConfidenceLessThan": 90},
        }
    ]
}


def _client(service: str, endpoint: str) -> BaseClient:
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


async def call(method: Callable[..., Any], **params: Any) -> Any:
    return await asyncio.to_thread(method, **params)


@pytest.fixture
async def emulator(moto_url: str) -> AsyncIterator[AwsEmulator]:
    async with AwsEmulator(s3_endpoint=moto_url) as em:
        yield em


@pytest.fixture
def sm(emulator: AwsEmulator) -> BaseClient:
    return _client("sagemaker", emulator.url)


@pytest.fixture
async def ui_arn(sm: BaseClient) -> str:
    response = await call(
        sm.create_human_task_ui, HumanTaskUiName="modbot-ui", UiTemplate={"Content": TEMPLATE}
    )
    return str(response["HumanTaskUiArn"])


def flow_request(ui_arn: str, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "FlowDefinitionName": "modbot-flow",
        "HumanLoopRequestSource": {"AwsManagedHumanLoopRequestSource": SOURCE},
        "HumanLoopActivationConfig": {
            "HumanLoopActivationConditionsConfig": {
                "HumanLoopActivationConditions": json.dumps(CONDITIONS)
            }
        },
        "HumanLoopConfig": {
            "WorkteamArn": WORKTEAM,
            "HumanTaskUiArn": ui_arn,
            "TaskTitle": "Review an image",
            "TaskDescription": "Select every category that applies.",
            "TaskCount": 1,
            "TaskAvailabilityLifetimeInSeconds": 43200,
            "TaskTimeLimitInSeconds": 3600,
            "TaskKeywords": ["image moderation"],
        },
        "OutputConfig": {"S3OutputPath": "s3://modbot-out/a2i"},
        "RoleArn": ROLE,
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = request
        for key in parents:
            node = node[key]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value
    return request


_DROP = object()


async def _active(sm: BaseClient, name: str, within: float = 5.0) -> Any:
    """Describe until the flow is Active (the condition, with a timeout; not a fixed sleep)."""
    async with asyncio.timeout(within):
        while True:
            described = await call(sm.describe_flow_definition, FlowDefinitionName=name)
            if described["FlowDefinitionStatus"] == "Active":
                return described
            await asyncio.sleep(0.05)  # polling a remote status: there is no event to await


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


async def test_human_task_ui_create_describe_and_duplicate(sm: BaseClient) -> None:
    """CreateHumanTaskUi returns the ARN; Describe gives the content's SHA-256; a second
    create with the same name is ResourceInUse; an unknown name is ResourceNotFound."""
    created = await call(
        sm.create_human_task_ui, HumanTaskUiName="modbot-ui", UiTemplate={"Content": TEMPLATE}
    )
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:human-task-ui/modbot-ui"
    assert created["HumanTaskUiArn"] == arn
    described = await call(sm.describe_human_task_ui, HumanTaskUiName="modbot-ui")
    assert described["HumanTaskUiArn"] == arn
    assert described["HumanTaskUiStatus"] == "Active"
    assert described["UiTemplate"]["ContentSha256"] == hashlib.sha256(TEMPLATE.encode()).hexdigest()
    assert described["CreationTime"].tzinfo is not None
    with pytest.raises(ClientError) as again:
        await call(
            sm.create_human_task_ui, HumanTaskUiName="modbot-ui", UiTemplate={"Content": "x"}
        )
    assert _code(again) == "ResourceInUse"
    with pytest.raises(ClientError) as missing:
        await call(sm.describe_human_task_ui, HumanTaskUiName="nope")
    assert _code(missing) == "ResourceNotFound"


@pytest.mark.parametrize(
    ("name", "content"),
    [("Modbot_UI", TEMPLATE), ("-modbot", TEMPLATE), ("a" * 64, TEMPLATE), ("ok", "x" * 128_001)],
)
async def test_human_task_ui_constraints_are_checked_server_side(
    sm: BaseClient, name: str, content: str
) -> None:
    """Name pattern and length, and the 128,000-character template limit: ValidationException."""
    with pytest.raises(ClientError) as caught:
        await call(sm.create_human_task_ui, HumanTaskUiName=name, UiTemplate={"Content": content})
    assert _code(caught) == "ValidationException"
    assert "1 validation error detected" in caught.value.response["Error"]["Message"]


async def test_flow_definition_initializes_then_is_active_and_describes_its_settings(
    emulator: AwsEmulator, sm: BaseClient, ui_arn: str
) -> None:
    """Created Initializing, Active after the activation delay; Describe echoes the settings."""
    emulator.sagemaker.activation_delay = 0.2
    request = flow_request(ui_arn)
    created = await call(sm.create_flow_definition, **request)
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:flow-definition/modbot-flow"
    assert created["FlowDefinitionArn"] == arn
    first = await call(sm.describe_flow_definition, FlowDefinitionName="modbot-flow")
    assert first["FlowDefinitionStatus"] == "Initializing"
    assert arn not in emulator.a2i.flows  # not usable before it is Active
    described = await _active(sm, "modbot-flow")
    for key in ("HumanLoopRequestSource", "HumanLoopActivationConfig", "HumanLoopConfig"):
        assert described[key] == request[key]
    assert described["OutputConfig"] == request["OutputConfig"]
    assert described["RoleArn"] == ROLE
    flow = emulator.a2i.flows[arn]
    assert (flow.conditions, flow.task_count, flow.output_s3_uri) == (
        CONDITIONS,
        1,
        "s3://modbot-out/a2i",
    )


async def test_duplicate_missing_and_deleted_flow_definitions(
    emulator: AwsEmulator, sm: BaseClient, ui_arn: str
) -> None:
    """Same name twice: ResourceInUse. Unknown or deleted: ResourceNotFound, and the runtime
    no longer knows the ARN."""
    created = await call(sm.create_flow_definition, **flow_request(ui_arn))
    with pytest.raises(ClientError) as again:
        await call(sm.create_flow_definition, **flow_request(ui_arn))
    assert _code(again) == "ResourceInUse"
    await call(sm.delete_flow_definition, FlowDefinitionName="modbot-flow")
    assert created["FlowDefinitionArn"] not in emulator.a2i.flows
    for method in (sm.describe_flow_definition, sm.delete_flow_definition):
        with pytest.raises(ClientError) as missing:
            await call(method, FlowDefinitionName="modbot-flow")
        assert _code(missing) == "ResourceNotFound"


async def test_failed_activation_is_described_with_its_reason(
    emulator: AwsEmulator, sm: BaseClient, ui_arn: str
) -> None:
    """A flow whose activation fails reports Failed with a FailureReason and opens no loops."""
    emulator.sagemaker.fail_next_activation("The role cannot be assumed by SageMaker.")
    created = await call(sm.create_flow_definition, **flow_request(ui_arn))
    described = await call(sm.describe_flow_definition, FlowDefinitionName="modbot-flow")
    assert described["FlowDefinitionStatus"] == "Failed"
    assert described["FailureReason"] == "The role cannot be assumed by SageMaker."
    assert created["FlowDefinitionArn"] not in emulator.a2i.flows


BAD_FLOWS: list[tuple[str, dict[str, Any], str]] = [
    ("name pattern", {"FlowDefinitionName": "Modbot_Flow"}, "ValidationException"),
    ("name length", {"FlowDefinitionName": "a" * 64}, "ValidationException"),
    (
        "request source enum",
        {"HumanLoopRequestSource__AwsManagedHumanLoopRequestSource": "AWS/Rekognition/V9"},
        "ValidationException",
    ),
    ("task count 4", {"HumanLoopConfig__TaskCount": 4}, "ValidationException"),
    (
        "workteam ARN",
        {"HumanLoopConfig__WorkteamArn": "arn:aws:sagemaker:us-east-1:1:workteam/x"},
        "ValidationException",
    ),
    ("role ARN", {"RoleArn": "arn:aws:iam::111122223333:user/someone"}, "ValidationException"),
    ("lifetime", {"HumanLoopConfig__TaskAvailabilityLifetimeInSeconds": 864_001}, "Validation"),
    ("title length", {"HumanLoopConfig__TaskTitle": "t" * 129}, "ValidationException"),
    ("keyword", {"HumanLoopConfig__TaskKeywords": ["image-moderation"]}, "ValidationException"),
    ("keywords", {"HumanLoopConfig__TaskKeywords": ["a", "b", "c", "d", "e", "f"]}, "Validation"),
    ("output path", {"OutputConfig__S3OutputPath": "ftp://bucket/x"}, "ValidationException"),
    (
        "unknown task UI",
        {
            "HumanLoopConfig__HumanTaskUiArn": (
                f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:human-task-ui/nope"
            )
        },
        "ResourceNotFound",
    ),
    (
        "conditions not JSON",
        {
            "HumanLoopActivationConfig__HumanLoopActivationConditionsConfig__"
            "HumanLoopActivationConditions": "{not json"
        },
        "ValidationException",
    ),
    (
        "conditions grammar",
        {
            "HumanLoopActivationConfig__HumanLoopActivationConditionsConfig__"
            "HumanLoopActivationConditions": json.dumps({"Conditions": [{"Bogus": 1}]})
        },
        "ValidationException",
    ),
    (
        "conditions too long",
        {
            "HumanLoopActivationConfig__HumanLoopActivationConditionsConfig__"
            "HumanLoopActivationConditions": json.dumps(CONDITIONS) + " " * 10_240
        },
        "ValidationException",
    ),
    (
        "activation without request source",
        {"HumanLoopRequestSource": _DROP},
        "ValidationException",
    ),
]


@pytest.mark.parametrize(
    ("changes", "code"), [(c, code) for _, c, code in BAD_FLOWS], ids=[n for n, _, _ in BAD_FLOWS]
)
async def test_flow_definition_constraints_are_checked_server_side(
    emulator: AwsEmulator, sm: BaseClient, ui_arn: str, changes: dict[str, Any], code: str
) -> None:
    """What botocore lets through (patterns, maxima, enums, JSON size and grammar) is refused
    by the emulator with SageMaker's error code, and nothing is created."""
    request = flow_request(ui_arn, **changes)
    with pytest.raises(ClientError) as caught:
        await call(sm.create_flow_definition, **request)
    assert _code(caught).startswith(code)
    assert emulator.sagemaker.flows == {}


async def test_created_flow_opens_loops_for_rekognition(
    emulator: AwsEmulator, sm: BaseClient, ui_arn: str, moto_url: str
) -> None:
    """A flow created through the API is the one the A2I runtime uses: its conditions decide
    whether DetectModerationLabels opens a loop."""
    created = await call(sm.create_flow_definition, **flow_request(ui_arn))
    rek = _client("rekognition", emulator.url)
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 30, 30)).save(buffer, "PNG")
    emulator.script((200, 30, 30), {"Weapons": 72.0})
    config = {
        "HumanLoopName": "img-1",
        "FlowDefinitionArn": created["FlowDefinitionArn"],
        "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
    }
    response = await call(
        rek.detect_moderation_labels, Image={"Bytes": buffer.getvalue()}, HumanLoopConfig=config
    )
    loop_arn = response["HumanLoopActivationOutput"]["HumanLoopArn"]
    assert loop_arn.endswith(":human-loop/img-1")
    assert emulator.loops["img-1"].flow_definition_arn == created["FlowDefinitionArn"]
    emulator.reset()
    emulator.script((200, 30, 30), {"Weapons": 95.0})  # above the < 90 condition
    response = await call(
        rek.detect_moderation_labels,
        Image={"Bytes": buffer.getvalue()},
        HumanLoopConfig={**config, "HumanLoopName": "img-2"},
    )
    assert "HumanLoopArn" not in response["HumanLoopActivationOutput"]
    assert [op for op in emulator.sagemaker.calls if op.startswith("Create")] == [
        "CreateHumanTaskUi",
        "CreateFlowDefinition",
    ]
