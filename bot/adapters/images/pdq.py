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
    """The PDQ hashes of a decoded image (any mode), shrunk to HASH_SIDE first."""
    image = image.convert("RGB")
    if max(image.size) > HASH_SIDE:
        image.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
    vectors, quality = pdqhash.compute_dihedral(np.asarray(image))
    dihedral = tuple(hex_of(vector) for vector in vectors)
    return ImageHashes(pdq=dihedral[0], quality=int(quality), dihedral=dihedral)


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
