"""Images as people see them, within the decode memory budget, through the whole bot."""

from __future__ import annotations

import pytest
from PIL import Image

from bot.adapters.images import budget as decode_budget
from bot.adapters.images.memory import MB
from bot.adapters.images.prepare import decode_memory
from tests.fakes import images as fake
from tests.fakes import slack_payloads as payloads
from tests.harness import CLEAN_COLOR, FLAG_COLOR, GENERAL, POSTER, REVIEW_COLOR, Stack, http_bot

ROTATED = 6  # EXIF orientation: turn 90 degrees clockwise to view


def _rotated_png(img: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = ROTATED
    return fake.encode(img, "PNG", exif=exif.tobytes())


async def _upload(stack: Stack, bot: object, data: bytes, name: str) -> None:
    file = stack.slack.add_file(data, name=name, mimetype="image/png", channel=GENERAL, user=POSTER)
    await bot.event(payloads.message_event(GENERAL, POSTER, files=[file]))  # type: ignore[attr-defined]


async def test_apng_whose_hidden_default_image_is_clean_but_animation_is_flagged(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The frames viewers see are judged (tiled into one call), not the hidden default image.

    The emulator judges the tile's mean colour: only animation frames are in it, all near
    FLAG_COLOR, so it is flagged; with the clean default image as one of four cells the mean
    would be 56 units away, beyond the emulator's tolerance of 24.
    """
    frames = [FLAG_COLOR, (44, 40, 200), FLAG_COLOR, (44, 40, 200), FLAG_COLOR]
    data = fake.apng_with_default(CLEAN_COLOR, frames, size=(200, 150))
    async with http_bot(stack) as bot:
        await _upload(stack, bot, data, "wave.png")
        await bot.idle()
    [alert] = stack.alerts()
    assert alert["text"].startswith("Flagged")
    assert stack.rekognition_calls() == 1  # one call for the whole animation


async def test_burst_of_large_images_never_decodes_more_than_the_budget_at_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight large-but-legal rotated RGBA PNGs at once: all scanned, and the decodes in flight
    never reserve more estimated memory than MODBOT_DECODE_MEMORY_MB."""
    monkeypatch.setenv("MODBOT_DECODE_MEMORY_MB", "64")
    burst = []
    for n in range(8):
        img = Image.new("RGBA", (1500, 1000), (*REVIEW_COLOR, 255))
        img.putpixel((n, 0), (0, 0, 0, 255))  # different bytes: no result is reused
        burst.append(_rotated_png(img))
    costs = [decode_memory(data, 64 * MB) for data in burst]
    assert all(0 < cost <= 64 * MB for cost in costs)
    assert sum(costs) > 2 * 64 * MB  # together they would not fit
    async with http_bot(stack) as bot:
        budget = decode_budget.current()
        assert budget.capacity == 64 * MB
        for n, data in enumerate(burst):
            await _upload(stack, bot, data, f"big{n}.png")
        await bot.idle(within=60)
    assert 0 < budget.high_water <= budget.capacity
    assert budget.in_use == 0
    assert len([a for a in stack.alerts() if a["text"].startswith("Needs review")]) == 8


async def test_big_rotated_16_bit_png_is_scanned_and_an_rgba_one_over_budget_is_refused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under MODBOT_DECODE_MEMORY_MB=40 a rotated 3000x2000 16-bit PNG is shrunk and scanned;
    a rotated RGBA one, whose decode alone is nearly the budget, is refused and says why."""
    monkeypatch.setenv("MODBOT_DECODE_MEMORY_MB", "40")
    stack.aws.script((155, 155, 155), {"Exposed Female Nipple": 72.4})
    grey = _rotated_png(Image.new("I", (3000, 2000), 39_835).convert("I;16"))
    rgba = _rotated_png(Image.new("RGBA", (3000, 2000), (*REVIEW_COLOR, 255)))
    async with http_bot(stack) as bot:
        await _upload(stack, bot, grey, "scan16.png")
        await _upload(stack, bot, rgba, "poster.png")
        await bot.idle(within=30)
    texts = sorted(alert["text"] for alert in stack.alerts())
    assert len(texts) == 2
    assert texts[0].startswith("Could not scan `poster.png`")
    assert "image too large to process (it needs about 5" in texts[0]
    assert "the limit is 40 MB)" in texts[0]
    assert texts[1].startswith("Needs review: Exposed Female Nipple 72.4%")
