"""Telling the poster and hearing the appeal (PRODUCT §10) against the fake Slack: the direct
message, the modal and its validation, the appeal review, both outcomes, one appeal each."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import POSTER, REVIEW_COLOR, Bot, Stack, http_bot, started_stack, until
from tests.removal_setup import (
    REMOVE,
    VIOLATION,
    actions,
    button_value,
    click,
    removing_policy,
    replies,
    upload_alert,
)

MOD1, MOD2, MOD3 = "U0MOD1", "U0MOD2", "U0MOD3"
APPEAL = "modbot_appeal"
UPHOLD = "modbot_appeal_uphold"
OVERTURN = "modbot_appeal_overturn"
DM = "D0POSTER"  # the fake's conversation between the bot and U0POSTER


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MODBOT_REVIEWERS", f"{MOD1},{MOD2},{MOD3}")
    monkeypatch.setenv("MODBOT_NOTIFY_POSTER", "true")
    monkeypatch.setenv("MODBOT_RETRY_MAX_DELAY_SECONDS", "0.2")
    async with started_stack(tmp_path, monkeypatch) as stack:
        stack.slack.add_user(POSTER)
        removing_policy(tmp_path, monkeypatch, "on_violation")
        yield stack


@pytest.fixture
async def bot(stack: Stack) -> AsyncIterator[Bot]:
    async with http_bot(stack) as bot:
        yield bot


async def _removed(stack: Stack, bot: Bot, data: bytes | None = None) -> tuple[dict[str, Any], str]:
    """An upload confirmed as a violation by MOD1 and removed; returns (alert, scan id)."""
    _, alert = await upload_alert(stack, bot, REVIEW_COLOR, data=data)
    scan_id = button_value(alert, REMOVE)
    await click(stack, bot, VIOLATION, scan_id, MOD1, message_ts=alert["ts"])
    await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")))
    return alert, scan_id


async def _submit(bot: Bot, scan_id: str, user: str, reason: str) -> dict[str, Any]:
    values = {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
    body = payloads.view_submission("modbot_appeal_submit", scan_id, user, values)
    response = await bot.interaction(body)
    assert response["status"] == 200
    return json.loads(response["body"]) if response["body"] else {}


async def test_the_poster_is_told_and_can_appeal_once(stack: Stack, bot: Bot) -> None:
    """The DM names the channel and file with an Appeal button; the modal opens for the poster
    only; empty and over-long reasons are refused in the modal; one appeal per removal."""
    alert, scan_id = await _removed(stack, bot)
    await stack.slack.wait_for(lambda: bool(stack.slack.messages.get(DM)))
    [notice] = stack.slack.messages[DM]
    assert "photo.png" in notice["text"]
    assert "<#C0GENERAL>" in notice["text"]
    assert "Exposed Female Nipple" in notice["text"]
    assert button_value(notice, APPEAL) == scan_id

    async def notified() -> bool:
        return "poster_notified" in await actions(bot, scan_id)

    await until(notified, "the direct message recorded as sent")

    [other] = await click(stack, bot, APPEAL, scan_id, MOD2, channel=DM, message_ts=notice["ts"])
    assert "Only the person who posted" in other["text"]
    assert not stack.slack.views
    await click(stack, bot, APPEAL, scan_id, POSTER, channel=DM, message_ts=notice["ts"])
    [opened] = stack.slack.views
    assert opened["view"]["callback_id"] == "modbot_appeal_submit"
    assert opened["view"]["private_metadata"] == scan_id

    empty = await _submit(bot, scan_id, POSTER, "   ")
    assert empty["response_action"] == "errors"
    assert "reason" in empty["errors"]
    too_long = await _submit(bot, scan_id, POSTER, "x" * 3000)
    assert too_long["response_action"] == "errors"
    assert "3,000" in too_long["errors"]["reason"]
    stranger = await _submit(bot, scan_id, MOD2, "not mine but still")
    assert "Only the person who posted" in stranger["errors"]["reason"]
    assert "appeal" not in await actions(bot, scan_id)

    assert await _submit(bot, scan_id, POSTER, "It is a <b>statue</b> in a museum.") == {}
    await stack.slack.wait_for(lambda: bool(replies(stack, alert, f"Appeal from <@{POSTER}>:")))
    [appeal] = replies(stack, alert, f"Appeal from <@{POSTER}>:")
    assert "statue" in appeal["text"]
    assert "<b>" not in appeal["text"]  # escaped
    assert button_value(appeal, OVERTURN) == scan_id

    [again] = await click(stack, bot, APPEAL, scan_id, POSTER, channel=DM, message_ts=notice["ts"])
    assert "already been appealed" in again["text"]
    second = await _submit(bot, scan_id, POSTER, "once more")
    assert "already been appealed" in second["errors"]["reason"]
    assert (await actions(bot, scan_id)).count("appeal") == 1
    assert len(replies(stack, alert, "Appeal from")) == 1


async def test_an_overturned_appeal_is_told_and_forgets_the_violation(
    stack: Stack, bot: Bot
) -> None:
    """The original decider cannot vote; another reviewer overturns: thread, DM, alert, and a
    re-post of the same bytes is no longer a confirmed violation (reviewed afresh, not removed)."""
    data = make_image(REVIEW_COLOR, (330, 240), "PNG")
    alert, scan_id = await _removed(stack, bot, data)
    assert await _submit(bot, scan_id, POSTER, "It is art.") == {}
    await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Appeal from")))
    [refused] = await click(stack, bot, OVERTURN, scan_id, MOD1, message_ts=alert["ts"])
    assert "did not take the original decision" in refused["text"]
    [own] = await click(stack, bot, OVERTURN, scan_id, POSTER, message_ts=alert["ts"])
    assert "not recorded" in own["text"]
    [stranger] = await click(stack, bot, OVERTURN, scan_id, "U0NOBODY", message_ts=alert["ts"])
    assert "not recorded" in stranger["text"]
    assert "appeal_vote" not in await actions(bot, scan_id)
    await click(stack, bot, OVERTURN, scan_id, MOD2, message_ts=alert["ts"])
    await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Appeal verdict: overturned")))
    [outcome] = replies(stack, alert, "Appeal verdict: overturned")
    assert f"<@{MOD2}>" in outcome["text"]
    await stack.slack.wait_for(
        lambda: any(
            m["text"].startswith("Appeal verdict: overturned") for m in stack.slack.messages[DM]
        )
    )
    await stack.slack.wait_for(
        lambda: "Appeal verdict: overturned" in str(stack.alerts()[0]["blocks"])
    )
    [late] = await click(stack, bot, UPHOLD, scan_id, MOD3, message_ts=alert["ts"])
    assert "already decided" in late["text"]
    assert "appeal_verdict" in await actions(bot, scan_id)

    again, repost = await upload_alert(stack, bot, REVIEW_COLOR, name="again.png", data=data)
    assert VIOLATION in str(repost["blocks"])  # a fresh review, not a confirmed violation
    assert again["id"] not in stack.slack.deleted_files


async def test_an_upheld_appeal_is_told_and_keeps_the_violation(stack: Stack, bot: Bot) -> None:
    """Upheld: thread and DM say so; a re-post is still removed as a confirmed violation."""
    data = make_image(REVIEW_COLOR, (340, 240), "PNG")
    alert, scan_id = await _removed(stack, bot, data)
    assert await _submit(bot, scan_id, POSTER, "Please look again.") == {}
    await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Appeal from")))
    await click(stack, bot, UPHOLD, scan_id, MOD3, message_ts=alert["ts"])
    await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Appeal verdict: upheld")))
    await stack.slack.wait_for(
        lambda: any(
            m["text"].startswith("Appeal verdict: upheld") for m in stack.slack.messages[DM]
        )
    )
    again, repost = await upload_alert(stack, bot, REVIEW_COLOR, name="again.png", data=data)
    await stack.slack.wait_for(lambda: again["id"] in stack.slack.deleted_files)
    assert VIOLATION not in str(repost["blocks"])


async def test_a_poster_who_left_is_noted_in_the_thread(stack: Stack, bot: Bot) -> None:
    """conversations.open refuses (user_disabled): one note in the thread, nothing else breaks."""
    stack.slack.users[POSTER]["deleted"] = True
    alert, scan_id = await _removed(stack, bot)
    await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Could not tell the poster")))
    [note] = replies(stack, alert, "Could not tell the poster")
    assert "deactivated" in note["text"]
    assert DM not in stack.slack.messages

    async def not_notified() -> bool:
        return "poster_not_notified" in await actions(bot, scan_id)

    await until(not_notified, "the failed direct message recorded")
