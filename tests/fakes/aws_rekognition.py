"""The Rekognition side of the emulator: DetectModerationLabels with scripted labels, faults,
latency and a TPS quota, opening A2I loops through the flow definition's conditions.

Request checks live in aws_rekognition_input. Choices on points aws.md leaves UNCONFIRMED:
- check order: model constraints (ValidationException), then the flow ARN, then the image;
- an unregistered FlowDefinitionArn is ResourceNotFoundException (400);
- the same HumanLoopName with a different image (or flow) is InvalidParameterException, with
  the same image it returns the existing loop;
- Image.Bytes is accepted with HumanLoopConfig (output.json then carries image.bytes);
- a flow without conditions reports reasons ["ConditionsEvaluation"] and '{"Conditions":[]}';
- ContentTypes is always sent (empty list for clean images) and not filtered by MinConfidence;
- HumanLoopQuotaExceededException's QuotaCode "L-EMULATED" is invented.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from . import aws_conditions
from . import aws_rekognition_input as checks
from .aws_a2i import A2iRuntime, FlowDefinition
from .aws_images import BadImage, distance, mean_colour
from .aws_storage import ObjectMissing, ObjectTooLarge, SideServices
from .aws_wire import REKOGNITION_STATUS, AwsError
from .taxonomy_v7 import MODEL_VERSION, NODES, TaxonomyNode, ancestors

COLOUR_TOLERANCE = 24.0
QUOTA_EXTRA = {"ResourceType": "HumanLoop", "QuotaCode": "L-EMULATED", "ServiceCode": "sagemaker"}


@dataclass(frozen=True)
class Scenario:
    """What images of one colour are found to contain."""

    color: tuple[int, int, int]
    labels: dict[str, float]
    content_types: dict[str, float]


@dataclass
class RekognitionCall:
    """One DetectModerationLabels request as the emulator saw it (for assertions and benches)."""

    time: float  # time.time() at arrival
    request_id: str
    sha256: str | None = None  # of the image bytes, once read
    s3_bucket: str | None = None
    s3_key: str | None = None
    min_confidence: float | None = None
    human_loop_name: str | None = None
    flow_definition_arn: str | None = None
    error: str | None = None  # error code returned, None on success
    human_loop_arn: str | None = None  # set when this call opened (or re-found) a loop

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def emitted_labels(scripted: dict[str, float]) -> list[tuple[TaxonomyNode, float]]:
    """Scripted labels plus every ancestor (confidence = max of its children), children first."""
    confidence: dict[str, float] = {}
    for name, value in scripted.items():
        for node in ancestors(name):
            confidence[node.name] = max(confidence.get(node.name, 0.0), value)
    return sorted(
        ((NODES[name], value) for name, value in confidence.items()),
        key=lambda item: (-item[0].level, -item[1], item[0].name),
    )


class Rekognition:
    """Scripted DetectModerationLabels; loops go to the shared A2iRuntime."""

    def __init__(self, a2i: A2iRuntime, side: SideServices) -> None:
        self.a2i = a2i
        self.side = side
        self.scenarios: list[Scenario] = []
        self.calls: list[RekognitionCall] = []
        self.latency = 0.0
        self.tps: float | None = None
        self._failures: deque[str] = deque()
        self._loop_failures: deque[str] = deque()
        self._fault_rate = 0.0
        self._fault_codes: tuple[str, ...] = ()
        self._rng = random.Random(0)
        self._window: deque[float] = deque()
        self.clock = time.monotonic  # the TPS window's clock; tests may swap in a fake one

    # -- scripting -------------------------------------------------------------------------------

    def script(
        self,
        color: tuple[int, int, int],
        labels: dict[str, float],
        content_types: dict[str, float] | None = None,
    ) -> None:
        for name, value in labels.items():
            if name not in NODES:
                raise ValueError(f"unknown v7 label {name!r}")
            if not 0 <= value <= 100:
                raise ValueError(f"confidence for {name!r} must be within 0-100")
        color = (int(color[0]), int(color[1]), int(color[2]))
        self.scenarios = [s for s in self.scenarios if s.color != color]
        self.scenarios.append(Scenario(color, dict(labels), dict(content_types or {})))

    def fail_next(self, code: str, count: int = 1) -> None:
        if code not in REKOGNITION_STATUS:
            raise ValueError(f"{code!r} is not an error DetectModerationLabels returns")
        self._failures.extend([code] * count)

    def fail_next_human_loop_calls(self, code: str, count: int = 1) -> None:
        self._loop_failures.extend([code] * count)

    def set_fault_rate(
        self,
        rate: float,
        codes: Iterable[str] = (
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "InternalServerError",
        ),
        seed: int = 0,
    ) -> None:
        codes = tuple(codes)
        if not 0 <= rate <= 1 or not codes or any(c not in REKOGNITION_STATUS for c in codes):
            raise ValueError("rate must be within 0-1 and codes modeled Rekognition errors")
        self._fault_rate, self._fault_codes = rate, codes
        self._rng = random.Random(seed)

    def set_tps_quota(self, tps: float | None) -> None:
        if tps is not None and tps <= 0:
            raise ValueError("tps must be positive or None")
        self.tps = tps
        self._window.clear()

    def reset(self) -> None:
        self.scenarios.clear()
        self.calls.clear()
        self.latency = 0.0
        self._failures.clear()
        self._loop_failures.clear()
        self.set_tps_quota(None)
        self.set_fault_rate(0.0)

    # -- the operation ---------------------------------------------------------------------------

    def _gate(self) -> str | None:
        """An injected error for this call, decided on arrival: scripted, quota, then random."""
        if self._failures:
            return self._failures.popleft()
        if self.tps is not None:
            now = self.clock()
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) + 1 > self.tps:
                return "ProvisionedThroughputExceededException"
            self._window.append(now)
        if self._fault_rate and self._rng.random() < self._fault_rate:
            return self._rng.choice(self._fault_codes)
        return None

    async def detect(self, body: Any, request_id: str) -> dict[str, Any]:
        call = RekognitionCall(time=time.time(), request_id=request_id)
        self.calls.append(call)
        injected = self._gate()
        aimed = self._loop_failures and isinstance(body, dict) and "HumanLoopConfig" in body
        if not injected and aimed:
            injected = self._loop_failures.popleft()
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            if injected:
                raise AwsError(
                    injected, extra=QUOTA_EXTRA if injected.startswith("HumanLoop") else None
                )
            return await self._detect(body, call)
        except AwsError as exc:
            call.error = exc.code
            raise

    async def _detect(self, body: Any, call: RekognitionCall) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise AwsError("InvalidParameterException", "Request body must be a JSON object.")
        config = body.get("HumanLoopConfig")
        if isinstance(config, dict):  # record what was asked, even if it is refused below
            call.human_loop_name = config.get("HumanLoopName")
            call.flow_definition_arn = config.get("FlowDefinitionArn")
        # Front-end validation first, as AWS does; then semantic checks; then the image itself.
        call.min_confidence = threshold = checks.min_confidence(body)
        if config is not None:
            checks.check_loop_config(config)
        source = checks.image_source(body.get("Image"))
        checks.check_project_version(body)
        flow = None
        if config is not None:
            flow = self.a2i.flows.get(config["FlowDefinitionArn"])
            if flow is None:
                raise AwsError(
                    "ResourceNotFoundException",
                    f"Flow definition {config['FlowDefinitionArn']} does not exist.",
                )
        data = await self._image_bytes(source, call)
        call.sha256 = hashlib.sha256(data).hexdigest()
        checks.check_image(data)
        scenario = self._scenario_for(data)

        labels = [
            (node, c)
            for node, c in (emitted_labels(scenario.labels) if scenario else [])
            if c >= threshold
        ]
        response: dict[str, Any] = {
            "ModerationLabels": [
                {"Confidence": c, "Name": n.name, "ParentName": n.parent, "TaxonomyLevel": n.level}
                for n, c in labels
            ],
            "ModerationModelVersion": MODEL_VERSION,
            "ContentTypes": [
                {"Confidence": c, "Name": name}
                for name, c in (scenario.content_types.items() if scenario else ())
            ],
        }
        if flow is not None and isinstance(config, dict):
            response["HumanLoopActivationOutput"] = self._activate(
                flow, config=config, labels=labels, data=data, source=source, call=call
            )
        return response

    async def _image_bytes(self, source: checks.ImageSource, call: RekognitionCall) -> bytes:
        if source.data is not None:
            return source.data
        assert source.s3_object is not None
        s3 = source.s3_object
        call.s3_bucket, call.s3_key = s3["bucket"], s3["name"]
        try:
            return await self.side.get_image(s3["bucket"], s3["name"], s3.get("version"))
        except ObjectTooLarge:
            raise AwsError("ImageTooLargeException") from None
        except ObjectMissing:
            raise AwsError("InvalidS3ObjectException", checks.S3_UNREADABLE) from None

    def _scenario_for(self, data: bytes) -> Scenario | None:
        """The scripted scenario nearest the image's mean colour, within the tolerance."""
        try:
            mean = mean_colour(data)  # always decode: a corrupt image must fail alike either way
        except BadImage:
            raise AwsError("InvalidImageFormatException") from None
        if not self.scenarios:
            return None
        best = min(self.scenarios, key=lambda s: distance(mean, s.color))
        return best if distance(mean, best.color) <= COLOUR_TOLERANCE else None

    def _activate(
        self,
        flow: FlowDefinition,
        *,
        config: dict[str, Any],
        labels: list[tuple[TaxonomyNode, float]],
        data: bytes,
        source: checks.ImageSource,
        call: RekognitionCall,
    ) -> dict[str, Any]:
        """Evaluate the flow's conditions on the returned labels; open the loop if they say so."""
        image_hash = hashlib.sha256(data).hexdigest()
        confidences = {node.name: c for node, c in labels}
        if flow.conditions is None:
            evaluation = aws_conditions.Evaluation(True, {"Conditions": []}, frozenset(confidences))
        else:
            evaluation = aws_conditions.evaluate(
                flow.conditions, confidences, sample_key=f"{flow.arn}|{image_hash}"
            )
        output: dict[str, Any] = {
            "HumanLoopActivationReasons": [],
            "HumanLoopActivationConditionsEvaluationResults": aws_conditions.response_string(
                evaluation.tree
            ),
        }
        if not evaluation.triggered:
            return output

        def label_list(selected: bool) -> list[dict[str, Any]]:
            return [
                {
                    # the real file rounds aiServiceResponse to 5 decimals, not the selection
                    "confidence": c if selected else round(c, 5),
                    "name": node.name,
                    "parentName": node.parent,
                }
                for node, c in labels
                if not selected or node.name in evaluation.selected
            ]

        loop_request: dict[str, Any] = {
            "flowDefinitionArn": flow.arn,
            "humanLoopName": config["HumanLoopName"],
        }
        if config.get("DataAttributes") is not None:
            loop_request["dataAttributes"] = {
                "contentClassifiers": config["DataAttributes"]["ContentClassifiers"]
            }
        image = (
            {"s3Object": source.s3_object}
            if source.s3_object is not None
            else {"bytes": base64.b64encode(data).decode()}
        )
        input_content = {
            "aiServiceRequest": {
                "humanLoopConfig": dict(sorted(loop_request.items())),
                "image": image,
            },
            "aiServiceResponse": {
                "moderationLabels": label_list(selected=False),
                "moderationModelVersion": MODEL_VERSION,
            },
            "humanTaskActivationConditionResults": aws_conditions.output_form(evaluation.tree),
            "selectedAiServiceResponse": {
                "moderationLabels": label_list(selected=True),
                "moderationModelVersion": MODEL_VERSION,
            },
        }
        loop = self.a2i.open_loop(
            config["HumanLoopName"],
            flow,
            image_hash,
            input_content,
            conflict=AwsError(
                "InvalidParameterException",
                f"Human loop {config['HumanLoopName']} already exists with different input.",
            ),
            quota=AwsError("HumanLoopQuotaExceededException", extra=QUOTA_EXTRA),
        )
        call.human_loop_arn = loop.arn
        output["HumanLoopArn"] = loop.arn
        output["HumanLoopActivationReasons"] = ["ConditionsEvaluation"]
        return output
