"""Odd and broken Slack requests (tests/data/hostile/slack_payloads/) against the running bot.

Each request gets a sensible status — 400 for a body that cannot be read, 401 for a bad
signature, 200 for anything well-formed, however odd — nothing is scanned or posted because of
it, and an ordinary upload right after still produces its alert.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    SIGNING_SECRET,
    Bot,
    Stack,
)

CORPUS_DIR = Path(__file__).parent / "data" / "hostile" / "slack_payloads"
CASES = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(CORPUS_DIR.glob("*.json"))
}
_event_ids = itertools.count(1)


async def post_raw(
    bot: Bot, raw: str, *, content_type: str = "application/json", signed: bool = True
) -> tuple[int, str]:
    """POST `raw` to /slack/events as Slack would, signed with the right (or a wrong) secret."""
    secret = SIGNING_SECRET if signed else "not-the-signing-secret"
    headers = {**payloads.signed_headers(secret, raw), "Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as session,
        session.post(bot.url, data=raw.encode(), headers=headers) as response,  # type: ignore[attr-defined]
    ):
        return response.status, await response.text()


def _raw_body(case: dict[str, Any]) -> str:
    if "raw" in case:
        return str(case["raw"])
    body = dict(case["body"])
    if "event_id" in body:  # unique per send, so no case is mistaken for a redelivery
        body["event_id"] = f"Ev0HOSTILE{next(_event_ids):05d}"
    return json.dumps(body)


async def _next_upload_alerts(stack: Stack, bot: Bot) -> None:
    """An ordinary review-band upload right after still produces its alert."""
    before = len(stack.alerts())
    file = stack.upload(REVIEW_COLOR, name="after.png", size=(250, 190))
    response = await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))
    assert response["status"] == 200
    await bot.idle()
    after = stack.alerts()
    assert len(after) == before + 1
    assert after[-1]["text"].startswith("Needs review: Exposed Female Nipple 72.4%")


@pytest.mark.parametrize("name", sorted(CASES))
async def test_odd_payload_gets_a_sensible_status_and_changes_nothing(
    name: str, stack: Stack, bot: Bot
) -> None:
    """Per corpus file: the documented status, no scan, no fetch, no message; then an ordinary
    upload still alerts."""
    case = CASES[name]
    status, text = await post_raw(
        bot, _raw_body(case), content_type=case["content_type"], signed=case["signed"]
    )
    assert status == case["expect_status"], text
    if "expect_body_contains" in case:
        assert case["expect_body_contains"] in text
    await bot.idle()
    assert stack.slack.messages == {}
    assert stack.slack.responses == []
    assert stack.slack.file_requests == []
    assert stack.slack.calls_to("files.info") == []
    assert stack.target.hits == []
    assert stack.web.hits == []
    assert stack.rekognition_calls() == 0
    await _next_upload_alerts(stack, bot)


async def test_huge_message_with_thousands_of_links_fetches_only_ten(
    stack: Stack, bot: Bot
) -> None:
    """A 40,000-character message carrying 2,000 links is acked with 200, at most 10 links are
    fetched (web pages: no note), and the bot carries on."""
    links = [f"<{stack.web.url}/page{n}|page {n}>" for n in range(2000)]
    text = " ".join(links)
    text = (text + " " + "x" * 40_000)[:40_000]
    for n in range(2000):
        stack.web.html(f"/page{n}")
    response = await bot.event(payloads.message_event(GENERAL, POSTER, text=text))
    assert response["status"] == 200
    await bot.idle()
    assert sorted(hit.path for hit in stack.web.hits) == sorted(f"/page{n}" for n in range(10))
    assert stack.alerts() == []
    assert stack.rekognition_calls() == 0
    await _next_upload_alerts(stack, bot)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("<http://" * 5_000, id="unclosed-link-openers"),
        pytest.param("<http://x|" * 4_000, id="unclosed-labels"),
    ],
)
async def test_pathological_text_is_acked_promptly(text: str, stack: Stack, bot: Bot) -> None:
    """40,000 characters of unclosed `<http://` markup: acked in well under Slack's 3 s
    deadline (link extraction must be linear), nothing fetched, and the bot carries on."""
    assert len(text) == 40_000
    started = time.monotonic()
    response = await bot.event(payloads.message_event(GENERAL, POSTER, text=text))
    elapsed = time.monotonic() - started
    assert response["status"] == 200
    assert elapsed < 0.5, f"ack took {elapsed:.2f} s"
    await bot.idle()
    assert stack.web.hits == []
    assert stack.alerts() == []
    await _next_upload_alerts(stack, bot)


async def test_moderate_with_huge_text_is_answered_promptly(stack: Stack, bot: Bot) -> None:
    """/moderate followed by 40,000 characters of unclosed markup: a prompt usage answer."""
    started = time.monotonic()
    response = await bot.command("<http://" * 5_000, key="huge")
    elapsed = time.monotonic() - started
    assert response["status"] == 200
    assert "not a link I can scan" in response["body"]
    assert elapsed < 0.5, f"ack took {elapsed:.2f} s"
    await _next_upload_alerts(stack, bot)


async def test_file_shared_for_an_unknown_file_is_reported(stack: Stack, bot: Bot) -> None:
    """file_shared naming a file Slack does not know: a visible Could not scan with Slack's
    error, not a crash or a silent drop."""
    body = payloads.file_shared_event("F0MISSING", GENERAL, POSTER)
    response = await bot.event(body)
    assert response["status"] == 200
    await bot.idle()
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan")
    assert "Slack would not describe the file (file_not_found)" in note["text"]
    await _next_upload_alerts(stack, bot)


async def test_message_with_twenty_five_image_files_scans_twenty(stack: Stack, bot: Bot) -> None:
    """More files than MAX_FILES_PER_MESSAGE (20) in one message: the first 20 are scanned."""
    files = [
        stack.upload(REVIEW_COLOR, name=f"f{n}.png", data=make_image(REVIEW_COLOR, (90 + n, 90)))
        for n in range(25)
    ]
    response = await bot.event(payloads.message_event(GENERAL, POSTER, files=files))
    assert response["status"] == 200
    await bot.idle()
    assert len(stack.slack.file_requests) == 20
    assert len(stack.alerts()) == 20
    await _next_upload_alerts(stack, bot)
