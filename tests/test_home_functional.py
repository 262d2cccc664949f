"""The App Home tab: `app_home_opened` publishes, for a reviewer, the open reviews with links to
their alerts, and for anyone else none to vote on; the day's counts, the queue, the policy and
the channels in shadow mode; in two database queries however many reviews are open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    ALERTS,
    CLEAN_COLOR,
    FLAG_COLOR,
    GENERAL,
    POSTER,
    REPO_ROOT,
    REVIEW_COLOR,
    Bot,
    Stack,
    started_stack,
    until,
)

REVIEWER = "U0MOD1"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MODBOT_REVIEWERS", REVIEWER)
    monkeypatch.setenv("MODBOT_POLICY_FILE", str(REPO_ROOT / "tests/data/policies/example.toml"))
    async with started_stack(tmp_path, monkeypatch) as stack:
        yield stack


def _text(view: dict[str, Any]) -> str:
    """Every piece of text in the view's blocks (sections, fields, headers, context)."""
    parts: list[str] = []
    for block in view["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [field["text"] for field in block.get("fields", [])]
        parts += [element["text"] for element in block.get("elements", [])]
    return "\n".join(parts)


def _scan_id(alert: dict[str, Any]) -> str:
    [actions] = [b for b in alert["blocks"] if b["type"] == "actions"]
    return str(actions["elements"][0]["value"])


def _alert_link(alert: dict[str, Any]) -> str:
    """The link Slack's chat.getPermalink would give for the alert (auth.test's workspace URL)."""
    return f"https://fake.slack.com/archives/{ALERTS}/p{alert['ts'].replace('.', '')}"


@contextmanager
def _counted_queries(bot: Bot) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = bot.runtime.store.engine.sync_engine

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _open_home(stack: Stack, bot: Bot, user: str) -> dict[str, Any]:
    published = len(stack.slack.views_published)
    reply = await bot.event(payloads.app_home_opened_event(user))
    assert reply["status"] == 200
    await stack.slack.wait_for(lambda: len(stack.slack.views_published) > published)
    return stack.slack.home_views[user]


async def test_reviewer_and_non_reviewer_home_tabs(stack: Stack, bot: Bot) -> None:
    """Two open reviews (links to their alerts), a flag and a clean scan: the reviewer sees both
    reviews, the others see none to vote on; both see the counts, the queue, the policy and the
    shadow channel. After a verdict the reviewer's tab lists one review and one verdict."""
    for color, size in ((REVIEW_COLOR, (320, 240)), (REVIEW_COLOR, (300, 200)), (FLAG_COLOR, None)):
        data = make_image(color, size or (320, 240), "PNG")
        file = stack.upload(color, data=data)
        await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    clean = stack.upload(CLEAN_COLOR)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[clean]))
    await bot.idle()
    reviews = [a for a in stack.alerts() if any(b["type"] == "actions" for b in a["blocks"])]
    assert len(reviews) == 2

    with _counted_queries(bot) as statements:
        view = await _open_home(stack, bot, REVIEWER)
    assert len(statements) == 2  # the listed reviews with their alerts, and every count
    assert view["type"] == "home"
    text = _text(view)
    assert "*Open reviews you may vote on* (2)" in text
    for alert in reviews:
        assert f"<{_alert_link(alert)}|Needs review {_scan_id(alert)[:8]}>" in text
    assert "Exposed Female Nipple" in text
    for field in ("*Scans*\n4", "*Alerts*\n3", "*Verdicts*\n0", "*Removals*\n0", "*Queue now*\n0"):
        assert field in text
    assert "*Policy in force* (" in text
    assert "example.toml" in text
    assert "<#C0123ABCD>: *shadow*" in text

    other = _text(await _open_home(stack, bot, POSTER))
    assert "You are not one of the reviewers (`MODBOT_REVIEWERS`)" in other
    assert "2 reviews open" in other
    assert "fake.slack.com/archives" not in other
    assert "*Scans*\n4" in other

    decided = reviews[0]
    body = payloads.block_action(
        "modbot_review_violation",
        _scan_id(decided),
        REVIEWER,
        ALERTS,
        decided["ts"],
        stack.slack.response_url("vote"),
    )
    assert (await bot.interaction(body))["status"] == 200

    async def verdict_posted() -> bool:
        return any(m["text"].startswith("Verdict:") for m in stack.thread(decided))

    await until(verdict_posted, "the verdict reply")
    again = _text(await _open_home(stack, bot, REVIEWER))
    assert "*Open reviews you may vote on* (1)" in again
    assert _alert_link(decided) not in again
    assert _alert_link(reviews[1]) in again
    assert "*Verdicts*\n1" in again


async def test_messages_tab_publishes_nothing(stack: Stack, bot: Bot) -> None:
    """app_home_opened for the Messages tab is acked and publishes no view."""
    reply = await bot.event(payloads.app_home_opened_event(REVIEWER, tab="messages"))
    assert reply["status"] == 200
    assert stack.slack.views_published == []
