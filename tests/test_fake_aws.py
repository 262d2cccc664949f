"""The AWS emulator itself, driven by real boto3 clients over HTTP, with moto for S3 and SQS.

boto3 blocks, and the emulator runs on the test's event loop, so every emulator-bound boto3 call
goes through asyncio.to_thread (a direct call would deadlock the loop it is waiting on).
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from tests.fakes import aws_conditions
from tests.fakes.aws import AwsEmulator
from tests.fakes.taxonomy_v7 import NODES

RED = (200, 30, 30)
GREEN = (30, 160, 40)
BLUE = (20, 40, 200)
GREY = (128, 128, 128)  # never scripted: a clean image
SOURCE = "AWS/Rekognition/DetectModerationLabels/Image/V3"
ROOT = Path(__file__).resolve().parent.parent
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def image(
    color: tuple[int, int, int], size: tuple[int, int] = (200, 200), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def client(service: str, endpoint: str) -> BaseClient:
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        # total_max_attempts, not max_attempts: the latter counts *retries* (1 => 2 attempts)
        config=Config(retries={"total_max_attempts": 1}),
        **KEYS,
    )


async def call(method: Callable[..., Any], **params: Any) -> Any:
    """Run one blocking boto3 call off the event loop that serves the emulator."""
    return await asyncio.to_thread(method, **params)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def emulator(moto_url: str) -> AsyncIterator[AwsEmulator]:
    async with AwsEmulator(s3_endpoint=moto_url) as em:
        yield em


@pytest.fixture
def rek(emulator: AwsEmulator) -> BaseClient:
    return client("rekognition", emulator.url)


@pytest.fixture
def a2i(emulator: AwsEmulator) -> BaseClient:
    return client("sagemaker-a2i-runtime", emulator.url)


@pytest.fixture
def s3(moto_url: str) -> BaseClient:
    return client("s3", moto_url)


@pytest.fixture
def sqs(moto_url: str) -> BaseClient:
    return client("sqs", moto_url)


@pytest.fixture
def bucket(s3: BaseClient) -> str:
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def queue_url(sqs: BaseClient) -> str:
    return str(sqs.create_queue(QueueName=f"events-{uuid.uuid4().hex[:12]}")["QueueUrl"])


@pytest.fixture
def flow_arn(emulator: AwsEmulator, bucket: str) -> str:
    return emulator.add_flow_definition(
        "image-moderation-fd", output_s3_uri=f"s3://{bucket}/reviews/"
    )


@dataclass
class Stack:
    """Everything a review-path test touches, so tests name one fixture instead of eight."""

    emulator: AwsEmulator
    rek: BaseClient
    a2i: BaseClient
    s3: BaseClient
    sqs: BaseClient
    bucket: str
    queue_url: str
    flow_arn: str


@pytest.fixture
def stack(  # keyword-only: pytest injects fixtures by name either way
    *,
    emulator: AwsEmulator,
    rek: BaseClient,
    a2i: BaseClient,
    s3: BaseClient,
    sqs: BaseClient,
    bucket: str,
    queue_url: str,
    flow_arn: str,
) -> Stack:
    return Stack(emulator, rek, a2i, s3, sqs, bucket, queue_url, flow_arn)


def loop_config(flow_arn: str, name: str = "img-7f3c2a") -> dict[str, Any]:
    return {
        "HumanLoopName": name,
        "FlowDefinitionArn": flow_arn,
        "DataAttributes": {"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation"]},
    }


def drain(sqs: BaseClient, queue_url: str, wait: int = 0) -> list[dict[str, Any]]:
    """The events in the queue; with `wait`, long-poll until one arrives (no sleeping loop)."""
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


# -- labels ----------------------------------------------------------------------------------------


async def test_scripted_labels_come_back_with_ancestors_levels_and_child_first_order(
    emulator: AwsEmulator, rek: BaseClient
) -> None:
    """A scripted L3 label brings its L2 and L1 ancestors, each level-tagged, children first."""
    emulator.script(RED, {"Exposed Female Nipple": 91.5, "Exposed Male Genitalia": 70.25})
    resp = await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
    assert resp["ModerationLabels"] == [
        {
            "Confidence": 91.5,
            "Name": "Exposed Female Nipple",
            "ParentName": "Explicit Nudity",
            "TaxonomyLevel": 3,
        },
        {
            "Confidence": 70.25,
            "Name": "Exposed Male Genitalia",
            "ParentName": "Explicit Nudity",
            "TaxonomyLevel": 3,
        },
        {
            "Confidence": 91.5,
            "Name": "Explicit Nudity",
            "ParentName": "Explicit",
            "TaxonomyLevel": 2,
        },
        {"Confidence": 91.5, "Name": "Explicit", "ParentName": "", "TaxonomyLevel": 1},
    ]
    assert resp["ModerationModelVersion"] == "7.0"
    assert resp["ContentTypes"] == []
    assert "HumanLoopActivationOutput" not in resp
    assert resp["ResponseMetadata"]["RequestId"] == emulator.calls[-1].request_id


async def test_min_confidence_filters_every_level(emulator: AwsEmulator, rek: BaseClient) -> None:
    """MinConfidence (default 50) drops labels at every level, parents only when all children go."""
    emulator.script(RED, {"Smoking": 45.0, "Drinking": 85.0, "Gambling": 60.0})
    default = await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
    assert [lb["Name"] for lb in default["ModerationLabels"]] == [
        "Drinking",
        "Alcohol Use",
        "Alcohol",
        "Gambling",
    ]
    strict = await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)}, MinConfidence=80)
    assert [lb["Name"] for lb in strict["ModerationLabels"]] == [
        "Drinking",
        "Alcohol Use",
        "Alcohol",
    ]
    lax = await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)}, MinConfidence=0)
    assert {lb["Name"] for lb in lax["ModerationLabels"]} >= {"Smoking", "Drugs & Tobacco"}
    assert emulator.calls[1].min_confidence == 80.0


async def test_unscripted_colour_is_a_clean_image(emulator: AwsEmulator, rek: BaseClient) -> None:
    """An image matching no scripted colour gets no labels and no content types."""
    emulator.script(RED, {"Weapons": 99.0})
    resp = await call(rek.detect_moderation_labels, Image={"Bytes": image(GREY, fmt="JPEG")})
    assert resp["ModerationLabels"] == []
    assert resp["ContentTypes"] == []


async def test_colour_matching_survives_reencoding_and_picks_the_nearest(
    emulator: AwsEmulator, rek: BaseClient
) -> None:
    """A resized lossy JPEG of a nearby colour still matches; the nearest scenario wins."""
    emulator.script(RED, {"Weapons": 88.0}, content_types={"illustrated": 97.5})
    emulator.script(BLUE, {"Middle Finger": 77.0})
    shifted = image((210, 36, 24), size=(123, 95), fmt="JPEG")
    resp = await call(rek.detect_moderation_labels, Image={"Bytes": shifted})
    assert [lb["Name"] for lb in resp["ModerationLabels"]] == ["Weapons", "Violence"]
    assert resp["ContentTypes"] == [{"Confidence": 97.5, "Name": "illustrated"}]
    far = await call(rek.detect_moderation_labels, Image={"Bytes": image((170, 60, 60))})
    assert far["ModerationLabels"] == []


async def test_s3_object_input_is_read_from_moto(
    emulator: AwsEmulator, rek: BaseClient, s3: BaseClient, bucket: str
) -> None:
    """S3Object images are fetched from the S3 endpoint and recorded with bucket and key."""
    emulator.script(GREEN, {"Pills": 66.0})
    s3.put_object(Bucket=bucket, Key="u/1/photo.jpg", Body=image(GREEN, fmt="JPEG"))
    resp = await call(
        rek.detect_moderation_labels,
        Image={"S3Object": {"Bucket": bucket, "Name": "u/1/photo.jpg"}},
    )
    assert [lb["Name"] for lb in resp["ModerationLabels"]] == [
        "Pills",
        "Products",
        "Drugs & Tobacco",
    ]
    assert (emulator.calls[-1].s3_bucket, emulator.calls[-1].s3_key) == (bucket, "u/1/photo.jpg")
    assert emulator.calls[-1].sha256 is not None


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"Image": {"Bytes": b"GIF89a" + b"\0" * 100}}, "InvalidImageFormatException", None),
        (
            {"Image": {"Bytes": b"\x89PNG\r\n\x1a\n" + b"\0" * 40}},
            "InvalidImageFormatException",
            None,
        ),
        ({"Image": {"Bytes": image(RED, size=(79, 200))}}, "InvalidParameterException", None),
        (
            {"Image": {"Bytes": image(RED, size=(10_001, 80), fmt="PNG")}},
            "InvalidParameterException",
            "Input image dimensions 10001 x 80 exceed maximum dimension size of 10000 pixels",
        ),
        (
            {"Image": {"Bytes": b"\xff" * 5_242_881}},
            "ValidationException",
            "less than or equal to 5242880",
        ),
        ({"Image": {}}, "InvalidParameterException", None),
        (
            {"Image": {"Bytes": image(RED), "S3Object": {"Bucket": "abc", "Name": "k"}}},
            "InvalidParameterException",
            None,
        ),
        (
            {"Image": {"S3Object": {"Bucket": "bad/bucket!", "Name": "k"}}},
            "ValidationException",
            None,
        ),
        (
            {"Image": {"Bytes": image(RED)}, "MinConfidence": 100.5},
            "ValidationException",
            "minConfidence",
        ),
    ],
    ids=[
        "gif",
        "truncated-png",
        "too-small",
        "too-large-side",
        "bytes-over-5mib",
        "no-source",
        "two-sources",
        "bucket-pattern",
        "min-confidence",
    ],
)
async def test_image_and_parameter_checks_reach_boto3_as_their_codes(
    rek: BaseClient, params: dict[str, Any], code: str, message: str | None
) -> None:
    """What botocore leaves unchecked is refused server-side with the documented code."""
    with pytest.raises(ClientError) as caught:
        await call(rek.detect_moderation_labels, **params)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if message:
        assert message in caught.value.response["Error"]["Message"]


async def test_modeled_errors_raise_the_modeled_exception_classes(
    rek: BaseClient, bucket: str, s3: BaseClient
) -> None:
    """boto3 maps the emulator's errors onto client.exceptions classes (the __type is right)."""
    with pytest.raises(rek.exceptions.InvalidImageFormatException):
        await call(rek.detect_moderation_labels, Image={"Bytes": b"not an image at all"})
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        await call(
            rek.detect_moderation_labels, Image={"S3Object": {"Bucket": bucket, "Name": "nope"}}
        )
    s3.put_object(
        Bucket=bucket, Key="huge.png", Body=b"\x89PNG\r\n\x1a\n" + b"\0" * (15 * 2**20 + 1)
    )
    with pytest.raises(rek.exceptions.ImageTooLargeException):
        await call(
            rek.detect_moderation_labels, Image={"S3Object": {"Bucket": bucket, "Name": "huge.png"}}
        )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"HumanLoopName": "Loop_1"}, "ValidationException"),
        ({"HumanLoopName": "-a"}, "ValidationException"),
        ({"HumanLoopName": "a" * 64}, "ValidationException"),
        (
            {"FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:111122223333:flow-definition/other"},
            "ResourceNotFoundException",
        ),
        ({"DataAttributes": {"ContentClassifiers": ["FreeOfViolence"]}}, "ValidationException"),
    ],
    ids=["underscore", "leading-hyphen", "64-chars", "unknown-flow", "classifier-enum"],
)
async def test_human_loop_config_is_validated_server_side(
    rek: BaseClient, flow_arn: str, change: dict[str, Any], code: str
) -> None:
    """Loop name pattern and length, flow registration and the classifier enum are enforced."""
    with pytest.raises(ClientError) as caught:
        await call(
            rek.detect_moderation_labels,
            Image={"Bytes": image(RED)},
            HumanLoopConfig={**loop_config(flow_arn), **change},
        )
    assert caught.value.response["Error"]["Code"] == code


async def test_rekognition_error_wire_format(emulator: AwsEmulator) -> None:
    """Errors carry __type, Code, Message, Logref and x-amzn-RequestId; unsigned calls fail."""
    headers = {
        "X-Amz-Target": "RekognitionService.DetectModerationLabels",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=x/20250304/us-east-1/rekognition/aws4_request"
        ", SignedHeaders=host, Signature=0",
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(
            emulator.url + "/", json={"Image": {"Bytes": "AAAA"}}, headers=headers
        ) as resp:
            body = json.loads(await resp.text())
            assert resp.status == 400
            assert resp.headers["Content-Type"] == "application/x-amz-json-1.1"
            assert body["__type"] == body["Code"] == "InvalidImageFormatException"
            assert body["Logref"] == resp.headers["x-amzn-RequestId"]
            assert body["Message"] == "Request has invalid image format."
        unsigned = {k: v for k, v in headers.items() if k != "Authorization"}
        async with http.post(emulator.url + "/", json={}, headers=unsigned) as resp:
            assert json.loads(await resp.text())["__type"] == "MissingAuthenticationTokenException"


# -- faults ----------------------------------------------------------------------------------------


async def test_fail_next_scripts_errors_then_recovers(
    emulator: AwsEmulator, rek: BaseClient
) -> None:
    """fail_next returns the modeled error (status per aws.md §1.5) for exactly `count` calls."""
    emulator.fail_next("ThrottlingException", count=2)
    for _ in range(2):
        with pytest.raises(rek.exceptions.ThrottlingException) as caught:
            await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
    assert [c.error for c in emulator.calls] == ["ThrottlingException", "ThrottlingException", None]

    emulator.fail_next("HumanLoopQuotaExceededException")
    with pytest.raises(rek.exceptions.HumanLoopQuotaExceededException) as quota:
        await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
    assert {"ResourceType", "QuotaCode", "ServiceCode"} <= quota.value.response.keys()
    with pytest.raises(ValueError, match="not an error"):
        emulator.fail_next("NoSuchThing")


async def test_fault_rate_is_deterministic_for_a_seed(
    emulator: AwsEmulator, rek: BaseClient
) -> None:
    """The same seed gives the same sequence of random faults; codes come from the given set."""

    async def run() -> list[str | None]:
        outcomes: list[str | None] = []
        for _ in range(12):
            try:
                await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
                outcomes.append(None)
            except ClientError as exc:
                outcomes.append(exc.response["Error"]["Code"])
        return outcomes

    emulator.set_fault_rate(0.5, seed=7)
    first = await run()
    emulator.set_fault_rate(0.5, seed=7)
    assert await run() == first
    assert None in first
    assert set(first) - {None} <= {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
    }
    assert set(first) - {None}


async def test_tps_quota_refuses_calls_over_the_sliding_window(
    emulator: AwsEmulator, rek: BaseClient
) -> None:
    """Over `tps` accepted calls in one second: ProvisionedThroughputExceeded until it slides."""
    now = [1000.0]
    emulator.rekognition.clock = lambda: now[0]
    emulator.set_tps_quota(2)
    await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
    now[0] += 0.5
    await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
    with pytest.raises(rek.exceptions.ProvisionedThroughputExceededException):
        await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
    now[0] += 0.6  # the first call has left the window
    await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
    with pytest.raises(rek.exceptions.ProvisionedThroughputExceededException):
        await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})


async def test_latency_delays_calls_without_blocking_others(
    emulator: AwsEmulator, rek: BaseClient
) -> None:
    """Latency is per call and concurrent calls overlap (asyncio.sleep, not time.sleep)."""
    emulator.set_latency(0.3)
    started = time.monotonic()
    await asyncio.gather(
        *(call(rek.detect_moderation_labels, Image={"Bytes": image(RED)}) for _ in range(3))
    )
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.8


# -- human loops from Rekognition ------------------------------------------------------------------


async def test_flow_without_conditions_opens_a_loop_on_every_call(
    emulator: AwsEmulator, rek: BaseClient, a2i: BaseClient, flow_arn: str
) -> None:
    """No activation conditions: the loop opens even for a clean image, and Describe sees it."""
    resp = await call(
        rek.detect_moderation_labels,
        Image={"Bytes": image(GREY)},
        HumanLoopConfig=loop_config(flow_arn),
    )
    out = resp["HumanLoopActivationOutput"]
    assert out["HumanLoopArn"] == "arn:aws:sagemaker:us-east-1:111122223333:human-loop/img-7f3c2a"
    assert out["HumanLoopActivationReasons"] == ["ConditionsEvaluation"]
    assert json.loads(out["HumanLoopActivationConditionsEvaluationResults"]) == {"Conditions": []}
    described = await call(a2i.describe_human_loop, HumanLoopName="img-7f3c2a")
    assert described["HumanLoopStatus"] == "InProgress"
    assert described["FlowDefinitionArn"] == flow_arn
    assert described["CreationTime"].tzinfo is not None
    assert emulator.calls[-1].human_loop_arn == out["HumanLoopArn"]


CONDITIONS = {
    "Conditions": [
        {
            "And": [
                {
                    "ConditionType": "ModerationLabelConfidenceCheck",
                    "ConditionParameters": {"ModerationLabelName": "*", "ConfidenceLessThan": 90},
                },
                {
                    "ConditionType": "ModerationLabelConfidenceCheck",
                    "ConditionParameters": {
                        "ModerationLabelName": "*",
                        "ConfidenceGreaterThan": 50,
                    },
                },
            ]
        }
    ]
}


async def test_conditions_not_met_report_results_without_a_loop(
    emulator: AwsEmulator, rek: BaseClient, bucket: str
) -> None:
    """Unmet conditions: empty reasons, no ARN, an evaluation string with float numbers."""
    arn = emulator.add_flow_definition(
        "fd-conditions", output_s3_uri=f"s3://{bucket}/r", conditions=CONDITIONS
    )
    emulator.script(RED, {"Weapons": 95.0})
    resp = await call(
        rek.detect_moderation_labels, Image={"Bytes": image(RED)}, HumanLoopConfig=loop_config(arn)
    )
    out = resp["HumanLoopActivationOutput"]
    assert "HumanLoopArn" not in out
    assert out["HumanLoopActivationReasons"] == []
    text = out["HumanLoopActivationConditionsEvaluationResults"]
    assert isinstance(text, str)
    assert '"ConfidenceLessThan":90.0' in text
    assert text.startswith(
        '{"Conditions":[{"And":[{"ConditionType":"ModerationLabelConfidenceCheck",'
    )
    tree = json.loads(text)["Conditions"][0]
    assert tree["EvaluationResult"] is False
    assert [leaf["EvaluationResult"] for leaf in tree["And"]] == [False, True]
    assert emulator.loops == {}


async def test_conditions_met_open_a_loop_with_the_selected_labels(
    emulator: AwsEmulator, rek: BaseClient, bucket: str, s3: BaseClient
) -> None:
    """Met conditions open the loop; its input records the request, response and selection."""
    arn = emulator.add_flow_definition(
        "fd-conditions", output_s3_uri=f"s3://{bucket}/r", conditions=CONDITIONS
    )
    emulator.script(RED, {"Female Swimwear or Underwear": 81.2042})
    s3.put_object(Bucket=bucket, Key="in/photo.png", Body=image(RED))
    resp = await call(
        rek.detect_moderation_labels,
        Image={"S3Object": {"Bucket": bucket, "Name": "in/photo.png"}},
        HumanLoopConfig=loop_config(arn),
    )
    out = resp["HumanLoopActivationOutput"]
    assert out["HumanLoopActivationReasons"] == ["ConditionsEvaluation"]
    assert json.loads(out["HumanLoopActivationConditionsEvaluationResults"])["Conditions"][0][
        "EvaluationResult"
    ]
    loop = emulator.loops["img-7f3c2a"]
    assert loop.status == "InProgress"
    request = loop.input_content["aiServiceRequest"]
    assert request["image"] == {"s3Object": {"bucket": bucket, "name": "in/photo.png"}}
    assert request["humanLoopConfig"]["humanLoopName"] == "img-7f3c2a"
    selected = loop.input_content["selectedAiServiceResponse"]["moderationLabels"]
    assert {lb["name"] for lb in selected} == {
        "Female Swimwear or Underwear",
        "Swimwear or Underwear",
    }


async def test_same_loop_name_is_idempotent_for_the_same_image_only(
    emulator: AwsEmulator, rek: BaseClient, flow_arn: str
) -> None:
    """A resent request re-finds its loop; the name with another image is refused."""
    first = await call(
        rek.detect_moderation_labels,
        Image={"Bytes": image(RED)},
        HumanLoopConfig=loop_config(flow_arn),
    )
    again = await call(
        rek.detect_moderation_labels,
        Image={"Bytes": image(RED)},
        HumanLoopConfig=loop_config(flow_arn),
    )
    assert again["HumanLoopActivationOutput"] == first["HumanLoopActivationOutput"]
    assert len(emulator.loops) == 1
    with pytest.raises(rek.exceptions.InvalidParameterException):
        await call(
            rek.detect_moderation_labels,
            Image={"Bytes": image(BLUE)},
            HumanLoopConfig=loop_config(flow_arn),
        )


async def test_active_loop_limit_refuses_new_loops_on_both_apis(
    emulator: AwsEmulator, rek: BaseClient, a2i: BaseClient, flow_arn: str
) -> None:
    """Above the limit Rekognition says HumanLoopQuotaExceeded and StartHumanLoop 402."""
    emulator.set_active_loop_limit(1)
    await call(
        rek.detect_moderation_labels,
        Image={"Bytes": image(RED)},
        HumanLoopConfig=loop_config(flow_arn),
    )
    with pytest.raises(rek.exceptions.HumanLoopQuotaExceededException) as caught:
        await call(
            rek.detect_moderation_labels,
            Image={"Bytes": image(BLUE)},
            HumanLoopConfig=loop_config(flow_arn, "second"),
        )
    assert caught.value.response["ServiceCode"] == "sagemaker"
    with pytest.raises(a2i.exceptions.ServiceQuotaExceededException) as start:
        await call(
            a2i.start_human_loop,
            HumanLoopName="third",
            FlowDefinitionArn=flow_arn,
            HumanLoopInput={"InputContent": "{}"},
        )
    assert start.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402


# -- activation conditions (pure) ------------------------------------------------------------------


def check(name: str, **comparator: float) -> dict[str, Any]:
    return {
        "ConditionType": "ModerationLabelConfidenceCheck",
        "ConditionParameters": {"ModerationLabelName": name, **comparator},
    }


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (check("Weapons", ConfidenceEquals=70), True),
        (check("Weapons", ConfidenceLessThan=70), False),
        (check("Weapons", ConfidenceLessThanEquals=70), True),
        (check("Weapons", ConfidenceGreaterThan=70), False),
        (check("Weapons", ConfidenceGreaterThanEquals=70), True),
        (check("*", ConfidenceGreaterThan=85), True),
        (check("Explicit", ConfidenceGreaterThan=0), False),
        (
            {
                "Or": [
                    check("Explicit", ConfidenceGreaterThan=0),
                    check("Violence", ConfidenceLessThan=95),
                ]
            },
            True,
        ),
        (
            {
                "And": [
                    check("*", ConfidenceGreaterThan=0),
                    check("Weapons", ConfidenceGreaterThan=80),
                ]
            },
            False,
        ),
        (
            {"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": 100}},
            True,
        ),
    ],
)
def test_condition_leaves_and_combinators(condition: dict[str, Any], expected: bool) -> None:
    """Each comparator, the '*' wildcard, And and Or evaluate as aws.md §3.2 describes."""
    labels = {"Weapons": 70.0, "Violence": 90.0}
    result = aws_conditions.evaluate({"Conditions": [condition]}, labels, sample_key="k")
    assert result.triggered is expected


def test_sampling_is_deterministic_per_request_key() -> None:
    """Sampling gives the same answer for the same key, and fires for about its share of keys."""
    doc = {
        "Conditions": [
            {"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": 25}}
        ]
    }
    runs = [aws_conditions.evaluate(doc, {}, sample_key=f"img-{i}").triggered for i in range(400)]
    assert runs == [
        aws_conditions.evaluate(doc, {}, sample_key=f"img-{i}").triggered for i in range(400)
    ]
    assert 60 < sum(runs) < 140


@pytest.mark.parametrize(
    "document",
    [
        {
            "Conditions": [
                {"Or": [{"And": [{"Or": [check("*", ConfidenceGreaterThan=1)] * 2}] * 2}] * 2}
            ]
        },
        {"Conditions": [{"And": [check("*", ConfidenceGreaterThan=1)]}]},
        {"Conditions": [check("Graphic Male Nudity", ConfidenceGreaterThan=1)]},
        {"Conditions": [check("*", ConfidenceAbout=1)]},
        {
            "Conditions": [
                {
                    "ConditionType": "Sampling",
                    "ConditionParameters": {"RandomSamplingPercentage": 0},
                }
            ]
        },
        {"Conditions": [{"ConditionType": "MissingImportantFormKey", "ConditionParameters": {}}]},
    ],
    ids=[
        "three-levels",
        "single-and",
        "v6-name",
        "bad-comparator",
        "sampling-zero",
        "textract-type",
    ],
)
def test_bad_condition_documents_are_refused(
    emulator: AwsEmulator, document: dict[str, Any]
) -> None:
    """Flow definitions with ungrammatical conditions are refused when registered."""
    with pytest.raises(aws_conditions.ConditionError):
        emulator.add_flow_definition("fd", output_s3_uri="s3://b/p", conditions=document)


# -- the A2I runtime -------------------------------------------------------------------------------


async def test_start_describe_list_and_paginate(
    emulator: AwsEmulator, a2i: BaseClient, flow_arn: str
) -> None:
    """StartHumanLoop is idempotent for the same input, and List pages and sorts its loops."""
    for name in ("loop-a", "loop-b", "loop-c"):
        arn = (
            await call(
                a2i.start_human_loop,
                HumanLoopName=name,
                FlowDefinitionArn=flow_arn,
                HumanLoopInput={"InputContent": json.dumps({"name": name})},
            )
        )["HumanLoopArn"]
        assert arn.endswith(f":human-loop/{name}")
    again = await call(
        a2i.start_human_loop,
        HumanLoopName="loop-a",
        FlowDefinitionArn=flow_arn,
        HumanLoopInput={"InputContent": json.dumps({"name": "loop-a"})},
    )
    assert again["HumanLoopArn"].endswith("loop-a")

    def pages(order: str) -> list[list[str]]:
        paginator = a2i.get_paginator("list_human_loops")
        return [
            [s["HumanLoopName"] for s in page["HumanLoopSummaries"]]
            for page in paginator.paginate(
                FlowDefinitionArn=flow_arn, SortOrder=order, PaginationConfig={"PageSize": 2}
            )
        ]

    assert await asyncio.to_thread(pages, "Ascending") == [["loop-a", "loop-b"], ["loop-c"]]
    assert await asyncio.to_thread(pages, "Descending") == [["loop-c", "loop-b"], ["loop-a"]]
    listed = await call(
        a2i.list_human_loops,
        FlowDefinitionArn=flow_arn,
        CreationTimeAfter=datetime(2000, 1, 1, tzinfo=UTC),
        CreationTimeBefore=datetime(2000, 1, 2, tzinfo=UTC),
    )
    assert listed["HumanLoopSummaries"] == []


@pytest.mark.parametrize(
    ("method", "params", "code", "status"),
    [
        ("describe_human_loop", {"HumanLoopName": "Loop_1"}, "ValidationException", 400),
        ("describe_human_loop", {"HumanLoopName": "absent"}, "ResourceNotFoundException", 404),
        ("stop_human_loop", {"HumanLoopName": "absent"}, "ResourceNotFoundException", 404),
        ("delete_human_loop", {"HumanLoopName": "absent"}, "ResourceNotFoundException", 404),
        (
            "list_human_loops",
            {"FlowDefinitionArn": "arn:aws:sagemaker:us-east-1:111122223333:flow-definition/x"},
            "ResourceNotFoundException",
            404,
        ),
        (
            "list_human_loops",
            {"FlowDefinitionArn": "FLOW", "MaxResults": 101},
            "ValidationException",
            400,
        ),
        (
            "list_human_loops",
            {"FlowDefinitionArn": "FLOW", "NextToken": "garbage!"},
            "ValidationException",
            400,
        ),
        (
            "list_human_loops",
            {"FlowDefinitionArn": "FLOW", "SortOrder": "Sideways"},
            "ValidationException",
            400,
        ),
        (
            "start_human_loop",
            {
                "HumanLoopName": "a" * 64,
                "FlowDefinitionArn": "FLOW",
                "HumanLoopInput": {"InputContent": "{}"},
            },
            "ValidationException",
            400,
        ),
        (
            "start_human_loop",
            {
                "HumanLoopName": "ok",
                "FlowDefinitionArn": "FLOW",
                "HumanLoopInput": {"InputContent": "not json"},
            },
            "ValidationException",
            400,
        ),
        (
            "start_human_loop",
            {
                "HumanLoopName": "ok",
                "FlowDefinitionArn": "FLOW",
                "HumanLoopInput": {"InputContent": "{}"},
                "DataAttributes": {"ContentClassifiers": ["Nope"]},
            },
            "ValidationException",
            400,
        ),
    ],
)
async def test_a2i_errors_reach_boto3_with_code_and_status(
    a2i: BaseClient, flow_arn: str, *, method: str, params: dict[str, Any], code: str, status: int
) -> None:
    """The runtime refuses bad names, absent loops and out-of-range parameters as documented."""
    params = {k: flow_arn if v == "FLOW" else v for k, v in params.items()}
    with pytest.raises(ClientError) as caught:
        await call(getattr(a2i, method), **params)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


async def test_conflicting_input_for_a_loop_name_is_409(a2i: BaseClient, flow_arn: str) -> None:
    """A reused loop name with different input is ConflictException (409), wire per §9.8."""
    start = {"HumanLoopName": "dup", "FlowDefinitionArn": flow_arn}
    await call(a2i.start_human_loop, **start, HumanLoopInput={"InputContent": '{"a": 1}'})
    with pytest.raises(a2i.exceptions.ConflictException) as caught:
        await call(a2i.start_human_loop, **start, HumanLoopInput={"InputContent": '{"a": 2}'})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    headers = caught.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == "ConflictException"
    assert "x-amzn-requestid" in headers


async def test_stop_then_delete_follows_the_state_machine(
    emulator: AwsEmulator, a2i: BaseClient, flow_arn: str
) -> None:
    """InProgress cannot be deleted; Stop goes through Stopping to Stopped; deleted loops vanish."""
    emulator.set_stop_delay(None)
    await call(
        a2i.start_human_loop,
        HumanLoopName="to-stop",
        FlowDefinitionArn=flow_arn,
        HumanLoopInput={"InputContent": "{}"},
    )
    with pytest.raises(a2i.exceptions.ValidationException):
        await call(a2i.delete_human_loop, HumanLoopName="to-stop")
    await call(a2i.stop_human_loop, HumanLoopName="to-stop")
    assert (await call(a2i.describe_human_loop, HumanLoopName="to-stop"))[
        "HumanLoopStatus"
    ] == "Stopping"
    await emulator.stop_loop("to-stop")
    assert (await call(a2i.describe_human_loop, HumanLoopName="to-stop"))[
        "HumanLoopStatus"
    ] == "Stopped"
    await call(a2i.delete_human_loop, HumanLoopName="to-stop")
    with pytest.raises(a2i.exceptions.ResourceNotFoundException):
        await call(a2i.describe_human_loop, HumanLoopName="to-stop")
    listed = await call(a2i.list_human_loops, FlowDefinitionArn=flow_arn)
    assert listed["HumanLoopSummaries"] == []


async def test_stop_finishes_by_itself_and_announces_it(stack: Stack) -> None:
    """With the default stop delay a stopped loop reaches Stopped and an event is sent."""
    stack.emulator.set_events_queue(stack.queue_url)
    await call(
        stack.a2i.start_human_loop,
        HumanLoopName="auto",
        FlowDefinitionArn=stack.flow_arn,
        HumanLoopInput={"InputContent": "{}"},
    )
    await call(stack.a2i.stop_human_loop, HumanLoopName="auto")
    async with asyncio.timeout(10):
        (event,) = await asyncio.to_thread(drain, stack.sqs, stack.queue_url, wait=5)
    assert event["detail"]["humanLoopStatus"] == "Stopped"
    assert "humanLoopOutput" not in event["detail"]
    assert stack.emulator.loops["auto"].status == "Stopped"


# -- simulated reviewers ---------------------------------------------------------------------------


async def open_loop(emulator: AwsEmulator, rek: BaseClient, flow_arn: str) -> None:
    emulator.script(RED, {"Female Swimwear or Underwear": 81.2})
    await call(
        rek.detect_moderation_labels,
        Image={"Bytes": image(RED)},
        HumanLoopConfig=loop_config(flow_arn),
    )


async def test_complete_loop_writes_output_json_and_sends_one_event(stack: Stack) -> None:
    """output.json lands at <path>/<flow>/<creation time>/<loop>/output.json; one event follows."""
    emulator, bucket, queue_url, flow_arn = (
        stack.emulator,
        stack.bucket,
        stack.queue_url,
        stack.flow_arn,
    )
    await open_loop(emulator, stack.rek, flow_arn)
    loop = emulator.loops["img-7f3c2a"]
    uri = await emulator.complete_loop(
        "img-7f3c2a",
        [["Swimwear or Underwear", "Female Swimwear or Underwear"]],
        events_queue_url=queue_url,
    )
    stamp = loop.creation_time.astimezone(UTC).strftime("%Y/%m/%d/%H/%M/%S")
    key = f"reviews/image-moderation-fd/{stamp}/img-7f3c2a/output.json"
    assert uri == f"s3://{bucket}/{key}"
    raw = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert "\n" not in raw  # one line
    assert ": " not in raw  # compact separators
    output = json.loads(raw)
    assert output["awsManagedHumanLoopRequestSource"] == SOURCE
    assert output["flowDefinitionArn"] == flow_arn
    assert output["humanLoopName"] == "img-7f3c2a"
    (answer,) = output["humanAnswers"]
    assert answer["answerContent"] == {
        SOURCE: {
            "moderationLabels": [
                {"name": "Swimwear or Underwear", "parentName": ""},
                {"name": "Female Swimwear or Underwear", "parentName": "Swimwear or Underwear"},
            ]
        }
    }
    assert {
        "acceptanceTime",
        "submissionTime",
        "timeSpentInSeconds",
        "workerId",
        "workerMetadata",
    } <= answer.keys()
    assert set(output["inputContent"]) == {
        "aiServiceRequest",
        "aiServiceResponse",
        "humanTaskActivationConditionResults",
        "selectedAiServiceResponse",
    }
    described = await call(stack.a2i.describe_human_loop, HumanLoopName="img-7f3c2a")
    assert described["HumanLoopStatus"] == "Completed"
    assert described["HumanLoopOutput"] == {"OutputS3Uri": uri}

    (event,) = await asyncio.to_thread(drain, stack.sqs, queue_url)
    assert event["detail-type"] == "SageMaker A2I HumanLoop Status Change"
    assert event["source"] == "aws.sagemaker"
    assert event["resources"] == [loop.arn]
    assert event["detail"]["humanLoopStatus"] == "Completed"
    assert event["detail"]["humanLoopOutput"] == {"outputS3Uri": uri}
    assert event["detail"]["failureCode"] is None


async def test_duplicate_event_is_delivered_twice_with_the_same_id(
    emulator: AwsEmulator, rek: BaseClient, sqs: BaseClient, queue_url: str, flow_arn: str
) -> None:
    """duplicate_event sends the very same event twice, as at-least-once delivery may."""
    await open_loop(emulator, rek, flow_arn)
    await emulator.complete_loop(
        "img-7f3c2a", [[]], events_queue_url=queue_url, duplicate_event=True
    )
    events = await asyncio.to_thread(drain, sqs, queue_url)
    assert len(events) == 2
    assert events[0] == events[1]


async def test_fail_loop_marks_failed_and_announces(stack: Stack) -> None:
    """fail_loop sets Failed with FailureCode/Reason, visible in Describe and in the event."""
    emulator = stack.emulator
    await open_loop(emulator, stack.rek, stack.flow_arn)
    await emulator.fail_loop(
        "img-7f3c2a", code="Expired", reason="gone", events_queue_url=stack.queue_url
    )
    described = await call(stack.a2i.describe_human_loop, HumanLoopName="img-7f3c2a")
    assert (described["HumanLoopStatus"], described["FailureCode"], described["FailureReason"]) == (
        "Failed",
        "Expired",
        "gone",
    )
    assert "HumanLoopOutput" not in described
    (event,) = await asyncio.to_thread(drain, stack.sqs, stack.queue_url)
    assert (event["detail"]["humanLoopStatus"], event["detail"]["failureReason"]) == (
        "Failed",
        "gone",
    )
    with pytest.raises(ValueError, match="Failed"):
        await emulator.complete_loop("img-7f3c2a", [[]])


async def test_complete_loop_checks_its_script(
    emulator: AwsEmulator, rek: BaseClient, flow_arn: str
) -> None:
    """Answers must match the flow's task count and name v7 labels; unknown loops are KeyErrors."""
    await open_loop(emulator, rek, flow_arn)
    with pytest.raises(ValueError, match="worker"):
        await emulator.complete_loop("img-7f3c2a", [[], []])
    with pytest.raises(ValueError, match="unknown v7 label"):
        await emulator.complete_loop("img-7f3c2a", [["Nudity"]])
    with pytest.raises(KeyError):
        await emulator.complete_loop("absent", [[]])


# -- control API and standalone mode ---------------------------------------------------------------


async def test_control_routes_script_the_emulator_over_http(
    emulator: AwsEmulator, rek: BaseClient, bucket: str
) -> None:
    """/_emulator routes script labels, faults and flows, and report calls and loops as JSON."""
    async with aiohttp.ClientSession(base_url=emulator.url) as http:
        async with http.post(
            "/_emulator/script", json={"color": list(RED), "labels": {"Weapons": 90}}
        ) as r:
            assert r.status == 200
        async with http.post("/_emulator/fail-next", json={"code": "InternalServerError"}) as r:
            assert r.status == 200
        async with http.post(
            "/_emulator/flow-definitions",
            json={"name": "fd-http", "output_s3_uri": f"s3://{bucket}/o"},
        ) as r:
            flow = (await r.json())["FlowDefinitionArn"]
        async with http.post(
            "/_emulator/script", json={"color": [1, 2, 3], "labels": {"Nope": 1}}
        ) as r:
            assert r.status == 400
        with pytest.raises(rek.exceptions.InternalServerError):
            await call(rek.detect_moderation_labels, Image={"Bytes": image(RED)})
        resp = await call(
            rek.detect_moderation_labels,
            Image={"Bytes": image(RED)},
            HumanLoopConfig=loop_config(flow, "h1"),
        )
        assert resp["ModerationLabels"][0]["Name"] == "Weapons"
        async with http.get("/_emulator/calls") as r:
            calls = (await r.json())["calls"]
        assert [c["error"] for c in calls] == ["InternalServerError", None]
        async with http.get("/_emulator/loops") as r:
            assert (await r.json())["loops"]["h1"]["HumanLoopStatus"] == "InProgress"
        async with http.post("/_emulator/loops/h1/fail", json={}) as r:
            assert r.status == 200
        async with http.post("/_emulator/loops/absent/complete", json={"answers": [[]]}) as r:
            assert r.status == 404
    assert emulator.loops["h1"].status == "Failed"


async def test_standalone_module_prints_its_url_first(moto_url: str) -> None:
    """`python -m tests.fakes.aws --port 0` prints a URL on its first line and serves there."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.aws",
        "--port",
        "0",
        "--s3-endpoint",
        moto_url,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,  # tests/conftest.py moves each test into a tmp directory
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            url = (await proc.stdout.readline()).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        rek = client("rekognition", url)
        resp = await call(rek.detect_moderation_labels, Image={"Bytes": image(GREY)})
        assert resp["ModerationLabels"] == []
    finally:
        proc.terminate()
        await proc.wait()


def test_endpoint_environment_variables_route_boto3_to_the_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore reads AWS_ENDPOINT_URL_REKOGNITION and AWS_ENDPOINT_URL_SAGEMAKER_A2I_RUNTIME."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_A2I_RUNTIME", "http://127.0.0.1:2")
    session = boto3.session.Session(region_name="us-east-1", **KEYS)
    assert session.client("rekognition").meta.endpoint_url == "http://127.0.0.1:1"
    assert session.client("sagemaker-a2i-runtime").meta.endpoint_url == "http://127.0.0.1:2"


def test_taxonomy_has_the_documented_shape() -> None:
    """The v7 tree has 10 L1, 20 L2 and 22 L3 labels (aws.md §2.2)."""
    levels = [node.level for node in NODES.values()]
    assert (levels.count(1), levels.count(2), levels.count(3)) == (10, 20, 22)
