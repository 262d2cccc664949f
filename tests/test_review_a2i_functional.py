"""Human review with Amazon A2I, end to end: both triggers, both completion paths, restarts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.adapters.database.reviews import ReviewStore
from bot.core.policy import DEFAULT_POLICY, a2i_activation_conditions
from tests.fakes import slack_payloads as payloads
from tests.fakes.faulty_proxy import FaultyProxy
from tests.fakes.images import make_image
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


def _loop_of(stack: Stack, alert: dict[str, Any]) -> str:
    started = next(m for m in stack.thread(alert) if m["text"].startswith(":mag:"))
    return next(name for name in stack.aws.loops if name in started["text"])


async def test_malformed_event_and_odd_output_do_not_stop_other_reviews(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """A malformed SQS message and a loop whose output.json is odd are logged and skipped (the
    odd one reported in its thread); a normal loop completed after them still gets its verdict."""
    a2i = enable_a2i(stack, monkeypatch, moto_url)
    assert a2i.queue_url is not None
    async with http_bot(stack) as bot:
        odd_alert = await _borderline_upload(stack, bot)
        await _thread_reply(stack, odd_alert, ":mag: Human review started")
        file = stack.upload(REVIEW_COLOR, data=make_image(REVIEW_COLOR, (300, 300), "PNG"))
        await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        await bot.idle()
        normal_alert = stack.alerts()[-1]
        await _thread_reply(stack, normal_alert, ":mag: Human review started")
        odd, normal = _loop_of(stack, odd_alert), _loop_of(stack, normal_alert)
        for body in (
            "not an event",
            json.dumps({"detail": {"humanLoopName": odd, "humanLoopOutput": "junk"}}),
            json.dumps({"detail": ["junk"]}),
        ):
            a2i.sqs.send_message(QueueUrl=a2i.queue_url, MessageBody=body)
        await stack.aws.complete_loop(
            odd, [[]], raw_output=b'{"humanAnswers": [{"answerContent": "junk"}]}'
        )
        await stack.aws.complete_loop(normal, [["Exposed Female Nipple"]])
        verdict = await _thread_reply(stack, normal_alert, "Verdict:")
        assert verdict["text"].startswith("Verdict: violation")
        failed = await _thread_reply(stack, odd_alert, ":warning: Human review did not finish")
        assert "output" in failed["text"]
        await stack.slack.wait_for(lambda: a2i.queue_depth() == 0, timeout=10)


async def test_forged_completed_event_is_checked_with_describe_human_loop(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """A forged 'Completed' event pointing at an output in another bucket decides nothing while
    the loop is InProgress; the verdict comes from A2I's own output once the loop completes."""
    a2i = enable_a2i(stack, monkeypatch, moto_url)
    assert a2i.queue_url is not None
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="attacker-bucket")
    forged_output = {
        "humanAnswers": [
            {
                "answerContent": {
                    "AWS/Rekognition/DetectModerationLabels/Image/V3": {
                        "moderationLabels": [{"name": "Explicit", "parentName": ""}]
                    }
                }
            }
        ]
    }
    s3.put_object(Bucket="attacker-bucket", Key="out/output.json", Body=json.dumps(forged_output))
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        await _thread_reply(stack, alert, ":mag: Human review started")
        name = _loop_name(stack)
        forged = {
            "detail-type": "SageMaker A2I HumanLoop Status Change",
            "source": "aws.sagemaker",
            "detail": {
                "humanLoopName": name,
                "humanLoopStatus": "Completed",
                "humanLoopOutput": {"outputS3Uri": "s3://attacker-bucket/out/output.json"},
            },
        }
        a2i.sqs.send_message(QueueUrl=a2i.queue_url, MessageBody=json.dumps(forged))
        await stack.slack.wait_for(lambda: a2i.queue_depth() == 0, timeout=10)
        review = await ReviewStore(bot.runtime.store).by_loop(name)
        assert review is not None
        assert review.status == "open"
        await stack.aws.complete_loop(name, [[]])
        verdict = await _thread_reply(stack, alert, "Verdict:")
        assert verdict["text"].startswith("Verdict: no violation")


async def test_throttled_loop_opening_is_retried_until_the_loop_opens(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """Throttling of the call that opens the human loop, for longer than the detector's own
    quick retries, is retried with backoff (MODBOT_RETRY_*) and the review starts."""
    enable_a2i(stack, monkeypatch, moto_url)
    monkeypatch.setenv("MODBOT_RETRY_MAX_DELAY_SECONDS", "0.05")
    monkeypatch.setenv("MODBOT_RETRY_LIMIT_SECONDS", "60")
    stack.aws.fail_next_human_loop_calls("ThrottlingException", count=12)
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        started = await _thread_reply(stack, alert, ":")
        assert started["text"].startswith(":mag: Human review started")
    throttled = [call for call in stack.aws.calls if call.error == "ThrottlingException"]
    assert len(throttled) == 12


async def test_permanent_error_opening_the_loop_is_reported_at_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """Access denied on the loop-opening call is not retried: one call, reported in the thread."""
    enable_a2i(stack, monkeypatch, moto_url)
    monkeypatch.setenv("MODBOT_RETRY_LIMIT_SECONDS", "60")
    stack.aws.fail_next_human_loop_calls("AccessDeniedException", count=1)
    async with http_bot(stack) as bot:
        alert = await _borderline_upload(stack, bot)
        reply = await _thread_reply(stack, alert, ":warning: Human review did not finish")
        assert "access denied" in reply["text"]
    assert [call.error for call in stack.aws.calls] == [None, "AccessDeniedException"]
