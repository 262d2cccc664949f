"""The whole bot over Socket Mode: envelopes in, acks and Slack calls out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    CLEAN_COLOR,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    Bot,
    Stack,
    socket_bot,
)


@pytest.fixture
async def bot(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    async with socket_bot(stack, monkeypatch) as bot:
        yield bot


async def test_upload_envelope_is_acked_and_alerted(stack: Stack, bot: Bot) -> None:
    """An events_api envelope with a review-band upload is acked and gives one alert."""
    file = stack.upload(REVIEW_COLOR)
    reply = await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    assert "envelope_id" in reply["ack"]
    await bot.idle()
    [alert] = stack.alerts()
    assert "Explicit › Explicit Nudity › Exposed Female Nipple" in str(alert["blocks"])


async def test_clean_upload_envelope_gives_no_alert(stack: Stack, bot: Bot) -> None:
    """A clean image over Socket Mode: acked, scanned, nothing posted."""
    file = stack.upload(CLEAN_COLOR)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    assert stack.rekognition_calls() == 1
    assert stack.alerts() == []


async def test_redelivered_envelope_produces_nothing_new(stack: Stack, bot: Bot) -> None:
    """retry_attempt 1 of the same event: acked again, no second call or alert."""
    file = stack.upload(REVIEW_COLOR)
    event = payloads.message_event(GENERAL, POSTER, files=[file])
    await bot.event(event)
    await bot.idle()
    again = await bot.event(event, retry=1)
    assert "envelope_id" in again["ack"]
    await bot.idle()
    assert stack.rekognition_calls() == 1
    assert len(stack.alerts()) == 1


async def test_moderate_command_ack_carries_the_answer(stack: Stack, bot: Bot) -> None:
    """/moderate over Socket Mode: the ack payload says Scanning, the breakdown follows."""
    stack.web.add("/p.png", make_image(REVIEW_COLOR, (200, 200), "PNG"))
    reply = await bot.command(f"{stack.web.url}/p.png", key="sock")
    assert "Scanning" in reply["ack"]["payload"]["text"]
    await bot.idle()
    [answer] = stack.slack.responses_by_key["sock"]
    assert "72.4%" in str(answer["blocks"])


async def test_message_shortcut_scans_the_chosen_message(stack: Stack, bot: Bot) -> None:
    """The "Moderate images" shortcut scans the message's upload and answers the invoker."""
    file = stack.upload(REVIEW_COLOR)
    message = {"ts": "1700000001.000100", "user": POSTER, "text": "", "files": [file]}
    shortcut = payloads.message_shortcut(
        "modbot_moderate_message", message, GENERAL, "U0ASKER", stack.slack.response_url("sc")
    )
    reply = await bot.interaction(shortcut)
    assert "envelope_id" in reply["ack"]
    await bot.idle()
    [answer] = stack.slack.responses_by_key["sc"]
    assert "Exposed Female Nipple" in str(answer["blocks"])
    assert len(stack.alerts()) == 1
