"""Two replicas (two whole apps) on one PostgreSQL database, racing for the same work: votes that
both decide, an A2I completion event that reaches both, the same bytes posted to both.

Each replica is the real app in HTTP mode with its own engine, pool, holder and tasks; they
share only the database and the stand-ins, as replicas behind a load balancer do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from sqlalchemy import make_url

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    ALERTS,
    FLAG_COLOR,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    SIGNING_SECRET,
    Bot,
    BotProcess,
    Stack,
    enable_a2i,
    http_bot,
    started_stack,
)
from tests.test_crash_functional import _alerts_per_name
from tests.test_quota_gate import most_in_one_second
from tests.test_review_slack_functional import OK, VIOLATION, _scan_id

pytestmark = pytest.mark.postgres


@pytest.fixture
async def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> AsyncIterator[Stack]:
    async with started_stack(tmp_path, monkeypatch) as stack:
        monkeypatch.setenv("DATABASE_URL", postgres_url)
        stack.env["DATABASE_URL"] = postgres_url
        yield stack


@pytest.fixture
async def a2i_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, moto_url: str
) -> AsyncIterator[Stack]:
    """The same, with moto for S3 and SQS."""
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
    a2i_stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """Each replica consumes its own SQS queue, both targets of the status-change rule: the
    loop's end reaches both at once; one verdict, one reply, one alert update, both queues
    emptied."""
    stack = a2i_stack
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


async def test_work_goes_on_after_the_server_drops_every_connection(
    stack: Stack, postgres_url: str
) -> None:
    """PostgreSQL ends every session of the replica (a restart, a fail-over: here
    pg_terminate_backend): the next event is taken in and scanned on fresh connections, and
    the background loops are all still running."""
    async with http_bot(stack) as bot:
        first = stack.upload(FLAG_COLOR, name="before.png")
        assert (await bot.event(payloads.message_event(GENERAL, POSTER, files=[first])))[
            "status"
        ] == 200
        await bot.idle()
        database = make_url(postgres_url).database
        with psycopg.connect(
            make_url(postgres_url).set(database="postgres").render_as_string(False),
            autocommit=True,
        ) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            ).fetchone()
        assert ended is not None
        assert ended[0] >= 1
        second = stack.upload(FLAG_COLOR, name="after.png", size=(330, 250))
        assert (await bot.event(payloads.message_event(GENERAL, POSTER, files=[second])))[
            "status"
        ] == 200
        await bot.idle(20)
        assert stack.rekognition_calls() == 2
        assert len(stack.alerts()) == 2
        assert bot.runtime.supervisor.stopped == []


BURST = 300
QUOTA = 50


async def test_three_serve_processes_share_a_burst_and_survive_a_sigkill(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three `modbot serve` processes on one PostgreSQL take a 300-event burst spread over
    them; one is SIGKILLed mid-burst (the events it did not ack are retried on the others, as
    Slack retries). Every image ends in exactly one alert, the dead replica's scans are taken
    over within the lease with no restart, and Rekognition never saw more than the quota in
    any one-second window."""
    monkeypatch.setenv("MODBOT_REKOGNITION_TPS", str(QUOTA))
    monkeypatch.setenv("MODBOT_LEASE_SECONDS", "3")
    stack.aws.set_latency(0.2)
    stack.aws.set_tps_quota(QUOTA)  # the emulator refuses what goes over, as Rekognition does
    replicas = [BotProcess(stack) for _ in range(3)]
    try:
        await _burst_over(stack, replicas)
    finally:  # no replica outlives the test, whatever happened
        for replica in replicas:
            if replica.process is not None and replica.process.returncode is None:
                await replica.kill()


async def _burst_over(stack: Stack, replicas: list[BotProcess]) -> None:
    await asyncio.gather(*(replica.start(within=180) for replica in replicas))
    victim, survivors = replicas[0], replicas[1:]
    names = [f"burst-{n}.png" for n in range(BURST)]
    events = [
        payloads.message_event(
            GENERAL,
            POSTER,
            files=[stack.upload(FLAG_COLOR, name=name, data=make_image(FLAG_COLOR, (100 + n, 90)))],
        )
        for n, name in enumerate(names)
    ]
    killed = asyncio.Event()
    sending = asyncio.Semaphore(16)

    async def deliver(n: int, event: dict[str, Any]) -> None:
        """To replica n % 3; an event the dead replica did not ack goes to a live one."""
        async with sending:
            if n == BURST // 3:  # a third of the way through the burst
                await victim.kill()
                killed.set()
            target = replicas[n % 3]
            if target is victim and killed.is_set():
                target = survivors[n % 2]
            if await _post(target, event, retry=0) != 200:
                assert await _post(survivors[n % 2], event, retry=1) == 200

    await asyncio.gather(*(deliver(n, event) for n, event in enumerate(events)))
    await stack.slack.wait_for(lambda: len(stack.alerts()) >= BURST, timeout=300)
    counts = _alerts_per_name(stack, names)
    assert {name: count for name, count in counts.items() if count != 1} == {}
    calls = [call for call in stack.aws.calls if call.error is None]
    assert len({call.sha256 for call in calls}) == BURST
    assert [call.error for call in stack.aws.calls if call.error] == []  # never over quota
    assert most_in_one_second([call.time for call in calls]) <= QUOTA
    for survivor in survivors:
        assert await survivor.terminate(within=60) == 0


async def _post(replica: BotProcess, event: dict[str, Any], *, retry: int) -> int:
    """The event as Slack sends it over HTTP; any failure to get an answer counts as no ack."""
    raw, content_type = payloads.http_body("events", event)
    headers = {**payloads.signed_headers(SIGNING_SECRET, raw), "Content-Type": content_type}
    if retry:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_error"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{replica.url}/slack/events", data=raw.encode(), headers=headers) as got,
        ):
            return got.status
    except aiohttp.ClientError:
        return 0
