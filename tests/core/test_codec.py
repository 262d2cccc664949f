"""Stored detections read back, including those written by earlier releases."""

from __future__ import annotations

import json
from pathlib import Path

from bot.core.codec import detection_from_json, detection_to_json
from bot.core.model import ContentType, Detection, Label

DATA = Path(__file__).resolve().parents[1] / "data" / "detections"
ARN = "arn:aws:sagemaker:us-east-1:111122223333:human-loop/modbot-0123456789abcdef"


def test_a_detection_stored_before_review_ref_keeps_its_loop() -> None:
    """Earlier releases stored the A2I loop as `human_loop_arn`: it reads back as review_ref."""
    stored = json.loads((DATA / "before_review_ref.json").read_text())
    detection = detection_from_json(stored)
    assert detection.review_ref == ARN
    assert detection.labels[1] == Label("Exposed Female Nipple", "Explicit Nudity", 2, 95.25)
    assert detection.content_types == (ContentType("Illustrated", 88.0),)
    assert (detection.model_version, detection.min_confidence) == ("7.0", 50.0)


def test_a_detection_round_trips_with_its_review_ref() -> None:
    """What is written now reads back equal, under the generic key."""
    detection = Detection(
        labels=(Label("Violence", "", 1, 80.0),), model_version="7.0", review_ref=ARN
    )
    stored = json.loads(json.dumps(detection_to_json(detection)))
    assert "human_loop_arn" not in stored
    assert detection_from_json(stored) == detection


def test_a_detection_without_any_review_ref_reads_as_none() -> None:
    """No review opened by the call (and the oldest rows without the key at all)."""
    assert detection_from_json({"labels": [], "model_version": "7.0"}).review_ref is None
