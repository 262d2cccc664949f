"""Two replicas (two whole apps) on one PostgreSQL database, racing for the same work: votes that
both decide, an A2I completion event that reaches both, the same bytes posted to both.

Each replica is the real app in HTTP mode with its own engine, pool, holder and tasks; they
share only the database and the stand-ins, as replicas behind a load balancer do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    ALERTS,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    Bot,
    Stack,
    enable_a2i,
    http_bot,
    started_stack,
)
from tests.test_review_slack_functional import OK, VIOLATION, _scan_id

pytestmark = pytest.mark.postgres


@pytest.fixture
async def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, moto_url: str
) -> AsyncIterator[Stack]:
    async with started_stack(tmp_path, monkeypatch, moto_url=moto_url) as stack:
        monkeypatch.setenv("DATABASE_URL", postgres_url)
        stack.env["DATABASE_URL"] = postgres_url
        yield stack


def _verdict_replies(stack: Stack) -> list[str]:
    return [
        m["text"]
        for m in stack.slack.messages.get(ALERTS, [])
        if m.get("thread_ts") and m["text"].startswith("Verdict:")
    ]


async def _verdicts_recorded(bot: Bot) -> int:
    return sum(row["action"] == "verdict" for row in await bot.runtime.store.audit_log())


async def test_two_deciding_votes_on_two_replicas_give_one_verdict(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quorum 1: two reviewers disagree at the same moment, each on another replica; one
    vote decides, the other finds the review closed; one verdict reply, one alert update."""
    monkeypatch.setenv("MODBOT_REVIEW_QUORUM", "1")
    async with http_bot(stack) as one, http_bot(stack) as two:
        file = stack.upload(REVIEW_COLOR)
        await one.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        await one.idle()
        await stack.slack.wait_for(lambda: len(stack.alerts()) == 1)
        alert = stack.alerts()[0]
        clicks = [
            payloads.block_action(
                action, _scan_id(alert), user, ALERTS, alert["ts"], stack.slack.response_url(user)
            )
            for action, user in ((VIOLATION, "U0MOD1"), (OK, "U0MOD2"))
        ]
        answers = await asyncio.gather(one.interaction(clicks[0]), two.interaction(clicks[1]))
        assert [answer["status"] for answer in answers] == [200, 200]
        await stack.slack.wait_for(lambda: len(_verdict_replies(stack)) == 1, timeout=10)
        await stack.slack.wait_for(lambda: len(stack.slack.calls_to("chat.update")) == 1)
        assert await _verdicts_recorded(one) == 1
        # The deciding vote is answered by the verdict in the thread; the other is told the
        # review was already decided.
        told = [stack.slack.responses_by_key.get(user, []) for user in ("U0MOD1", "U0MOD2")]
        assert sorted(len(answers) for answers in told) == [0, 1]
        assert len(_verdict_replies(stack)) == 1


async def test_an_a2i_completion_event_delivered_to_every_replica_gives_one_verdict(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """Each replica consumes its own SQS queue, both targets of the status-change rule: the
    loop's end reaches both at once; one verdict, one reply, one alert update, both queues
    emptied."""
    a2i = enable_a2i(stack, monkeypatch, moto_url)
    assert a2i.queue_url is not None
    async with http_bot(stack) as one:
        second_queue = a2i.sqs.create_queue(QueueName=f"{a2i.bucket}-two")["QueueUrl"]
        stack.aws.add_events_target(second_queue)
        monkeypatch.setenv("MODBOT_A2I_EVENTS_QUEUE_URL", second_queue)
        async with http_bot(stack) as two:
            file = stack.upload(REVIEW_COLOR)
            await one.event(payloads.message_event(GENERAL, POSTER, files=[file]))
            await one.idle()
            await stack.slack.wait_for(lambda: len(stack.aws.loops) == 1, timeout=10)
            [name] = stack.aws.loops
            await stack.aws.complete_loop(name, [["Exposed Female Nipple"]])
            await stack.slack.wait_for(lambda: len(_verdict_replies(stack)) == 1, timeout=15)

            def drained() -> bool:
                depths = [
                    a2i.sqs.get_queue_attributes(
                        QueueUrl=url,
                        AttributeNames=[
                            "ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible",
                        ],
                    )["Attributes"]
                    for url in (a2i.queue_url, second_queue)
                ]
                return all(int(v) == 0 for depth in depths for v in depth.values())

            await stack.slack.wait_for(drained, timeout=15)
            assert await _verdicts_recorded(two) == 1
            assert len(_verdict_replies(stack)) == 1
            assert len(stack.slack.calls_to("chat.update")) == 1


async def test_the_same_bytes_posted_on_two_replicas_at_once_cost_one_detector_call(
    stack: Stack,
) -> None:
    """Two uploads of identical bytes, one to each replica, scanned at the same moment: one
    Rekognition call (a lease on the bytes' detection); the other replica reuses its result."""
    stack.aws.set_latency(0.5)  # both scans are in their detection step together
    async with http_bot(stack) as one, http_bot(stack) as two:
        data = make_image(REVIEW_COLOR, (321, 241), "PNG")
        first = stack.upload(REVIEW_COLOR, name="one.png", data=data)
        second = stack.upload(REVIEW_COLOR, name="two.png", data=data)
        await asyncio.gather(
            one.event(payloads.message_event(GENERAL, POSTER, files=[first])),
            two.event(payloads.message_event(GENERAL, "U0OTHER", files=[second])),
        )
        await asyncio.gather(one.idle(15), two.idle(15))
        assert stack.rekognition_calls() == 1
        assert len(stack.alerts()) == 2  # each post gets its alert; the second links the first
        counts = await one.runtime.store.status_counts()
        assert counts == {"done": 2}
