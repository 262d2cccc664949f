"""How the emulator looks at an image: format by magic number, size from the header, mean colour.

Tests script outcomes by colour rather than by hash because the bot may re-encode or resize
images, and JPEG is lossy; the mean colour of a solid image survives both.
"""

from __future__ import annotations

import io
import math
import warnings

from PIL import Image, ImageStat

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RSTn, SOI: markers without a length


class BadImage(Exception):
    """Not a JPEG or PNG we can read."""


def sniff_format(data: bytes) -> str:
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data.startswith(PNG_MAGIC):
        return "PNG"
    raise BadImage("neither JPEG nor PNG magic")


def dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from the header alone, so huge images are judged before any decoding."""
    if sniff_format(data) == "PNG":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise BadImage("PNG without IHDR")
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise BadImage("JPEG marker expected")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in _SOF:
            if i + 9 > len(data):
                break
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise BadImage("JPEG without a frame header")


def mean_colour(data: bytes) -> tuple[float, float, float]:
    """Mean RGB of the whole picture, computed on a small copy for speed."""
    try:
        with warnings.catch_warnings():
            # Sizes were checked against the 10,000 px limit already; a 10k x 10k image is past
            # Pillow's bomb *warning* threshold, which pytest would turn into an error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.draft("RGB", (64, 64))  # JPEG: decode at reduced scale
                small = image.convert("RGB")
                small.thumbnail((64, 64))
                r, g, b = ImageStat.Stat(small).mean[:3]
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImage(str(exc)) from exc
    return r, g, b


def distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return math.dist(a, b)
