"""Nothing lost, nothing doubled: crashes mid-scan, faults from AWS and Slack, bursts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import slack_payloads as payloads
from tests.harness import GENERAL, POSTER, REVIEW_COLOR, Stack, http_bot, started_stack


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    async with started_stack(tmp_path, monkeypatch) as stack:
        yield stack


async def test_crash_between_posting_and_saving_the_alert_posts_it_once(stack: Stack) -> None:
    """The alert reached Slack but the bot stopped before saving it: the restart finds it in the
    channel history (by the scan id in its metadata) instead of posting a second alert."""
    saving = asyncio.Event()
    async with http_bot(stack) as bot:
        store = bot.runtime.store

        async def stuck(*_args: object) -> None:
            saving.set()
            await asyncio.Event().wait()  # the process "dies" here

        store.complete_alert = stuck  # type: ignore[method-assign]
        file = stack.upload(REVIEW_COLOR)
        await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        await asyncio.wait_for(saving.wait(), 10)
        await bot.runtime.pipeline.stop(grace=0.1)
    assert len(stack.alerts()) == 1
    async with http_bot(stack) as bot:
        await bot.idle()
        assert await bot.runtime.store.status_counts() == {"done": 1}
    assert len(stack.alerts()) == 1
    assert len(stack.slack.calls_to("conversations.history")) == 1
