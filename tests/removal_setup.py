"""Shared set-up for the removal and appeal tests: a policy that removes, the admin token,
and helpers that click like Slack does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes import slack_payloads as payloads
from tests.harness import ALERTS, GENERAL, POSTER, Bot, Stack

ADMIN_TOKEN = "xoxp-test-admin"
REMOVE = "modbot_remove"
VIOLATION = "modbot_review_violation"


def removing_policy(tmp: Path, monkeypatch: pytest.MonkeyPatch, remove: str) -> Path:
    path = tmp / "policy.toml"
    path.write_text(f'[defaults]\nremove = "{remove}"\n', encoding="utf-8")
    monkeypatch.setenv("MODBOT_POLICY_FILE", str(path))
    monkeypatch.setenv("SLACK_ADMIN_TOKEN", ADMIN_TOKEN)
    return path


async def upload_alert(stack: Stack, bot: Bot, color: tuple[int, int, int], **kw: Any) -> Any:
    """Upload an image, wait for its scan, and return (file, alert)."""
    file = stack.upload(color, **kw)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    return file, stack.alerts()[-1]


def button_value(alert: dict[str, Any], action_id: str) -> str:
    for block in alert["blocks"]:
        for element in block.get("elements") or ():
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button on the alert")


async def click(
    stack: Stack,
    bot: Bot,
    action_id: str,
    value: str,
    user: str,
    *,
    channel: str = ALERTS,
    message_ts: str = "",
) -> list[dict[str, Any]]:
    """A button click as Slack sends it; returns what the bot said back on response_url."""
    key = f"click-{len(stack.slack.responses)}-{user}"
    body = payloads.block_action(
        action_id, value, user, channel, message_ts, stack.slack.response_url(key)
    )
    response = await bot.interaction(body)
    assert response["status"] == 200
    return stack.slack.responses_by_key.get(key, [])


def replies(stack: Stack, alert: dict[str, Any], opening: str) -> list[dict[str, Any]]:
    return [m for m in stack.thread(alert) if m["text"].startswith(opening)]


async def actions(bot: Bot, scan_id: str | None = None) -> list[str]:
    return [row["action"] for row in await bot.runtime.store.audit_log(scan_id)]
