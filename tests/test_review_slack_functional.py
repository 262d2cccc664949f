"""Human review inside Slack: buttons, quorum, allow-list, reminders, re-posts, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.database.reviews import ReviewStore
from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
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
OK = "modbot_review_ok"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MODBOT_REVIEW_QUORUM", "2")
    monkeypatch.setenv("MODBOT_REVIEWERS", "U0MOD1,S0MODS")
    async with started_stack(tmp_path, monkeypatch) as stack:
        stack.slack.add_usergroup("S0MODS", ["U0MOD2", "U0MOD3"])
        yield stack


async def _alert(stack: Stack, bot: Bot, data: bytes | None = None) -> dict[str, Any]:
    file = stack.upload(REVIEW_COLOR, data=data)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    return stack.alerts()[-1]


def _scan_id(alert: dict[str, Any]) -> str:
    [actions] = [b for b in alert["blocks"] if b["type"] == "actions"]
    values = {e["action_id"]: e["value"] for e in actions["elements"]}
    assert set(values) == {VIOLATION, OK}
    return values[VIOLATION]


async def _click(
    stack: Stack, bot: Bot, alert: dict[str, Any], action: str, user: str
) -> list[dict[str, Any]]:
    key = f"click-{len(stack.slack.responses)}"
    body = payloads.block_action(
        action, _scan_id(alert), user, ALERTS, alert["ts"], stack.slack.response_url(key)
    )
    response = await bot.interaction(body)
    assert response["status"] == 200
    return stack.slack.responses_by_key.get(key, [])


async def _votes(bot: Bot) -> list[tuple[str | None, bool]]:
    rows = await bot.runtime.store.audit_log()
    return [(row["actor"], row["detail"]["violation"]) for row in rows if row["action"] == "vote"]


async def test_quorum_of_two_allowed_reviewers_gives_the_verdict(stack: Stack, bot: Bot) -> None:
    """A direct reviewer and a user-group member agree: Verdict in the thread, alert updated."""
    alert = await _alert(stack, bot)
    assert any(
        m["text"].startswith(":mag: Human review started: 2 agreeing votes")
        for m in stack.thread(alert)
    )
    [first] = await _click(stack, bot, alert, VIOLATION, "U0MOD1")
    assert "is recorded" in first["text"]
    await _click(stack, bot, alert, VIOLATION, "U0MOD3")
    await stack.slack.wait_for(
        lambda: any(m["text"].startswith("Verdict:") for m in stack.thread(alert))
    )
    verdict = next(m for m in stack.thread(alert) if m["text"].startswith("Verdict:"))
    assert verdict["text"].startswith("Verdict: violation (Exposed Female Nipple)")
    assert "<@U0MOD1>" in verdict["text"]
    assert "<@U0MOD3>" in verdict["text"]
    await stack.slack.wait_for(lambda: "verdict: violation" in stack.alerts()[0]["text"])
    updated = stack.alerts()[0]
    assert all(block["type"] != "actions" for block in updated["blocks"])  # buttons gone
    assert "Verdict: violation" in str(updated["blocks"][-1])


async def test_third_party_click_is_refused_and_not_recorded(stack: Stack, bot: Bot) -> None:
    """Someone outside MODBOT_REVIEWERS gets an ephemeral refusal and no vote is stored."""
    alert = await _alert(stack, bot)
    [refusal] = await _click(stack, bot, alert, VIOLATION, "U0STRANGER")
    assert refusal["response_type"] == "ephemeral"
    assert "not recorded" in refusal["text"]
    assert await _votes(bot) == []


async def test_vote_changed_before_quorum_counts_once(stack: Stack, bot: Bot) -> None:
    """A reviewer who switches sides is counted once, on the side they chose last."""
    alert = await _alert(stack, bot)
    await _click(stack, bot, alert, VIOLATION, "U0MOD1")
    await _click(stack, bot, alert, OK, "U0MOD1")
    await _click(stack, bot, alert, VIOLATION, "U0MOD2")
    assert not any(m["text"].startswith("Verdict:") for m in stack.thread(alert))
    await _click(stack, bot, alert, OK, "U0MOD3")
    await stack.slack.wait_for(
        lambda: any(m["text"].startswith("Verdict:") for m in stack.thread(alert))
    )
    verdict = next(m for m in stack.thread(alert) if m["text"].startswith("Verdict:"))
    assert verdict["text"].startswith("Verdict: no violation")
    assert "<@U0MOD1>" in verdict["text"]
    assert "<@U0MOD3>" in verdict["text"]
    assert "<@U0MOD2>" not in verdict["text"]


async def test_clicks_after_the_verdict_are_told_it_is_decided(stack: Stack, bot: Bot) -> None:
    """Once decided, another click gets an ephemeral 'already decided' and changes nothing."""
    alert = await _alert(stack, bot)
    await _click(stack, bot, alert, OK, "U0MOD1")
    await _click(stack, bot, alert, OK, "U0MOD2")
    [late] = await _click(stack, bot, alert, VIOLATION, "U0MOD3")
    assert "already decided" in late["text"]
    assert [vote for vote in await _votes(bot) if vote[0] == "U0MOD3"] == []


async def test_votes_survive_a_restart(stack: Stack, bot: Bot) -> None:
    """One vote, bot restarted, a second vote: the quorum counts both."""
    alert = await _alert(stack, bot)
    await _click(stack, bot, alert, VIOLATION, "U0MOD1")
    await bot.runtime.pipeline.idle()
    async with http_bot(stack) as second:
        await _click(stack, second, alert, VIOLATION, "U0MOD2")
        await stack.slack.wait_for(
            lambda: any(m["text"].startswith("Verdict: violation") for m in stack.thread(alert))
        )


async def test_open_review_gets_a_reminder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A review left open past MODBOT_REVIEW_REMIND_MINUTES gets a reminder in its thread."""
    monkeypatch.setenv("MODBOT_REVIEW_REMIND_MINUTES", "0.005")  # 0.3 s
    async with started_stack(tmp_path, monkeypatch) as stack, http_bot(stack) as bot:
        alert = await _alert(stack, bot)
        await stack.slack.wait_for(
            lambda: any(m["text"].startswith(":alarm_clock: Reminder") for m in stack.thread(alert))
        )


async def test_repost_follows_the_earlier_human_verdict(stack: Stack, bot: Bot) -> None:
    """Same bytes again: open review -> linked, no second review; after a violation verdict ->
    alerted as confirmed with no buttons; nothing new is sent to Rekognition."""
    data = make_image(REVIEW_COLOR, (300, 300), "PNG")
    first = await _alert(stack, bot, data)
    second = await _alert(stack, bot, data)
    assert "already open" in str(second["blocks"])
    assert all(block["type"] != "actions" for block in second["blocks"])
    assert [m for m in stack.thread(second) if m["text"].startswith(":mag:")] == []
    await _click(stack, bot, first, VIOLATION, "U0MOD1")
    await _click(stack, bot, first, VIOLATION, "U0MOD2")
    await stack.slack.wait_for(
        lambda: any(m["text"].startswith("Verdict:") for m in stack.thread(first))
    )
    third = await _alert(stack, bot, data)
    assert third["text"].startswith("Flagged")
    assert "Confirmed violation earlier" in str(third["blocks"])
    assert all(block["type"] != "actions" for block in third["blocks"])
    assert stack.rekognition_calls() == 1


async def test_repost_after_no_violation_is_allowed_silently(stack: Stack, bot: Bot) -> None:
    """Same bytes after a 'no violation' verdict: no alert at all."""
    data = make_image(REVIEW_COLOR, (300, 300), "PNG")
    first = await _alert(stack, bot, data)
    await _click(stack, bot, first, OK, "U0MOD1")
    await _click(stack, bot, first, OK, "U0MOD2")
    await stack.slack.wait_for(
        lambda: any(m["text"].startswith("Verdict:") for m in stack.thread(first))
    )
    file = stack.upload(REVIEW_COLOR, data=data, name="again.png")
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await bot.idle()
    assert len(stack.alerts()) == 1


def _verdicts(stack: Stack, alert: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in stack.thread(alert) if m["text"].startswith("Verdict:")]


async def test_vote_racing_a_deciding_vote_never_gives_a_stale_verdict(
    stack: Stack, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vote changed while another vote decides: the verdict reflects the votes at decision
    time (tally and decision are one transaction), never votes read a few awaits earlier."""
    alert = await _alert(stack, bot)
    scan_id = _scan_id(alert)  # read now: the verdict takes the buttons off the alert
    await _click(stack, bot, alert, VIOLATION, "U0MOD1")
    store = bot.runtime.store
    reached, release = asyncio.Event(), asyncio.Event()
    alert_message = store.alert_message

    async def paused(scan_id: str) -> dict[str, Any] | None:
        reached.set()  # the deciding vote (or the reporter) is between its reads and writes
        await release.wait()
        return await alert_message(scan_id)

    monkeypatch.setattr(store, "alert_message", paused)
    deciding = asyncio.create_task(_click(stack, bot, alert, VIOLATION, "U0MOD2"))
    async with asyncio.timeout(10):
        await asyncio.wait(
            [deciding, asyncio.create_task(reached.wait())], return_when=asyncio.FIRST_COMPLETED
        )
    await _click(stack, bot, alert, OK, "U0MOD1")  # U0MOD1 changes their mind meanwhile
    release.set()
    await asyncio.wait_for(deciding, 10)
    reviews = ReviewStore(store)
    review = await reviews.get(scan_id)
    assert review is not None
    log = await store.audit_log(scan_id)
    if review.verdict is None:  # the change came first: no quorum, nothing decided
        return
    decided_at = next(i for i, row in enumerate(log) if row["action"] == "verdict")
    last: dict[str, bool] = {}
    for row in log[:decided_at]:
        if row["action"] == "vote":
            last[row["actor"]] = row["detail"]["violation"]
    assert all(last[user] is review.verdict.violation for user in review.verdict.reviewers)
    assert len(review.verdict.reviewers) >= 2
    assert [row for row in log[decided_at:] if row["action"] == "vote"] == []


async def test_vote_between_alert_post_and_review_storage_counts(stack: Stack, bot: Bot) -> None:
    """A click on the fresh alert before the review is stored is recorded (not 'already
    decided') and counts towards the quorum."""
    release = stack.slack.hold_next("chat.postMessage")  # the alert: posted, not yet answered
    file = stack.upload(REVIEW_COLOR)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    await stack.slack.wait_for(lambda: len(stack.alerts()) == 1)
    [alert] = stack.alerts()
    [early] = await _click(stack, bot, alert, VIOLATION, "U0MOD1")
    assert "is recorded" in early["text"]
    release.set()
    await bot.idle()
    assert any(m["text"].startswith(":mag: Human review started") for m in stack.thread(alert))
    await _click(stack, bot, alert, VIOLATION, "U0MOD2")
    await stack.slack.wait_for(lambda: bool(_verdicts(stack, alert)))
    [verdict] = _verdicts(stack, alert)
    assert verdict["text"].startswith("Verdict: violation")
    assert "<@U0MOD1>" in verdict["text"]
    assert "<@U0MOD2>" in verdict["text"]


async def test_votes_of_a_reviewer_removed_from_the_list_no_longer_count(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """U0MOD1 votes, is then removed from MODBOT_REVIEWERS (restart): their vote is not counted
    at tally time, so the verdict needs two reviewers who are still allowed."""
    async with http_bot(stack) as bot:
        alert = await _alert(stack, bot)
        await _click(stack, bot, alert, VIOLATION, "U0MOD1")
    monkeypatch.setenv("MODBOT_REVIEWERS", "S0MODS")
    async with http_bot(stack) as bot:
        [second] = await _click(stack, bot, alert, VIOLATION, "U0MOD2")
        assert "is recorded" in second["text"]
        assert _verdicts(stack, alert) == []
        await _click(stack, bot, alert, VIOLATION, "U0MOD3")
        await stack.slack.wait_for(lambda: bool(_verdicts(stack, alert)))
    [verdict] = _verdicts(stack, alert)
    assert "<@U0MOD2>" in verdict["text"]
    assert "<@U0MOD3>" in verdict["text"]
    assert "<@U0MOD1>" not in verdict["text"]


async def test_verdict_reply_posted_but_not_recorded_is_not_posted_twice(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict reply reaches Slack but modbot never learns it (as in a crash between
    posting and marking it reported): the retry finds it in the thread and posts no second."""
    monkeypatch.setenv("MODBOT_RETRY_MAX_DELAY_SECONDS", "0.05")
    async with http_bot(stack) as bot:
        alert = await _alert(stack, bot)
        await _click(stack, bot, alert, VIOLATION, "U0MOD1")
        stack.slack.fail_after_handling("chat.postMessage")  # the verdict reply
        await _click(stack, bot, alert, VIOLATION, "U0MOD2")
        reviews = ReviewStore(bot.runtime.store)

        async def reported() -> bool:
            return not await reviews.unreported()

        await until(reported, "the verdict to be marked reported")
    assert len(_verdicts(stack, alert)) == 1
    assert stack.slack.calls_to("conversations.replies")
