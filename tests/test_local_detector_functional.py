"""The whole bot with MODBOT_DETECTOR=nudenet: the local model answers, AWS is never called, and
switching detectors never reuses the other one's stored result."""

from __future__ import annotations

import pytest

from tests.fakes.images import make_image
from tests.harness import ALERTS, REVIEW_COLOR, Stack, http_bot


async def test_the_bot_scans_with_the_local_model_and_detections_stay_per_detector(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/moderate with nudenet: answered by the local model (no Rekognition call, no alert for
    an image with no person). The same bytes after switching to rekognition are sent to
    Rekognition, which finds its scripted label: nothing was reused across detectors."""
    stack.web.add("/pic.png", make_image(REVIEW_COLOR, (200, 200), "PNG"))
    monkeypatch.setenv("MODBOT_DETECTOR", "nudenet")
    async with http_bot(stack) as bot:
        await bot.command(f"{stack.web.url}/pic.png", key="local")
        await bot.idle(within=60)
    [answer] = stack.slack.responses_by_key["local"]
    assert answer["text"].startswith("Allowed")
    assert "nudenet-3.4." in str(answer["blocks"])
    assert stack.aws.calls == []
    assert stack.slack.messages.get(ALERTS, []) == []

    monkeypatch.setenv("MODBOT_DETECTOR", "rekognition")
    async with http_bot(stack) as bot:
        await bot.command(f"{stack.web.url}/pic.png", key="cloud")
        await bot.idle()
    [answer] = stack.slack.responses_by_key["cloud"]
    assert "Exposed Female Nipple" in str(answer["blocks"])
    assert len(stack.aws.calls) == 1
