"""The local detector: a real NudeNet inference on generated images, the conversion of its raw
output, bounded concurrency off the event loop, and how a missing extra or A2I is reported."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFilter

from bot.__main__ import main
from bot.adapters.detectors import detector_problems
from bot.adapters.nudenet import (
    INSTALL_HINT,
    NudeNetDetector,
    input_memory,
    load_model,
    model_input,
)
from bot.core.errors import ConfigError
from bot.core.nudenet_labels import SCORE_CUTOFF, TABLE, to_labels
from bot.settings import load_settings

NUDENET_CLASSES = frozenset(
    {
        "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED",
        "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE",
        "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
        "BUTTOCKS_COVERED",
    }
)  # fmt: skip


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def blank() -> bytes:
    return _jpeg(Image.new("RGB", (480, 480), (255, 255, 255)))


def skin_pair() -> bytes:
    """Two touching skin-coloured ellipses on a dark background, upright: no person, but the
    model's strongest false positive in the calibration set (bench/nudenet_calibration.py)."""
    img = Image.new("RGB", (480, 480), (30, 30, 30))
    draw = ImageDraw.Draw(img)
    draw.ellipse((48, 120, 250, 360), fill=(198, 134, 66))
    draw.ellipse((230, 120, 432, 360), fill=(198, 134, 66))
    return _jpeg(img.rotate(90).filter(ImageFilter.GaussianBlur(8)))


@pytest.fixture(scope="module")
def model() -> tuple[Any, str]:
    """The real model from the installed extra: one onnxruntime session for the module."""
    return load_model()


async def test_a_blank_image_gives_no_labels_with_the_real_model(model: tuple[Any, str]) -> None:
    """A real inference on a white JPEG: no label, and the model named with its version."""
    detect, version = model
    detector = NudeNetDetector(detect, version)
    try:
        detection = await detector.detect(blank(), 40.0)
    finally:
        detector.close()
    assert detection.labels == ()
    assert detection.model_version.startswith("nudenet-3.4.")
    assert version.endswith("-320n")
    assert detection.min_confidence == 40.0


async def test_the_models_raw_output_converts_to_v7_labels(model: tuple[Any, str]) -> None:
    """On the skin-coloured pair the model reports a body part in its own format (class, score
    in 0..1 from its 0.2 floor, box); converted with NudeNet's own floor every mapped class
    becomes its v7 path, and the calibrated cut-off drops it as noise."""
    detect, version = model
    raw: Sequence[Mapping[str, Any]] = await asyncio.to_thread(detect, model_input(skin_pair()))
    assert raw, "the model found nothing: the calibration case no longer holds"
    for found in raw:
        assert set(found) == {"class", "score", "box"}
        assert found["class"] in NUDENET_CLASSES
        assert 0.2 <= found["score"] < SCORE_CUTOFF
        assert len(found["box"]) == 4
    mapped = [found for found in raw if found["class"] in TABLE]
    assert mapped, "no mapped class in the raw output"
    labels = {label.name: label for label in to_labels(raw, min_confidence=0, cutoff=0.2)}
    for found in mapped:
        deepest = labels[TABLE[found["class"]]]
        assert deepest.level == 3
        assert deepest.confidence >= round(found["score"] * 100, 3)
        parent = labels[deepest.parent]
        assert labels[parent.parent].level == 1
    detector = NudeNetDetector(detect, version)
    try:
        assert (await detector.detect(skin_pair(), 0.0)).labels == ()
    finally:
        detector.close()


async def test_inference_runs_off_the_loop_one_image_at_a_time() -> None:
    """Four images at once: the model never runs twice concurrently (one worker), and the event
    loop keeps turning while it runs."""
    running = 0
    most = 0
    lock = threading.Lock()

    def slow_model(pixels: Any) -> list[dict[str, Any]]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)  # stands in for the model's own time, in its worker thread
        with lock:
            running -= 1
        return [{"class": "MALE_GENITALIA_EXPOSED", "score": 0.93, "box": [0, 0, 5, 5]}]

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    detector = NudeNetDetector(slow_model, "nudenet-test")
    tick_task = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(detector.detect(blank(), 40.0) for _ in range(4)))
    finally:
        tick_task.cancel()
        detector.close()
    assert most == 1
    assert ticks >= 10  # 0.2 s of inference: the loop was never held
    assert {r.labels[-1].name for r in results} == {"Exposed Male Genitalia"}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_model_input_ignores_pillows_global_pixel_limit(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prepared image is already within Rekognition's limits; Pillow's own 89 MP limit (here
    lowered to 1,000 px) must not refuse it. Out: BGR, at most 640 px a side."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    out = io.BytesIO()
    Image.new("RGB", (900, 300), (10, 20, 30)).save(out, fmt)
    pixels = model_input(out.getvalue())
    assert pixels.shape == (213, 640, 3)
    assert tuple(int(v) for v in pixels[100, 100]) == pytest.approx((30, 20, 10), abs=2)


def test_decode_memory_is_bounded_for_large_jpegs_and_whole_for_pngs() -> None:
    """A 4000 px JPEG decodes at 1/4 scale (still at least 640 px); a PNG is counted whole."""
    assert input_memory("JPEG", 4000, 4000) < input_memory("PNG", 4000, 4000) // 10
    assert input_memory("PNG", 4000, 4000) >= 4000 * 4000 * 7


def test_nudenet_without_the_extra_is_one_install_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With NudeNet not importable, `modbot serve` stops with exit 2 and one line saying how to
    install the extra (and no AWS complaint: Rekognition is not used)."""
    monkeypatch.setitem(sys.modules, "nudenet", None)  # what an absent package looks like
    assert detector_problems("nudenet") == [INSTALL_HINT]
    with pytest.raises(ConfigError, match="modbot\\[nudenet\\]"):
        load_model()
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-1-abc",
        "SLACK_SIGNING_SECRET": "s",
        "MODBOT_ALERT_CHANNEL": "C0ALERTS",
        "MODBOT_DETECTOR": "nudenet",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"modbot: {INSTALL_HINT}"]
    assert "pip install 'modbot[nudenet]'" in err[0]


def test_a2i_with_a_local_detector_is_a_start_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """MODBOT_REVIEW_BACKEND=a2i and MODBOT_DETECTOR=nudenet: one problem naming both."""
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-1-abc",
        "MODBOT_ALERT_CHANNEL": "C0ALERTS",
        "MODBOT_DETECTOR": "nudenet",
        "MODBOT_REVIEW_BACKEND": "a2i",
        "MODBOT_A2I_FLOW_DEFINITION_ARN": "arn:aws:sagemaker:us-east-1:1:flow-definition/f",
        "MODBOT_S3_BUCKET": "b",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert "MODBOT_REVIEW_BACKEND=a2i" in problem
    assert "MODBOT_DETECTOR=rekognition" in problem
    assert "nudenet" in problem
