"""Turns the core's frozen values into JSON-ready dicts for the database, and back."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bot.core.model import ContentType, Detection, ImageRef, Label, Origin, ScanRequest, Trigger


def request_to_json(request: ScanRequest) -> dict[str, Any]:
    return asdict(request)


def request_from_json(data: dict[str, Any]) -> ScanRequest:
    origin = dict(data["origin"])
    origin["trigger"] = Trigger(origin["trigger"])
    return ScanRequest(
        image=ImageRef(**data["image"]),
        origin=Origin(**origin),
        dedup_key=data["dedup_key"],
    )


def detection_to_json(detection: Detection) -> dict[str, Any]:
    return asdict(detection)


def detection_from_json(data: dict[str, Any]) -> Detection:
    return Detection(
        labels=tuple(Label(**label) for label in data["labels"]),
        model_version=data["model_version"],
        content_types=tuple(ContentType(**ct) for ct in data.get("content_types", ())),
        min_confidence=data.get("min_confidence", 0.0),
        # Releases before review_ref stored the A2I loop's ARN as `human_loop_arn`.
        review_ref=data.get("review_ref", data.get("human_loop_arn")),
    )
