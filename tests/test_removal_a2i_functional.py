"""Removal and appeal when the review backend is A2I: the workers' verdict removes the image,
and the appeal is still decided by Slack votes of allowed reviewers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import slack_payloads as payloads
from tests.harness import GENERAL, POSTER, REVIEW_COLOR, Stack, enable_a2i, http_bot, started_stack
from tests.removal_setup import ADMIN_TOKEN, removing_policy, replies


@pytest.fixture
async def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MODBOT_REVIEWERS", "U0MOD1")
    monkeypatch.setenv("MODBOT_NOTIFY_POSTER", "true")
    async with started_stack(tmp_path, monkeypatch, moto_url=moto_url) as stack:
        stack.slack.add_user(POSTER)
        yield stack


async def test_an_a2i_violation_verdict_removes_and_its_appeal_is_voted_in_slack(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_url: str
) -> None:
    """Workers confirm: files.delete, `Removed:`; the poster appeals; an allowed reviewer
    (none voted on the original: A2I workers decided it) overturns in the thread."""
    enable_a2i(stack, monkeypatch, moto_url, poll_seconds=0.2, events=False)
    removing_policy(tmp_path, monkeypatch, "on_violation")
    async with http_bot(stack) as bot:
        file = stack.upload(REVIEW_COLOR)
        await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
        await bot.idle()
        [alert] = stack.alerts()
        await stack.slack.wait_for(lambda: len(stack.aws.loops) == 1)
        [name] = stack.aws.loops
        await stack.aws.complete_loop(name, [["Exposed Female Nipple"]])
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Removed:")), timeout=20)
        assert file["id"] in stack.slack.deleted_files
        [deleted] = stack.slack.calls_to("files.delete")
        assert deleted.authorization == f"Bearer {ADMIN_TOKEN}"
        await stack.slack.wait_for(lambda: bool(stack.slack.messages.get("D0POSTER")))
        scan_id = next(
            e["value"]
            for b in stack.slack.messages["D0POSTER"][0]["blocks"]
            for e in b.get("elements") or ()
            if e.get("action_id") == "modbot_appeal"
        )
        values = {"reason": {"reason": {"type": "plain_text_input", "value": "a museum piece"}}}
        body = payloads.view_submission("modbot_appeal_submit", scan_id, POSTER, values)
        assert (await bot.interaction(body))["status"] == 200
        await stack.slack.wait_for(lambda: bool(replies(stack, alert, "Appeal from")))
        click = payloads.block_action(
            "modbot_appeal_overturn",
            scan_id,
            "U0MOD1",
            "C0ALERTS",
            alert["ts"],
            stack.slack.response_url("vote"),
        )
        await bot.interaction(click)
        await stack.slack.wait_for(
            lambda: bool(replies(stack, alert, "Appeal verdict: overturned"))
        )
