"""Near-duplicates (PRODUCT §11): a resized, recompressed, rotated copy of a confirmed violation
is handled as a re-post without a Rekognition call; unrelated images and "no violation"
near-duplicates are scanned as usual."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.database.reviews import ReviewStore
from bot.orchestration.bank import HashBank
from tests.fakes import slack_payloads as payloads
from tests.fakes.images import mean_color
from tests.fakes.scenes import chained, jpeg, recompressed, resized, rotated, scene
from tests.harness import ALERTS, GENERAL, POSTER, Bot, Stack, started_stack, until

VIOLATION = "modbot_review_violation"
OK = "modbot_review_ok"
REVIEW_LABELS = {"Exposed Female Nipple": 72.4}


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MODBOT_BANK_REFRESH_SECONDS", "0.1")
    async with started_stack(tmp_path, monkeypatch) as stack:
        yield stack


def _bank(bot: Bot) -> HashBank:
    near = bot.runtime.near
    assert near is not None
    assert near.bank is not None
    return near.bank


async def _post(stack: Stack, bot: Bot, data: bytes, name: str) -> None:
    file = stack.upload((0, 0, 0), data=data, name=name, mimetype="image/jpeg")
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()


async def _decide(stack: Stack, bot: Bot, alert: dict[str, Any], action: str) -> None:
    [actions] = [b for b in alert["blocks"] if b["type"] == "actions"]
    scan_id = actions["elements"][0]["value"]
    body = payloads.block_action(
        action, scan_id, "U0MOD", ALERTS, alert["ts"], stack.slack.response_url("vote")
    )
    assert (await bot.interaction(body))["status"] == 200
    reviews = ReviewStore(bot.runtime.store)

    async def decided() -> bool:
        review = await reviews.get(scan_id)
        return review is not None and review.verdict is not None

    await until(decided, "the verdict")


def _text(message: dict[str, Any]) -> str:
    return message["text"] + " " + str(message["blocks"])


async def _reviews_started(bot: Bot) -> int:
    return sum(
        1 for row in await bot.runtime.store.audit_log() if row["action"] == "review_started"
    )


async def test_transformed_copy_of_a_violation_is_a_re_post_without_rekognition(
    stack: Stack, bot: Bot
) -> None:
    """Resized to 60 %, rotated 90° and recompressed at JPEG 60: flagged as a confirmed
    violation, with the distance and the earlier alert, no Rekognition call and no review."""
    original = scene(3)
    data = jpeg(original)
    stack.aws.script(tuple(round(c) for c in mean_color(data)), REVIEW_LABELS)  # type: ignore[arg-type]
    await _post(stack, bot, data, "original.jpg")
    [first] = stack.alerts()
    await _decide(stack, bot, first, VIOLATION)
    await until(lambda: _has_rows(bot), "the verdict in the hash bank")

    calls = stack.rekognition_calls()
    copy = chained(resized(0.6), rotated(90), recompressed(60))(original)
    await _post(stack, bot, jpeg(copy, 70), "copy.jpg")

    assert stack.rekognition_calls() == calls  # the emulator saw no DetectModerationLabels
    second = stack.alerts()[-1]
    assert second["ts"] != first["ts"]
    assert second["text"].startswith("Flagged:")  # with the earlier image's breakdown
    text = _text(second)
    assert "Near-duplicate of a confirmed violation" in text
    assert "of 256 bits" in text
    assert f"p{first['ts'].replace('.', '')}" in text  # the earlier alert's permalink
    assert "Exposed Female Nipple" in text  # the confirmed labels
    assert not [b for b in second["blocks"] if b["type"] == "actions"]  # no vote buttons
    assert await _reviews_started(bot) == 1  # only the original's


async def test_an_unrelated_image_is_not_matched(stack: Stack, bot: Bot) -> None:
    """A different scene after a confirmed violation is sent to Rekognition as usual."""
    data = jpeg(scene(3))
    stack.aws.script(tuple(round(c) for c in mean_color(data)), REVIEW_LABELS)  # type: ignore[arg-type]
    await _post(stack, bot, data, "original.jpg")
    await _decide(stack, bot, stack.alerts()[0], VIOLATION)
    await until(lambda: _has_rows(bot), "the verdict in the hash bank")

    calls = stack.rekognition_calls()
    await _post(stack, bot, jpeg(scene(9)), "other.jpg")
    assert stack.rekognition_calls() == calls + 1
    assert len(stack.alerts()) == 1  # clean by the emulator: no alert, no near-duplicate


async def test_near_duplicate_of_no_violation_is_only_mentioned(stack: Stack, bot: Bot) -> None:
    """A copy of an image confirmed fine is scanned and reviewed as usual; its alert mentions
    the earlier verdict with its link."""
    original = scene(5)
    data = jpeg(original)
    stack.aws.script(tuple(round(c) for c in mean_color(data)), REVIEW_LABELS)  # type: ignore[arg-type]
    await _post(stack, bot, data, "original.jpg")
    [first] = stack.alerts()
    await _decide(stack, bot, first, OK)
    await until(lambda: _has_rows(bot), "the verdict in the hash bank")

    calls = stack.rekognition_calls()
    await _post(stack, bot, jpeg(resized(0.7)(original), 75), "copy.jpg")
    assert stack.rekognition_calls() == calls + 1  # the decision is the detector's
    second = stack.alerts()[-1]
    assert second["ts"] != first["ts"]
    assert second["text"].startswith("Needs review")
    text = _text(second)
    assert "confirmed *no violation* earlier" in text, text
    assert f"p{first['ts'].replace('.', '')}" in text
    assert [b for b in second["blocks"] if b["type"] == "actions"]  # reviewed as usual


async def _has_rows(bot: Bot) -> bool:
    return len(_bank(bot)) >= 1
