"""A real modbot process killed (SIGKILL) in the middle of a removal: after a restart the image
is removed exactly once, and `Removed:` and the poster's message are posted exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import slack_payloads as payloads
from tests.harness import FLAG_COLOR, GENERAL, POSTER, BotProcess, Stack, started_stack
from tests.removal_setup import ADMIN_TOKEN, removing_policy

DM = "D0POSTER"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    async with started_stack(tmp_path, monkeypatch) as stack:
        removing_policy(tmp_path, monkeypatch, "on_flag")
        yield stack


def _removed_replies(stack: Stack) -> list[str]:
    return [m["text"] for m in stack.slack.messages["C0ALERTS"] if m["text"].startswith("Removed:")]


async def _flagged_upload(stack: Stack, bot: BotProcess) -> str:
    file = stack.upload(FLAG_COLOR)
    assert await bot.event(payloads.message_event(GENERAL, POSTER, files=[file])) == 200
    return str(file["id"])


async def test_killed_after_the_delete_reached_slack_it_is_not_repeated(stack: Stack) -> None:
    """files.delete took effect but its answer never came back: the restarted bot finds the
    file gone (files.info), records the removal and says so once; no second delete call."""
    release = stack.slack.hold_next("files.delete")
    bot = BotProcess(stack)
    await bot.start()
    file_id = await _flagged_upload(stack, bot)
    await stack.slack.wait_for(lambda: file_id in stack.slack.deleted_files, timeout=30)
    await bot.kill()
    release.set()
    assert not _removed_replies(stack)
    restarted = BotProcess(stack)
    await restarted.start()
    await stack.slack.wait_for(lambda: bool(_removed_replies(stack)), timeout=30)
    assert len(stack.slack.calls_to("files.delete")) == 1
    assert await restarted.terminate() == 0
    assert len(_removed_replies(stack)) == 1
    assert ADMIN_TOKEN not in (bot.output + restarted.output).decode(errors="replace")


async def test_killed_before_the_delete_went_through_it_is_not_lost(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intent is recorded but Slack failed the call (5xx) when the process died: the
    restarted bot makes the call, and the image is removed once."""
    monkeypatch.setenv("MODBOT_RETRY_MAX_DELAY_SECONDS", "30")
    stack.slack.fail_next("files.delete", 503, count=1000)
    bot = BotProcess(stack)
    await bot.start()
    file_id = await _flagged_upload(stack, bot)
    await stack.slack.wait_for(lambda: bool(stack.slack.calls_to("files.delete")), timeout=30)
    await bot.kill()
    stack.slack.clear_failures("files.delete")
    assert file_id not in stack.slack.deleted_files
    restarted = BotProcess(stack)
    await restarted.start()
    await stack.slack.wait_for(lambda: bool(_removed_replies(stack)), timeout=30)
    assert file_id in stack.slack.deleted_files
    assert await restarted.terminate() == 0
    assert len(_removed_replies(stack)) == 1


async def test_killed_after_the_reply_it_is_neither_repeated_nor_is_the_poster_missed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed once `Removed:` is posted but before it was recorded (the alert update hangs),
    then again while the poster's conversation opens: one reply, one direct message."""
    monkeypatch.setenv("MODBOT_NOTIFY_POSTER", "true")
    stack.slack.add_user(POSTER)
    update = stack.slack.hold_next("chat.update")
    bot = BotProcess(stack)
    await bot.start()
    await _flagged_upload(stack, bot)
    await stack.slack.wait_for(lambda: bool(stack.slack.calls_to("chat.update")), timeout=30)
    assert len(_removed_replies(stack)) == 1
    await bot.kill()
    update.set()
    opening = stack.slack.hold_next("conversations.open")
    second = BotProcess(stack)
    await second.start()
    await stack.slack.wait_for(lambda: bool(stack.slack.calls_to("conversations.open")), 30)
    await second.kill()
    opening.set()
    assert DM not in stack.slack.messages
    third = BotProcess(stack)
    await third.start()
    await stack.slack.wait_for(lambda: bool(stack.slack.messages.get(DM)), timeout=30)
    assert await third.terminate() == 0
    assert len(_removed_replies(stack)) == 1
    assert len(stack.slack.messages[DM]) == 1
    assert len(stack.slack.calls_to("files.delete")) == 1


def _thread_texts(stack: Stack, opening: str) -> list[str]:
    return [m["text"] for m in stack.slack.messages["C0ALERTS"] if m["text"].startswith(opening)]


async def test_killed_mid_appeal_each_step_happens_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the appeal is posted in the thread (before that was recorded), and again
    after its verdict is posted: one `Appeal from`, one `Appeal verdict`, one verdict DM."""
    monkeypatch.setenv("MODBOT_NOTIFY_POSTER", "true")
    monkeypatch.setenv("MODBOT_REVIEWERS", "U0MOD1")
    stack.slack.add_user(POSTER)
    bot = BotProcess(stack)
    await bot.start()
    await _flagged_upload(stack, bot)
    await stack.slack.wait_for(lambda: bool(stack.slack.messages.get(DM)), timeout=30)
    [notice] = stack.slack.messages[DM]
    scan_id = next(
        e["value"]
        for b in notice["blocks"]
        for e in b.get("elements") or ()
        if e.get("action_id") == "modbot_appeal"
    )
    [alert] = [m for m in stack.slack.messages["C0ALERTS"] if not m.get("thread_ts")]
    updates = len(stack.slack.calls_to("chat.update"))
    held = stack.slack.hold_next("chat.update")
    values = {"reason": {"reason": {"type": "plain_text_input", "value": "it is a painting"}}}
    body = payloads.view_submission("modbot_appeal_submit", scan_id, POSTER, values)
    assert await bot.interaction(body) == 200
    await stack.slack.wait_for(
        lambda: len(stack.slack.calls_to("chat.update")) > updates, timeout=30
    )
    assert len(_thread_texts(stack, "Appeal from")) == 1
    await bot.kill()
    held.set()

    second = BotProcess(stack)
    await second.start()
    await stack.slack.wait_for(
        lambda: len(stack.slack.calls_to("chat.update")) > updates + 1, timeout=30
    )
    updates = len(stack.slack.calls_to("chat.update"))
    held = stack.slack.hold_next("chat.update")
    vote = payloads.block_action(
        "modbot_appeal_overturn",
        scan_id,
        "U0MOD1",
        "C0ALERTS",
        alert["ts"],
        stack.slack.response_url("vote"),
    )
    assert await second.interaction(vote) == 200
    await stack.slack.wait_for(
        lambda: len(stack.slack.calls_to("chat.update")) > updates, timeout=30
    )
    assert len(_thread_texts(stack, "Appeal verdict: overturned")) == 1
    await second.kill()
    held.set()

    third = BotProcess(stack)
    await third.start()
    await stack.slack.wait_for(
        lambda: any(m["text"].startswith("Appeal verdict") for m in stack.slack.messages[DM]),
        timeout=30,
    )
    assert await third.terminate() == 0
    assert len(_thread_texts(stack, "Appeal from")) == 1
    assert len(_thread_texts(stack, "Appeal verdict")) == 1
    assert [m["text"][:20] for m in stack.slack.messages[DM]][1:] == ["Appeal verdict: over"]
