"""Human review with Amazon A2I, end to end: both triggers, both completion paths, restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.policy import DEFAULT_POLICY, a2i_activation_conditions
from tests.fakes import slack_payloads as payloads
from tests.fakes.faulty_proxy import FaultyProxy
from tests.harness import (
    A2I,
    CLEAN_COLOR,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    Bot,
    Stack,
    enable_a2i,
    http_bot,
    started_stack,
)


@pytest.fixture
async def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> AsyncIterator[Stack]:
    async with started_stack(tmp_path, monkeypatch, moto_url=moto_url) as stack:
        yield stack


async def _borderline_upload(stack: Stack, bot: Bot) -> dict[str, Any]:
    file = stack.upload(REVIEW_COLOR)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    [alert] = stack.alerts()
    return alert


async def _thread_reply(stack: Stack, alert: dict[str, Any], start: str) -> dict[str, Any]:
    await stack.slack.wait_for(
        lambda: any(m["text"].startswith(start) for m in stack.thread(alert)), timeout=10
    )
    return next(m for m in stack.thread(alert) if m["text"].startswith(start))


def _loop_name(stack: Stack) -> str:
    [name] = stack.aws.loops
    return name


async def _verdict_actor(bot: Bot) -> str | None:
    rows = await bot.runtime.store.audit_log()
    return next((row["actor"] for row in rows if row["action"] == "verdict"), None)


@pytest.mark.parametrize(
    ("trigger", "events"),
    [("policy", True), ("policy", False), ("flow", True), ("flow", False)],
)
async def test_borderline_upload_goes_through_a_human_loop_to_a_verdict(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str, trigger: str, events: bool
) -> None:
    """Alert -> loop started (named in the thread) -> workers answer -> Verdict -> alert updated."""
    conditions = a2i_activation_conditions(DEFAULT_POLICY) if trigger == "flow" else None
    a2i = enable_a2i(
        stack,
        monkeypatch,
        moto_url,
        trigger=trigger,
        events=events,
        poll_seconds=3600 if events else 0.2,
        conditions=conditions,
    )
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        assert "actions" not in str(alert["blocks"])  # A2I reviews, not buttons
        name = _loop_name(stack)
        started = await _thread_reply(stack, alert, ":mag: Human review started in Amazon A2I")
        assert name in started["text"]
        # policy: the scan call plus the deliberate second call that opens the loop;
        # flow: the scan call itself carries HumanLoopConfig and opens it.
        assert stack.rekognition_calls() == (2 if trigger == "policy" else 1)
        assert stack.aws.calls[-1].human_loop_name == name
        await stack.aws.complete_loop(name, [["Exposed Female Nipple"]])
        verdict = await _thread_reply(stack, alert, "Verdict:")
        assert verdict["text"].startswith("Verdict: violation (Exposed Female Nipple)")
        assert name in verdict["text"]
        assert "1 A2I worker" in verdict["text"]
        await stack.slack.wait_for(lambda: "verdict: violation" in stack.alerts()[0]["text"])
        assert await _verdict_actor(bot) == ("a2i-sqs" if events else "a2i-poll")
        _assert_image_copied_encrypted(a2i, moto_url)


def _assert_image_copied_encrypted(a2i: A2I, moto_url: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=a2i.bucket, Prefix="modbot/")["Contents"]]
    assert len(keys) == 1
    head = s3.head_object(Bucket=a2i.bucket, Key=keys[0])
    assert head["ServerSideEncryption"] == "AES256"


async def test_no_violation_answer_and_duplicate_event_change_nothing_twice(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """An empty selection is 'no violation'; the same event delivered twice gives one verdict."""
    a2i = enable_a2i(stack, monkeypatch, moto_url)
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        name = _loop_name(stack)
        await stack.aws.complete_loop(name, [[]], duplicate_event=True)
        verdict = await _thread_reply(stack, alert, "Verdict:")
        assert verdict["text"].startswith("Verdict: no violation")
        await stack.slack.wait_for(lambda: a2i.queue_depth() == 0, timeout=10)
        assert [m["text"][:8] for m in stack.thread(alert)].count("Verdict:") == 1
        assert len(stack.slack.calls_to("chat.update")) == 1


async def test_expired_loop_is_reported_in_the_thread(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """A loop that fails with FailureCode Expired gets a thread reply that says it expired."""
    enable_a2i(stack, monkeypatch, moto_url)
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        await stack.aws.fail_loop(_loop_name(stack), code="Expired")
        reply = await _thread_reply(stack, alert, ":warning: Human review did not finish")
        assert "expired" in reply["text"]
        assert _loop_name(stack) in reply["text"]


@pytest.mark.parametrize("events", [True, False])
async def test_restart_mid_review_still_reports_the_verdict(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str, events: bool
) -> None:
    """Bot stopped with a loop open; workers answer meanwhile; the restarted bot reports it."""
    enable_a2i(
        stack,
        monkeypatch,
        moto_url,
        events=events,
        poll_seconds=3600 if events else 0.2,
        task_count=2,
    )
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        await _thread_reply(stack, alert, ":mag: Human review started")
    await stack.aws.complete_loop(_loop_name(stack), [["Exposed Female Nipple"], ["Explicit"]])
    async with http_bot(stack):
        verdict = await _thread_reply(stack, alert, "Verdict:")
    assert verdict["text"].startswith("Verdict: violation")
    assert "2 A2I workers" in verdict["text"]


async def test_loop_quota_exceeded_is_reported_not_swallowed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """HumanLoopQuotaExceededException: the alert stands and the thread says why no review."""
    enable_a2i(stack, monkeypatch, moto_url)
    stack.aws.set_active_loop_limit(0)
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        reply = await _thread_reply(stack, alert, ":warning: Human review did not finish")
        assert "quota exceeded" in reply["text"]


async def test_unreachable_bucket_is_reported_in_the_thread(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """A bucket that does not exist: the thread names it instead of failing silently."""
    enable_a2i(stack, monkeypatch, moto_url)
    monkeypatch.setenv("MODBOT_S3_BUCKET", "no-such-bucket-for-modbot")
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        reply = await _thread_reply(stack, alert, ":warning: Human review did not finish")
        assert "s3://no-such-bucket-for-modbot" in reply["text"]


async def test_flow_trigger_clean_image_opens_no_loop(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """flow: every scan call carries HumanLoopConfig; the conditions keep clean images out."""
    enable_a2i(
        stack,
        monkeypatch,
        moto_url,
        trigger="flow",
        conditions=a2i_activation_conditions(DEFAULT_POLICY),
    )
    async with http_bot(stack) as bot:
        file = stack.upload(CLEAN_COLOR)
        await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        await bot.idle()
    [call] = stack.aws.calls
    assert call.human_loop_name is not None
    assert call.human_loop_arn is None
    assert stack.aws.loops == {}
    assert stack.alerts() == []


async def test_unreachable_events_queue_falls_back_to_polling(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """SQS down (nothing listens at its endpoint): DescribeHumanLoop polling still delivers."""
    enable_a2i(stack, monkeypatch, moto_url, events=True, poll_seconds=0.3)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        await stack.aws.complete_loop(_loop_name(stack), [["Exposed Female Nipple"]])
        verdict = await _thread_reply(stack, alert, "Verdict:")
        assert verdict["text"].startswith("Verdict: violation")
        assert await _verdict_actor(bot) == "a2i-poll"


async def test_transient_s3_errors_are_retried_and_the_review_goes_ahead(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """S3 answering 500 to the first two requests: the copy is retried and the loop opens."""
    enable_a2i(stack, monkeypatch, moto_url)
    proxy = FaultyProxy(moto_url, failures=2)
    await proxy.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    try:
        async with http_bot(stack) as bot:
            alert = await _borderline_upload(stack, bot)
            started = await _thread_reply(stack, alert, ":mag: Human review started")
            assert _loop_name(stack) in started["text"]
    finally:
        await proxy.close()
    assert [failure.split()[0] for failure in proxy.failed] == ["PUT", "PUT"]
