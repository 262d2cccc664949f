"""The image corpus (tests/data/hostile/images.json) uploaded through the fake Slack.

Each hostile file ends in exactly the outcome the corpus names — an alert, nothing at all, or a
visible "Could not scan" with the reason — and the bot then still scans an ordinary upload.
Images are generated at test time (tests/fakes/images.py); none is committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import images
from tests.fakes import slack_payloads as payloads
from tests.fakes.images import make_image
from tests.harness import (
    ALERTS,
    CLEAN_COLOR,
    GENERAL,
    POSTER,
    REVIEW_COLOR,
    Bot,
    Stack,
    http_bot,
    started_stack,
)

CORPUS = json.loads(
    (Path(__file__).parent / "data" / "hostile" / "images.json").read_text(encoding="utf-8")
)
CASES: list[dict[str, Any]] = CORPUS["cases"]
COLORS = {"review": REVIEW_COLOR, "clean": CLEAN_COLOR}
REVIEW_LABELS = {"Exposed Female Nipple": 72.4}


def _arg(value: Any) -> Any:
    if isinstance(value, str) and value in COLORS:
        return COLORS[value]
    return tuple(value) if isinstance(value, list) else value


def build(case: dict[str, Any]) -> bytes:
    """The file's bytes, generated as the corpus entry describes."""
    args = case["args"]
    if case["make"] == "raw":
        data = args["text"].encode() if "text" in args else bytes.fromhex(args["hex"])
    else:
        maker: Callable[..., bytes] = getattr(images, case["make"])
        data = maker(**{key: _arg(value) for key, value in args.items()})
    if "truncate" in case:
        data = images.truncated(data, case["truncate"])
    return data


async def _post_upload(
    stack: Stack, bot: Bot, data: bytes, *, name: str, mimetype: str
) -> dict[str, Any]:
    file = stack.slack.add_file(data, name=name, mimetype=mimetype, channel=GENERAL, user=POSTER)
    response = await bot.event(payloads.message_event(GENERAL, POSTER, text="", files=[file]))
    assert response["status"] == 200
    await bot.idle()
    return file


async def _next_upload_alerts(stack: Stack, bot: Bot) -> None:
    """An ordinary review-band upload right after still produces its alert."""
    before = len(stack.alerts())
    data = make_image(REVIEW_COLOR, (160, 120), "JPEG")  # ~10 KB: under any cap set here
    await _post_upload(stack, bot, data, name="after.jpg", mimetype="image/jpeg")
    after = stack.alerts()
    assert len(after) == before + 1
    assert after[-1]["text"].startswith("Needs review: Exposed Female Nipple 72.4%")


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
async def test_hostile_upload_has_its_visible_outcome(
    case: dict[str, Any], stack: Stack, bot: Bot
) -> None:
    """Per corpus entry: the named outcome (alert / ignored / Could not scan + reason), then an
    ordinary upload still alerts."""
    if "review_color" in case:
        stack.aws.script(tuple(case["review_color"]), REVIEW_LABELS)
    file = await _post_upload(stack, bot, build(case), name=case["name"], mimetype=case["mimetype"])

    expect = case["expect"]
    if expect == "review":
        [alert] = stack.alerts()
        assert alert["text"].startswith("Needs review: Exposed Female Nipple 72.4%")
        assert case["name"] in str(alert["blocks"])
        assert stack.rekognition_calls() == 1
    elif expect == "ignored":
        assert stack.slack.messages.get(ALERTS, []) == []
        assert stack.slack.file_requests == []
        assert stack.rekognition_calls() == 0
    else:
        assert expect == "could_not_scan"
        [note] = stack.alerts()
        assert note["text"].startswith(f"Could not scan `{case['name']}` posted by <@{POSTER}>")
        assert case["reason"] in note["text"]
        assert stack.rekognition_calls() == 0
        [download] = stack.slack.file_requests
        assert download.file_id == file["id"]  # fetched once: not retried as if transient
    await _next_upload_alerts(stack, bot)


async def test_upload_over_the_download_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODBOT_MAX_DOWNLOAD_BYTES=100000: a larger upload gets Could not scan, file too large;
    one under the cap still alerts."""
    async with started_stack(tmp_path, monkeypatch) as stack:
        monkeypatch.setenv("MODBOT_MAX_DOWNLOAD_BYTES", "100000")
        async with http_bot(stack) as bot:
            big = make_image(REVIEW_COLOR, (600, 600), "PNG")
            assert len(big) > 100_000
            await _post_upload(stack, bot, big, name="big.png", mimetype="image/png")
            [note] = stack.alerts()
            assert note["text"].startswith("Could not scan `big.png`")
            assert "file too large to download (over 100000 bytes)" in note["text"]
            assert stack.rekognition_calls() == 0
            await _next_upload_alerts(stack, bot)


async def test_image_link_with_wrong_content_type_is_scanned(stack: Stack, bot: Bot) -> None:
    """A PNG served as text/plain behind a .txt link: the content decides, so it alerts."""
    stack.web.add("/notes.txt", make_image(REVIEW_COLOR, (240, 240), "PNG"), "text/plain")
    await bot.event(payloads.message_event(GENERAL, POSTER, text=f"<{stack.web.url}/notes.txt>"))
    await bot.idle()
    [alert] = stack.alerts()
    assert alert["text"].startswith("Needs review: Exposed Female Nipple 72.4%")
    await _next_upload_alerts(stack, bot)


async def test_text_behind_an_image_link_is_reported(stack: Stack, bot: Bot) -> None:
    """A .png link serving image/png that is really text: Could not scan, not an image."""
    stack.web.add("/fake.png", b"just some words", "image/png")
    await bot.event(payloads.message_event(GENERAL, POSTER, text=f"<{stack.web.url}/fake.png>"))
    await bot.idle()
    [note] = stack.alerts()
    assert note["text"].startswith("Could not scan")
    assert "not an image" in note["text"]
    await _next_upload_alerts(stack, bot)


async def test_bomb_behind_a_link_is_refused(stack: Stack, bot: Bot) -> None:
    """/moderate on a link to a decompression bomb: the caller hears why; nothing is decoded."""
    stack.web.add("/bomb.png", images.bomb_png(), "image/png")
    await bot.command(f"{stack.web.url}/bomb.png", key="bomb")
    await bot.idle()
    [answer] = stack.slack.responses_by_key["bomb"]
    assert answer["text"].startswith("Could not scan")
    assert "image too large to process (decompression bomb guard)" in answer["text"]
    assert stack.rekognition_calls() == 0
    await _next_upload_alerts(stack, bot)


async def test_many_hostile_files_in_one_message_each_get_their_outcome(
    stack: Stack, bot: Bot
) -> None:
    """Bomb, truncated, empty and a good image in one message: one alert, and each bad file
    named in a Could not scan note (summarised, so the three take fewer than three posts)."""
    files = [
        stack.slack.add_file(data, name=name, mimetype="image/png", channel=GENERAL, user=POSTER)
        for name, data in (
            ("bomb.png", images.bomb_png()),
            ("cut.png", images.truncated(make_image(REVIEW_COLOR, (300, 300), "PNG"))),
            ("empty.png", b""),
            ("good.png", make_image(REVIEW_COLOR, (250, 250), "PNG")),
        )
    ]
    await bot.event(payloads.message_event(GENERAL, POSTER, files=files))
    await bot.idle()
    texts = [message["text"] for message in stack.alerts()]
    [alert] = [text for text in texts if not text.startswith("Could not scan")]
    assert alert.startswith("Needs review: Exposed Female Nipple 72.4%")
    notes = [text for text in texts if text.startswith("Could not scan")]
    assert 1 <= len(notes) < 3
    for name in ("bomb.png", "cut.png", "empty.png"):
        [line] = [line for note in notes for line in note.splitlines() if f"`{name}`" in line]
        assert f"`{name}` posted by <@{POSTER}>" in line
    await _next_upload_alerts(stack, bot)
