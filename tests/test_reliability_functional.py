"""Nothing lost, nothing doubled: crashes mid-scan, faults from AWS and Slack, bursts."""

from __future__ import annotations

import asyncio
import time

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    CLEAN_COLOR,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    Bot,
    Stack,
    http_bot,
)


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


async def _uploads(stack: Stack, bot: Bot, count: int, color: tuple[int, int, int]) -> None:
    for n in range(count):
        data = make_image(color, (120 + n % 40, 120 + n // 40), "PNG")  # distinct bytes
        file = stack.upload(color, name=f"img-{n}.png", data=data)
        reply = await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        assert reply["status"] == 200


async def test_throttling_and_slack_errors_still_end_in_one_outcome_each(stack: Stack) -> None:
    """Half of Rekognition calls throttled or failing, Slack answering 429 and 500: every image
    is alerted exactly once and nothing is reported as failed."""
    stack.aws.set_fault_rate(0.5, seed=7)
    stack.slack.fail_next("chat.postMessage", 429, headers={"Retry-After": "0"}, count=3)
    stack.slack.fail_next("chat.postMessage", 500, count=1)
    async with http_bot(stack) as bot:
        await _uploads(stack, bot, 12, REVIEW_COLOR)
        await bot.idle(within=60)
        assert await bot.runtime.store.status_counts() == {"done": 12}
    names = [f"img-{n}.png" for n in range(12)]
    counts = {name: sum(name in str(a["blocks"]) for a in stack.alerts()) for name in names}
    assert counts == dict.fromkeys(names, 1)
    assert sum(1 for c in stack.aws.calls if c.error) > 0  # the faults really happened
    assert not any(a["text"].startswith("Could not scan") for a in stack.alerts())


async def test_slack_retry_after_is_honoured(stack: Stack) -> None:
    """A 429 with Retry-After: 1 on the alert post: the retry comes at least a second later."""
    stack.slack.fail_next("chat.postMessage", 429, headers={"Retry-After": "1"})
    async with http_bot(stack) as bot:
        await _uploads(stack, bot, 1, REVIEW_COLOR)
        await bot.idle()
    refused, posted = stack.slack.calls_to("chat.postMessage")[:2]
    assert posted.time - refused.time >= 1.0
    assert len(stack.alerts()) == 1


async def test_access_denied_fails_fast_with_a_visible_message(stack: Stack) -> None:
    """AccessDeniedException is not transient: one call, no retries, a Could not scan note."""
    stack.aws.fail_next("AccessDeniedException")
    async with http_bot(stack) as bot:
        await _uploads(stack, bot, 1, REVIEW_COLOR)
        await bot.idle()
    assert len(stack.aws.calls) == 1
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan `img-0.png` posted by <@U0POSTER>")
    assert "not allowed to call Rekognition (access denied)" in note["text"]


async def test_burst_of_500_uploads_is_acked_fast_and_all_scanned(stack: Stack) -> None:
    """500 upload events: each acked well inside Slack's 3 s, and all 500 images scanned."""
    total = 500
    events = []
    for n in range(total):
        data = make_image(CLEAN_COLOR, (100 + n % 25, 100 + n // 25), "PNG")
        file = stack.upload(CLEAN_COLOR, name=f"load-{n}.png", data=data)
        events.append(payloads.message_event(GENERAL, POSTER, files=[file]))
    async with http_bot(stack) as bot:
        gate = asyncio.Semaphore(50)  # like Slack: many deliveries in flight at once

        async def send(event: dict[str, object]) -> float:
            async with gate:
                started = time.perf_counter()
                reply = await bot.event(event)
                assert reply["status"] == 200
                return time.perf_counter() - started

        acks = await asyncio.gather(*(send(event) for event in events))
        await bot.idle(within=120)
        assert await bot.runtime.store.status_counts() == {"done": total}
    assert max(acks) < 3.0
    assert len(stack.aws.calls) == total
