"""Background work (verdict reporter, reminders, A2I loops) outlives Slack outages and bugs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes import slack_payloads as payloads
from tests.harness import (
    ALERTS,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    Bot,
    Stack,
    http_bot,
    started_stack,
    until,
)

VIOLATION = "modbot_review_violation"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MODBOT_REVIEW_QUORUM", "2")
    monkeypatch.setenv("MODBOT_REVIEWERS", "U0MOD1,S0MODS")
    monkeypatch.setenv("MODBOT_RETRY_MAX_DELAY_SECONDS", "0.05")
    async with started_stack(tmp_path, monkeypatch) as stack:
        stack.slack.add_usergroup("S0MODS", ["U0MOD2", "U0MOD3"])
        yield stack


async def _alert(stack: Stack, bot: Bot) -> dict[str, Any]:
    file = stack.upload(REVIEW_COLOR)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    return stack.alerts()[-1]


async def _vote(stack: Stack, bot: Bot, alert: dict[str, Any], user: str) -> None:
    [actions] = [b for b in alert["blocks"] if b["type"] == "actions"]
    scan_id = actions["elements"][0]["value"]
    body = payloads.block_action(
        VIOLATION, scan_id, user, ALERTS, alert["ts"], stack.slack.response_url(user)
    )
    assert (await bot.interaction(body))["status"] == 200


def _attempts(stack: Stack, method: str, since: int) -> int:
    return len(stack.slack.calls_to(method)) - since


@pytest.mark.parametrize("drop_connections", [True, False], ids=["unreachable", "503"])
async def test_verdict_decided_during_a_slack_outage_is_posted_after_it(
    stack: Stack, drop_connections: bool
) -> None:
    """Slack down (connections dropped, or 503) when the deciding vote lands: the reporter keeps
    trying past slack_sdk's own retries, and the verdict reply arrives once Slack is back."""
    async with http_bot(stack) as bot:
        alert = await _alert(stack, bot)
        await _vote(stack, bot, alert, "U0MOD3")  # reads the user group while Slack is up
        before = len(stack.slack.calls_to("chat.update"))
        stack.slack.start_outage(drop_connections=drop_connections)
        await _vote(stack, bot, alert, "U0MOD1")  # decides; the verdict is stored
        # slack_sdk itself makes 4 attempts per call; a 5th means modbot tried again on its own.
        await stack.slack.wait_for(lambda: _attempts(stack, "chat.update", before) >= 5, 30)
        stack.slack.end_outage()
        await stack.slack.wait_for(
            lambda: any(m["text"].startswith("Verdict: violation") for m in stack.thread(alert)),
            30,
        )


async def test_reminders_continue_after_slack_was_unreachable(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection error while posting a reminder does not end the reminder loop."""
    monkeypatch.setenv("MODBOT_REVIEW_REMIND_MINUTES", "0.005")  # 0.3 s
    async with http_bot(stack) as bot:
        alert = await _alert(stack, bot)
        before = len(stack.slack.calls_to("chat.postMessage"))
        stack.slack.start_outage(drop_connections=True)
        await stack.slack.wait_for(lambda: _attempts(stack, "chat.postMessage", before) >= 5, 30)
        stack.slack.end_outage()
        reminders = len([m for m in stack.thread(alert) if m["text"].startswith(":alarm_clock:")])
        await stack.slack.wait_for(
            lambda: (
                len([m for m in stack.thread(alert) if m["text"].startswith(":alarm_clock:")])
                > reminders
            ),
            10,
        )


async def test_a_background_task_that_ends_turns_healthz_to_503(stack: Stack) -> None:
    """A supervised task that ends anyway is noticed at once: /healthz answers 503, naming it."""
    async with http_bot(stack) as bot, aiohttp.ClientSession() as session:
        healthz = bot.url.replace("/slack/events", "/healthz")  # type: ignore[attr-defined]
        async with session.get(healthz) as response:
            assert response.status == 200
        bot.runtime.supervisor.tasks["verdict-reporter"].cancel()  # as if it had crashed
        body: dict[str, Any] = {}

        async def unhealthy() -> bool:
            nonlocal body
            async with session.get(healthz) as response:
                body = await response.json()
                return response.status == 503

        await until(unhealthy, "/healthz to answer 503", within=5)
        assert body["ok"] is False
        assert body["stopped_tasks"] == ["verdict-reporter"]
