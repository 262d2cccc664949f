"""PDQ hashes of a prepared image (Meta's perceptual hash, via the `pdqhash` bindings).

The image is prepared exactly as for detection (bot/adapters/images/budget.py), then decoded
at most 512 px a side: PDQ itself works on a 64x64 reduction, so a smaller decode changes only
a few bits, and a 12 MP photo hashes in tens of milliseconds instead of over a second. JPEGs
are decoded at 1/2..1/8 scale by libjpeg (Pillow's draft mode); a PNG is decoded whole, inside
the shared decode budget.
"""

from __future__ import annotations

import asyncio
import io
import logging

import numpy as np
import pdqhash
from PIL import Image

from bot.adapters.images.budget import current, prepare_within_budget
from bot.adapters.images.prepare import PreparedImage
from bot.core.errors import ImageRejected
from bot.core.pdq import ImageHashes

log = logging.getLogger(__name__)

HASH_SIDE = 512  # the decode's longest side


def hex_of(bits: np.ndarray) -> str:
    """256 PDQ bits as 64 hex digits, most significant first (python-threatexchange's form)."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def hash_pixels(image: Image.Image) -> ImageHashes:
    """The PDQ hashes of a decoded image (any mode), shrunk to HASH_SIDE first, and of the
    picture inside its uniform borders if it has any."""
    image = image.convert("RGB")
    if max(image.size) > HASH_SIDE:
        image.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    dihedral, quality = _dihedral(pixels)
    trimmed: tuple[str, ...] = ()
    inner = inside_borders(pixels)
    if inner is not None:
        trimmed, _ = _dihedral(inner)
    return ImageHashes(pdq=dihedral[0], quality=quality, dihedral=dihedral, trimmed=trimmed)


def _dihedral(pixels: np.ndarray) -> tuple[tuple[str, ...], int]:
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(pixels))
    return tuple(hex_of(vector) for vector in vectors), int(quality)


BORDER_SPREAD = 8.0  # a row or column whose grey levels vary less than this is border
MIN_INNER = 0.3  # never trim to less than this share of a side: that is no longer a frame


def inside_borders(pixels: np.ndarray) -> np.ndarray | None:
    """The pixels inside uniform rows and columns at the edges (a screenshot's frame and title
    bar, letterboxing), or None when there are none. Rows and columns are trimmed in turns,
    since a frame's side columns are uniform only once its top and bottom rows are gone."""
    grey = pixels.astype(np.float32).mean(axis=2)
    top, bottom, left, right = 0, grey.shape[0], 0, grey.shape[1]
    for _ in range(3):
        before = (top, bottom, left, right)
        rows = grey[top:bottom, left:right].std(axis=1) >= BORDER_SPREAD
        top, bottom = _kept(rows, top)
        columns = grey[top:bottom, left:right].std(axis=0) >= BORDER_SPREAD
        left, right = _kept(columns, left)
        if (top, bottom, left, right) == before:
            break
    height, width = grey.shape
    if (top, bottom, left, right) == (0, height, 0, width):
        return None
    if bottom - top < MIN_INNER * height or right - left < MIN_INNER * width:
        return None
    return pixels[top:bottom, left:right]


def _kept(detailed: np.ndarray, offset: int) -> tuple[int, int]:
    """The span from the first to the last detailed line, as absolute positions."""
    where = np.flatnonzero(detailed)
    if not len(where):
        return offset, offset + len(detailed)
    return offset + int(where[0]), offset + int(where[-1]) + 1


def hash_prepared(prepared: PreparedImage) -> ImageHashes:
    """Decode a prepared JPEG or PNG small and hash it."""
    with Image.open(io.BytesIO(prepared.data)) as image:
        if image.format == "JPEG":
            image.draft("RGB", (HASH_SIDE, HASH_SIDE))  # libjpeg scales while decoding
        image.load()
        return hash_pixels(image)


def decode_cost(prepared: PreparedImage) -> int:
    """Bytes the decode holds: a JPEG at its draft scale, anything else at full size (RGBA)."""
    width, height = prepared.width, prepared.height
    if prepared.format == "JPEG":
        scale = 1
        while scale < 8 and max(width, height) // (scale * 2) >= HASH_SIDE:
            scale *= 2
        width, height = -(-width // scale), -(-height // scale)
    return width * height * 4


async def image_hashes(data: bytes) -> ImageHashes | None:
    """The PDQ hashes of the image in `data`, or None when it cannot be hashed (the detector
    then reports the image's problem as it always did)."""
    try:
        prepared = await prepare_within_budget(data)
    except ImageRejected:
        return None
    budget = current()
    cost = decode_cost(prepared)
    if cost > budget.capacity:
        log.info("not hashed: decoding it would take more than the decode budget")
        return None
    await budget.acquire(cost)
    try:
        return await asyncio.to_thread(hash_prepared, prepared)
    except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises on odd bytes
        log.info("not hashed: %s", exc)
        return None
    finally:
        budget.release(cost)
