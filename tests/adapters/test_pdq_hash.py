"""Hashing a prepared image: the hex form python-threatexchange and HMA use, quality, the
512 px decode, and the picture inside a screenshot's frame."""

from __future__ import annotations

import numpy as np
import pdqhash
from PIL import Image

from bot.adapters.images.pdq import hash_pixels, hash_prepared, hex_of, image_hashes, inside_borders
from bot.adapters.images.prepare import prepare_image
from bot.core.pdq import distance
from tests.fakes.images import make_image
from tests.fakes.scenes import jpeg, scene, screenshot


def test_hex_is_the_bit_string_read_as_one_number() -> None:
    """python-threatexchange's form: the 256 bits, first bit most significant, as hex."""
    vector, _ = pdqhash.compute(np.asarray(scene(1)))
    as_number = int("".join(str(int(bit)) for bit in vector), 2)
    assert hex_of(vector) == f"{as_number:064x}"


def test_a_large_photo_hashes_like_its_full_decode() -> None:
    """Decoding at most 512 px a side changes only a few bits of the full-size hash."""
    big = scene(2, (2400, 1800))
    full, _ = pdqhash.compute(np.asarray(big))
    small = hash_prepared(prepare_image(jpeg(big, 92)))
    assert distance(small.pdq, hex_of(full)) <= 16
    assert small.quality >= 50
    assert len(small.dihedral) == 8


def test_flat_images_have_low_quality() -> None:
    """A near-solid image (the tests' usual uploads) is never matchable."""
    hashes = hash_prepared(prepare_image(make_image((200, 40, 40), (320, 240), "PNG")))
    assert not hashes.matchable


def test_the_picture_inside_a_screenshot_frame_is_hashed_too() -> None:
    """A framed copy's inner hash is close to the original's own."""
    original = hash_pixels(scene(3))
    framed = hash_pixels(screenshot(scene(3)))
    inner = framed.trimmed[0]
    assert distance(framed.pdq, original.pdq) > 31
    assert min(distance(inner, code) for code in (original.pdq, *original.trimmed)) <= 31


def test_no_borders_no_trim_and_tiny_remainders_are_not_trimmed() -> None:
    """A picture with detail to its edges is left whole; an all-flat one is not cut to nothing."""
    noisy = np.random.default_rng(0).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    assert inside_borders(noisy) is None
    flat = np.full((100, 120, 3), 128, dtype=np.uint8)
    assert inside_borders(flat) is None
    framed = np.full((100, 120, 3), 240, dtype=np.uint8)
    framed[20:80, 30:90] = noisy[:60, :60]
    inner = inside_borders(framed)
    assert inner is not None
    assert inner.shape == (60, 60, 3)


async def test_what_cannot_be_prepared_is_not_hashed() -> None:
    """Not an image: None, and the detector reports the problem as it always did."""
    assert await image_hashes(b"<html>not an image</html>") is None
    hashes = await image_hashes(jpeg(Image.new("RGB", (200, 200), "white")))
    assert hashes is not None
    assert not hashes.matchable
