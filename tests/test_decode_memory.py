"""The decode memory estimate and budget: every copy counted, large images shrunk or refused."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from bot.adapters.images import budget as decode_budget
from bot.adapters.images import memory as dm
from bot.adapters.images.budget import DecodeBudget, prepare_within_budget
from bot.adapters.images.memory import MB, Copy
from bot.adapters.images.prepare import decode_memory, prepare_image
from bot.core.errors import ImageRejected
from tests.fakes import images as fake


def _png(img: Image.Image, orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return fake.encode(img, "PNG", exif=exif.tobytes())


def _quadrants(mode: str, size: tuple[int, int]) -> Image.Image:
    """Four distinct quadrants in `mode` (RGBA, or I;16 greys): a wrong turn shows."""
    if mode == "I;16":
        img = Image.new("I", size)
        levels = [5_000, 20_000, 40_000, 60_000]
    else:
        img = Image.new("RGBA", size)
        levels = [(*c, 255) for c in fake.QUADRANT_COLORS]  # type: ignore[misc]
    w, h = size
    for i, level in enumerate(levels):
        x, y = (i % 2) * w // 2, (i // 2) * h // 2
        img.paste(level, (x, y, x + w // 2, y + h // 2))
    return img.convert("I;16") if mode == "I;16" else img


def test_shrinking_an_rgba_image_counts_each_copy_pillow_makes() -> None:
    """RGBA is resampled through premultiplied copies; each copy appears with its size."""
    copies = dm.shrink_copies((8000, 6000), "RGBA", (2000, 1500))
    assert copies == [
        Copy("resize: premultiplied input", 8000 * 6000 * 4),
        Copy("resize: premultiplied output", 2000 * 1500 * 4),
        Copy("resize: first pass", 2000 * 6000 * 4),
        Copy("resize", 2000 * 1500 * 4),
        Copy("normalise: alpha check", 2000 * 1500),
        Copy("normalise: to RGB", 2000 * 1500 * 4),
    ]


def test_a_much_larger_image_is_box_reduced_first_and_that_copy_counts() -> None:
    """A palette image 8x its target: widened, reduced by 2 (reducing gap 3), then resampled."""
    copies = dm.shrink_copies((8000, 8000), "P", (1000, 1000))
    assert [c.step for c in copies] == [
        "widen P to RGB",
        "reduce",
        "resize: first pass",
        "resize",
    ]
    assert copies[0].nbytes == 8000 * 8000 * 4  # RGB is stored 4 bytes a pixel
    assert copies[1].nbytes == 4000 * 4000 * 4


@pytest.mark.parametrize(
    ("mode", "per_pixel"),
    [
        # decode (1.05 x stored size), alpha check, to RGB, transpose and encode (4 bytes each)
        ("RGBA", 4 * 1.05 + 1 + 4 + 4 + 4),
        # decode of 2 bytes, to 32-bit, scaled, to 8-bit, transpose and encode (1 byte each)
        ("I;16", 2 * 1.05 + 4 + 4 + 1 + 1 + 1),
    ],
)
def test_the_estimate_of_a_rotated_png_adds_up_every_copy(mode: str, per_pixel: float) -> None:
    """decode_memory: decode, mode conversion, transpose (after shrinking) and encode, no fewer."""
    size = (1200, 800)
    data = _png(_quadrants(mode, size), orientation=6)
    expected = dm.FIXED_OVERHEAD + round(size[0] * size[1] * per_pixel)
    assert decode_memory(data) == pytest.approx(expected, abs=8)


def test_a_fitting_jpeg_or_png_costs_nothing() -> None:
    """An image sent as it is is never decoded."""
    assert decode_memory(fake.make_image(size=(400, 300))) == 0


@pytest.mark.parametrize("mode", ["RGBA", "I;16"])
def test_a_big_rotated_png_is_shrunk_to_fit_the_budget_and_stays_upright(mode: str) -> None:
    """Over the budget at full size, a rotated 16-bit or RGBA PNG is prepared smaller, upright."""
    data = _png(_quadrants(mode, (3000, 2000)), orientation=6)
    limit = 72 * MB
    assert decode_memory(data, 10**12) > limit
    assert decode_memory(data, limit) <= limit
    result = prepare_image(data, limit)
    assert result.width < 2000  # shrunk to fit
    assert result.width * 3 == result.height * 2  # and turned
    got = Image.open(io.BytesIO(result.data)).convert("L")
    upright = _quadrants(mode, (3000, 2000)).transpose(Image.Transpose.ROTATE_270)
    expected = upright.convert("I").point(lambda v: v / 257) if mode == "I;16" else upright
    expected = expected.convert("L").resize(got.size)
    for x, y in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
        at = (int(x * got.width), int(y * got.height))
        assert abs(got.getpixel(at) - expected.getpixel(at)) < 12, (at, mode)  # type: ignore[operator]


def test_an_image_whose_decode_alone_is_over_the_budget_is_refused_with_the_reason() -> None:
    """No output size helps when decoding alone is too much: refused, naming both figures."""
    data = _png(_quadrants("RGBA", (3000, 2000)), orientation=6)
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data, 16 * MB)
    reason = caught.value.reason
    assert reason.startswith("image too large to process (it needs about ")
    assert reason.endswith("MB of memory; the limit is 16 MB)")


async def test_budget_never_lends_more_than_it_has_and_serves_in_order() -> None:
    """Reservations wait their turn, first come first served, and never exceed the capacity."""
    budget = DecodeBudget(100)
    order: list[int] = []

    async def use(n: int, size: int) -> None:
        await budget.acquire(size)
        assert budget.in_use <= budget.capacity
        order.append(n)
        await asyncio.sleep(0)
        budget.release(size)

    await asyncio.gather(*(use(n, size) for n, size in enumerate([60, 60, 10, 100, 30])))
    assert order == [0, 1, 2, 3, 4]  # 2 fits beside 1 but waits behind it: no starvation
    assert budget.high_water <= 100
    assert budget.in_use == 0


async def test_a_cancelled_waiter_gives_its_place_and_its_bytes_back() -> None:
    """A scan cancelled while waiting leaves the budget as it found it."""
    budget = DecodeBudget(100)
    await budget.acquire(90)
    waiting = asyncio.create_task(budget.acquire(50))
    behind = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.wait_for(behind, 1)  # the head of the queue left, so 10 fits now
    assert budget.in_use == 100
    with pytest.raises(ValueError, match="more than the whole budget"):
        await budget.acquire(101)


async def test_an_image_sent_as_it_is_does_not_queue_behind_large_decodes() -> None:
    """Only decodes reserve memory: a fitting JPEG goes through while a large decode waits."""
    budget = DecodeBudget(100 * MB)
    decode_budget.install(budget)
    await budget.acquire(90 * MB)
    waiting = asyncio.create_task(budget.acquire(50 * MB))
    await asyncio.sleep(0)
    data = fake.make_image(size=(400, 300), fmt="JPEG")
    result = await asyncio.wait_for(prepare_within_budget(data), 5)
    assert result.data == data
    assert not waiting.done()
    waiting.cancel()
