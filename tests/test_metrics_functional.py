"""GET /metrics: it moves with scans, detector calls, alerts and verdicts, keeps its labels
bounded, and is served with /healthz on PORT in Socket Mode too."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import slack_payloads as payloads
from tests.harness import (
    ALERTS,
    CLEAN_COLOR,
    FLAG_COLOR,
    GENERAL,
    MODERATOR,
    POSTER,
    REVIEW_COLOR,
    Bot,
    BotProcess,
    Stack,
    until,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    """Every sample of the exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _scrape(url: str) -> tuple[str, Samples]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return text, _samples(text)


def _metrics_url(bot: Bot) -> str:
    return bot.url.replace("/slack/events", "/metrics")  # type: ignore[attr-defined]


async def _post(stack: Stack, bot: Bot, color: tuple[int, int, int], name: str) -> None:
    file = stack.upload(color, name=name)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))


async def test_metrics_move_with_scans_alerts_and_verdicts(stack: Stack, bot: Bot) -> None:
    """Three uploads (review, flag, clean) with one throttled request: scans by outcome,
    detector calls and throttles, two alerts in the latency histogram, one open review; a vote
    then gives a verdict and closes it."""
    _, before = await _scrape(_metrics_url(bot))
    assert _value(before, "modbot_scans_total", outcome="review", mode="enforce") == 0
    assert _value(before, "modbot_open_reviews") == 0

    stack.aws.fail_next("ThrottlingException")
    await _post(stack, bot, REVIEW_COLOR, "a.png")
    await bot.idle()
    await _post(stack, bot, FLAG_COLOR, "b.png")
    await _post(stack, bot, CLEAN_COLOR, "c.png")
    await bot.idle()

    text, after = await _scrape(_metrics_url(bot))
    for outcome in ("review", "flag", "allow"):
        assert _value(after, "modbot_scans_total", outcome=outcome, mode="enforce") == 1
    calls = "modbot_detector_calls_total"
    assert _value(after, calls, detector="rekognition", result="ok") == 3
    assert _value(after, calls, detector="rekognition", result="throttled") == 1
    assert _value(after, "modbot_detector_throttles_total", detector="rekognition") == 1
    assert _value(after, "modbot_alerts_total", decision="review") == 1
    assert _value(after, "modbot_alerts_total", decision="flag") == 1
    assert _value(after, "modbot_event_to_alert_seconds_count") == 2
    assert 0 < _value(after, "modbot_event_to_alert_seconds_sum") < 60
    assert _value(after, "modbot_queue_depth") == 0
    assert _value(after, "modbot_open_reviews") == 1
    assert _value(after, "modbot_oldest_open_review_age_seconds") >= 0
    # Bounded labels: no scan id, user, channel or file name appears anywhere.
    review_alert = next(a for a in stack.alerts() if "actions" in str(a["blocks"]))
    [scan_id] = {
        e["value"] for b in review_alert["blocks"] if b["type"] == "actions" for e in b["elements"]
    }
    for unbounded in (scan_id, POSTER, GENERAL, ALERTS, "a.png"):
        assert unbounded not in text

    body = payloads.block_action(
        "modbot_review_violation",
        scan_id,
        MODERATOR,
        ALERTS,
        review_alert["ts"],
        stack.slack.response_url("vote"),
    )
    assert (await bot.interaction(body))["status"] == 200

    async def verdict_counted() -> bool:
        _, now = await _scrape(_metrics_url(bot))
        return _value(now, "modbot_verdicts_total", outcome="violation") == 1

    await until(verdict_counted, "the verdict in /metrics")
    _, done = await _scrape(_metrics_url(bot))
    assert _value(done, "modbot_open_reviews") == 0
    assert _value(done, "modbot_oldest_open_review_age_seconds") == 0


async def test_every_documented_metric_is_exposed(stack: Stack, bot: Bot) -> None:
    """PRODUCT §13's list, removals and HMA lookups included, is in the exposition from the
    start (HELP and TYPE lines), with the process's own CPU and memory."""
    text, _ = await _scrape(_metrics_url(bot))
    for name, kind in {
        "modbot_scans_total": "counter",
        "modbot_detector_calls_total": "counter",
        "modbot_detector_throttles_total": "counter",
        "modbot_queue_depth": "gauge",
        "modbot_alerts_total": "counter",
        "modbot_event_to_alert_seconds": "histogram",
        "modbot_open_reviews": "gauge",
        "modbot_oldest_open_review_age_seconds": "gauge",
        "modbot_verdicts_total": "counter",
        "modbot_removals_total": "counter",
        "modbot_hma_lookups_total": "counter",
        "process_cpu_seconds_total": "counter",
    }.items():
        assert re.search(rf"^# TYPE {name} {kind}$", text, re.MULTILINE), name


@pytest.fixture
async def socket_process(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """`modbot serve --socket` as a real process; its base URL on PORT."""
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-test")
    monkeypatch.delenv("SLACK_SIGNING_SECRET")  # Socket Mode needs none
    process = BotProcess(stack, transport="--socket")
    await process.start()  # returns once GET /healthz answers 200 on PORT
    try:
        yield process.url
    finally:
        assert await process.terminate() == 0


async def test_socket_mode_serves_healthz_and_metrics_on_port(
    stack: Stack, socket_process: str
) -> None:
    """In Socket Mode, PORT answers /healthz (200, JSON) and /metrics, which counts a scan that
    arrived over the WebSocket."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{socket_process}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["store"] == "ok"
        async with session.post(f"{socket_process}/slack/events", data=b"{}") as response:
            assert response.status in (404, 405)  # events come over the WebSocket only
    await stack.slack.wait_connected()
    file = stack.upload(FLAG_COLOR)
    envelope = payloads.envelope("events", payloads.message_event(GENERAL, POSTER, files=[file]), 0)
    await stack.slack.wait_ack(await stack.slack.push(envelope))

    async def scanned() -> bool:
        _, samples = await _scrape(f"{socket_process}/metrics")
        return _value(samples, "modbot_scans_total", outcome="flag", mode="enforce") == 1

    await until(scanned, "the scan in /metrics", within=20)
