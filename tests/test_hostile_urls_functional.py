"""The SSRF corpus (tests/data/hostile/ssrf_urls.json) through the running bot.

Every hostile link is sent twice, as `/moderate <url>` and as a link in a channel message. Each
must end in a visible "Could not scan" naming the reason, the internal target on 127.0.0.1 must
see no request at all, and the bot must still scan the next, ordinary link.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    FLAG_COLOR,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    Bot,
    Stack,
    started_stack,
)

CORPUS = json.loads(
    (Path(__file__).parent / "data" / "hostile" / "ssrf_urls.json").read_text(encoding="utf-8")
)
BLOCKED: list[dict[str, Any]] = CORPUS["blocked"]
NOT_LINKS: list[dict[str, Any]] = CORPUS["not_links"]


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    async with started_stack(tmp_path, monkeypatch) as stack:
        # What an attacker is after: an internal image (flag-coloured, so a scan would show).
        stack.target.add("/secret.png", make_image(FLAG_COLOR, (200, 200), "PNG"))
        yield stack


def _fill(template: str, stack: Stack) -> str:
    return template.replace("{target_port}", str(stack.target.port)).replace("{web}", stack.web.url)


def _posted_url(case: dict[str, Any], stack: Stack) -> str:
    """The link as a user posts it; a redirect case posts the allowed host's /hop."""
    if "redirect_to" in case:
        stack.web.redirect("/hop", _fill(case["redirect_to"], stack))
        return f"{stack.web.url}/hop"
    return _fill(case["url"], stack)


async def _next_scan_works(stack: Stack, bot: Bot) -> None:
    """An ordinary image link right after: scanned and answered with its breakdown."""
    stack.web.add("/after.png", make_image(REVIEW_COLOR, (210, 210), "PNG"))
    await bot.command(f"{stack.web.url}/after.png", key="after")
    await bot.idle()
    [answer] = stack.slack.responses_by_key["after"]
    assert answer["text"].startswith("Needs review: Exposed Female Nipple 72.4%")
    assert stack.rekognition_calls() == 1


@pytest.mark.parametrize("case", BLOCKED, ids=[case["id"] for case in BLOCKED])
async def test_hostile_link_is_refused_visibly_and_never_reaches_the_target(
    case: dict[str, Any], stack: Stack, bot: Bot
) -> None:
    """Per corpus entry: /moderate and a message link both get Could not scan + the reason;
    the target gets no hit; the next ordinary scan still works."""
    url = _posted_url(case, stack)

    ack = await bot.command(url, key="hostile")
    assert ack["status"] == 200
    assert "Scanning" in ack["body"]
    await bot.idle()
    [answer] = stack.slack.responses_by_key["hostile"]
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("Could not scan")
    assert case["reason"] in answer["text"]

    response = await bot.event(payloads.message_event(GENERAL, POSTER, text=f"look <{url}>"))
    assert response["status"] == 200
    await bot.idle()
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan")
    assert case["reason"] in note["text"]
    assert f"<@{POSTER}>" in note["text"]

    assert stack.target.hits == []
    assert stack.rekognition_calls() == 0
    await _next_scan_works(stack, bot)


@pytest.mark.parametrize("case", NOT_LINKS, ids=[case["id"] for case in NOT_LINKS])
async def test_non_http_scheme_is_not_taken_as_a_link(
    case: dict[str, Any], stack: Stack, bot: Bot
) -> None:
    """file:, ftp:, gopher:, data:, dict:, javascript: — /moderate says it is not a link it can
    scan; in a message it is not a link at all (no fetch, no note); the bot carries on."""
    url = _fill(case["url"], stack)

    ack = await bot.command(url, key="scheme")
    assert ack["status"] == 200
    assert "not a link I can scan" in ack["body"]

    response = await bot.event(payloads.message_event(GENERAL, POSTER, text=f"see <{url}>"))
    assert response["status"] == 200
    await bot.idle()
    assert stack.alerts() == []
    assert stack.slack.responses_by_key["scheme"] == []
    assert stack.target.hits == []
    assert stack.rekognition_calls() == 0
    await _next_scan_works(stack, bot)


async def test_redirect_chain_longer_than_three_is_refused(stack: Stack, bot: Bot) -> None:
    """Four redirects on the allowed host: Could not scan, too many redirects; the image at the
    end of the chain is never fetched."""
    stack.web.add("/end.png", make_image(FLAG_COLOR, (200, 200), "PNG"))
    for n in range(4):
        stack.web.redirect(f"/r{n}", f"{stack.web.url}/r{n + 1}" if n < 3 else "/end.png")
    await bot.command(f"{stack.web.url}/r0", key="chain")
    await bot.idle()
    [answer] = stack.slack.responses_by_key["chain"]
    assert answer["text"].startswith("Could not scan")
    assert "too many redirects (more than 3)" in answer["text"]
    assert stack.web.hits_to("/end.png") == []
    await _next_scan_works(stack, bot)


async def test_link_note_does_not_echo_credentials(stack: Stack, bot: Bot) -> None:
    """A refused link with user:password@ is reported without the password."""
    url = f"http://admin:hunter2@127.0.0.1:{stack.target.port}/secret.png"
    await bot.event(payloads.message_event(GENERAL, POSTER, text=f"<{url}>"))
    await bot.idle()
    [note] = stack.alerts()
    assert "blocked address 127.0.0.1" in note["text"]
    assert "hunter2" not in json.dumps(note)
    assert stack.target.hits == []


async def test_many_hostile_links_in_one_message_each_get_a_note(stack: Stack, bot: Bot) -> None:
    """Five different private targets in one message: each named with its reason in Could not
    scan notes (summarised: fewer posts than links), zero hits, then business as usual."""
    port = stack.target.port
    urls = [
        f"http://127.0.0.1:{port}/a.png",
        f"http://2130706433:{port}/b.png",
        f"http://[::ffff:127.0.0.1]:{port}/c.png",
        f"http://localhost:{port}/d.png",
        "http://169.254.169.254/latest/meta-data/",
    ]
    text = " ".join(f"<{url}>" for url in urls)
    await bot.event(payloads.message_event(GENERAL, POSTER, text=text))
    await bot.idle()
    notes = stack.alerts()
    assert 1 <= len(notes) < 5
    assert all(note["text"].startswith("Could not scan") for note in notes)
    lines = [line for note in notes for line in note["text"].splitlines()]
    for path in ("/a.png", "/b.png", "/c.png", "/d.png", "/latest/meta-data/"):
        [line] = [line for line in lines if f"{path}>" in line]
        assert "blocked address" in line
    assert stack.target.hits == []
    await _next_scan_works(stack, bot)
