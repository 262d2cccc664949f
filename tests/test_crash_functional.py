"""A real modbot process killed (SIGKILL) or stopped (SIGTERM) with scans in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    BotProcess,
    Stack,
    enable_a2i,
    started_stack,
)

IMAGES = 16


@pytest.fixture
async def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> AsyncIterator[Stack]:
    async with started_stack(tmp_path, monkeypatch, moto_url=moto_url) as stack:
        # Slow enough that a burst is still in flight when the process is stopped.
        monkeypatch.setenv("MODBOT_REKOGNITION_TPS", "4")
        stack.aws.set_latency(0.2)
        yield stack


async def _burst(stack: Stack, bot: BotProcess) -> list[str]:
    """IMAGES distinct review-band uploads, each acked (and so recorded) by the bot."""
    names = []
    for n in range(IMAGES):
        name = f"burst-{n}.png"
        data = make_image(REVIEW_COLOR, (200 + n, 200), "PNG")  # distinct bytes, same verdict
        file = stack.upload(REVIEW_COLOR, name=name, data=data)
        assert await bot.event(payloads.message_event(GENERAL, POSTER, files=[file])) == 200
        names.append(name)
    return names


def _alerts_per_name(stack: Stack, names: list[str]) -> dict[str, int]:
    return {name: sum(name in str(a["blocks"]) for a in stack.alerts()) for name in names}


async def test_sigkill_with_scans_in_flight_loses_and_doubles_nothing(stack: Stack) -> None:
    """Killed mid-burst and restarted: every acked image is scanned and alerted exactly once."""
    bot = BotProcess(stack)
    await bot.start()
    names = await _burst(stack, bot)
    await stack.slack.wait_for(lambda: len(stack.alerts()) >= 3, timeout=20)
    await bot.kill()
    assert len(stack.alerts()) < IMAGES  # it really died with work left
    restarted = BotProcess(stack)
    await restarted.start()
    await stack.slack.wait_for(lambda: len(stack.alerts()) >= IMAGES, timeout=60)
    assert _alerts_per_name(stack, names) == dict.fromkeys(names, 1)
    assert await restarted.terminate() == 0


async def test_sigterm_parks_unfinished_work_and_exits_cleanly(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM mid-burst: exit code 0 in bounded time; the next start finishes the rest once."""
    monkeypatch.setenv("MODBOT_SHUTDOWN_GRACE_SECONDS", "0.5")
    bot = BotProcess(stack)
    await bot.start()
    names = await _burst(stack, bot)
    await stack.slack.wait_for(lambda: len(stack.alerts()) >= 2, timeout=20)
    assert await bot.terminate(within=30) == 0
    assert len(stack.alerts()) < IMAGES, bot.output.decode()[-3000:]
    restarted = BotProcess(stack)
    await restarted.start()
    await stack.slack.wait_for(lambda: len(stack.alerts()) >= IMAGES, timeout=60)
    assert _alerts_per_name(stack, names) == dict.fromkeys(names, 1)
    assert await restarted.terminate() == 0


async def test_sigkill_mid_review_still_reports_the_verdict(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """An A2I loop open when the process is killed: the restarted bot reports its verdict."""
    enable_a2i(stack, monkeypatch, moto_url, poll_seconds=0.5, events=False)
    bot = BotProcess(stack)
    await bot.start()
    file = stack.upload(REVIEW_COLOR)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await stack.slack.wait_for(lambda: len(stack.aws.loops) == 1, timeout=20)
    await stack.slack.wait_for(
        lambda: any("Human review started" in m["text"] for m in stack.slack.messages["C0ALERTS"])
    )
    await bot.kill()
    [name] = stack.aws.loops
    await stack.aws.complete_loop(name, [["Exposed Female Nipple"]])
    restarted = BotProcess(stack)
    await restarted.start()
    await stack.slack.wait_for(
        lambda: any(
            m["text"].startswith("Verdict: violation") for m in stack.slack.messages["C0ALERTS"]
        ),
        timeout=20,
    )
    assert await restarted.terminate() == 0
