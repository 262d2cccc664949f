"""What preparing one image costs in memory, known from its header before any pixel is decoded.

The estimate adds up every copy of the pixels that preparation makes (decode, mode conversion,
reduce, resize, alpha check, transpose, tiling, the encoded output), each as Pillow stores it.
Some are freed before others are made, so the sum bounds the peak from above; that slack is the
price of an estimate that cannot be wrong in the dangerous direction. Pure: no Pillow here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Size = tuple[int, int]

MB = 1024 * 1024

# Pillow keeps 1-byte modes at 1 byte a pixel, 16-bit greys at 2, and pads everything else
# (RGB included) to 4 bytes a pixel.
_ONE_BYTE = frozenset({"1", "L", "P"})
SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# Pillow resamples and reduces these through a premultiplied copy (RGBa, La) of its input.
_PREMULTIPLIED = frozenset({"RGBA", "LA"})
_ALPHA = frozenset({"RGBA", "LA", "RGBa", "La", "PA"})
_GREY_DEEP = SIXTEEN_BIT | {"I"}

# What a decoder holds besides the image it returns, as a multiple of that image, measured on
# 12 MP images with Pillow 13 / pillow-heif: libwebp keeps its own canvas and hands over a copy
# (16.1 bytes a pixel for RGB), libheif and libavif decode to their own buffer first (7.5 and
# 9.4 bytes a pixel). The others decode straight into Pillow's image (1.01).
_DECODER_OVERHEAD = {"WEBP": 4.25, "HEIF": 2.0, "AVIF": 2.5}
_PLAIN_DECODER = 1.05
# Seeking through an animation keeps the canvas, the previous frame for disposal and the frame
# being decoded (measured: GIF 13.1, APNG 12.1, WebP 16.3 bytes per canvas pixel).
ANIMATION_CANVAS_BYTES = 17
# Slack for what the estimate does not see (Pillow's per-line bookkeeping, encoder state).
FIXED_OVERHEAD = 2 * MB


@dataclass(frozen=True)
class Copy:
    """One copy of the pixels that preparation makes."""

    step: str
    nbytes: int


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel of `mode` as Pillow stores it."""
    if mode in _ONE_BYTE:
        return 1
    if mode in SIXTEEN_BIT:
        return 2
    return 4


def area(size: Size) -> int:
    return size[0] * size[1]


def total(copies: list[Copy]) -> int:
    return FIXED_OVERHEAD + sum(copy.nbytes for copy in copies)


def decode_copies(fmt: str, size: Size, mode: str, *, upright_on_load: bool = False) -> list[Copy]:
    """The decoded image and what its decoder holds while making it."""
    nbytes = area(size) * pixel_bytes(mode)
    copies = [Copy("decode", math.ceil(nbytes * _DECODER_OVERHEAD.get(fmt, _PLAIN_DECODER)))]
    if upright_on_load:  # Pillow's TIFF loader applies the orientation tag itself
        copies.append(Copy("decode: turned upright", nbytes))
    return copies


def animation_copies(size: Size) -> list[Copy]:
    return [Copy("decode: animation canvas", area(size) * ANIMATION_CANVAS_BYTES)]


def widened(mode: str, keyed: bool) -> str:
    """The mode an image is brought to before shrinking: one Pillow resamples faithfully.

    Palette and 1-bit images cannot be resampled (Pillow would fall back to nearest neighbour),
    and a colour-key transparency (`keyed`) cannot survive blending, so those become RGB(A)/L.
    """
    if mode == "1":
        return "L"
    if mode in ("P", "PA"):
        return "RGBA" if keyed or mode == "PA" else "RGB"
    if keyed and mode in ("L", "RGB"):
        return "RGBA"
    return mode


def reduce_factors(size: Size, target: Size, mode: str) -> tuple[int, int]:
    """Integer box-reduction done before resampling, as Pillow's `reducing_gap=3` would."""
    if mode in SIXTEEN_BIT:  # Image.reduce refuses 16-bit modes; they are resampled directly
        return 1, 1
    return max(1, int(size[0] / target[0] / 3)), max(1, int(size[1] / target[1] / 3))


def reduced_size(size: Size, factors: tuple[int, int]) -> Size:
    return math.ceil(size[0] / factors[0]), math.ceil(size[1] / factors[1])


def final_mode(mode: str) -> str:
    """The mode normalisation ends in: L, RGB or (when some pixel is see-through) RGBA."""
    if mode in _GREY_DEEP or mode == "L":
        return "L"
    return "RGBA" if mode in _ALPHA else "RGB"


def shrink_copies(size: Size, mode: str, target: Size, *, keyed: bool = False) -> list[Copy]:
    """Copies made bringing a decoded `size` image of `mode` to `target` in L, RGB or RGBA."""
    copies: list[Copy] = []
    work = widened(mode, keyed)
    if work != mode:
        copies.append(Copy(f"widen {mode} to {work}", area(size) * pixel_bytes(work)))
    ps = pixel_bytes(work)
    premultiplied = work in _PREMULTIPLIED
    current = size
    if target != size:
        factors = reduce_factors(size, target, work)
        if factors != (1, 1):
            current = reduced_size(size, factors)
            if premultiplied:
                copies.append(Copy("reduce: premultiplied input", area(size) * 4))
                copies.append(Copy("reduce: premultiplied output", area(current) * 4))
            copies.append(Copy("reduce", area(current) * ps))
        if premultiplied:
            copies.append(Copy("resize: premultiplied input", area(current) * 4))
            copies.append(Copy("resize: premultiplied output", area(target) * 4))
        copies.append(Copy("resize: first pass", target[0] * current[1] * ps))
        copies.append(Copy("resize", area(target) * ps))
    return copies + normalise_copies(target, work)


def normalise_copies(size: Size, mode: str) -> list[Copy]:
    """Mode conversion to L, RGB or RGBA, done at the (already shrunk) size."""
    n = area(size)
    if mode in _GREY_DEEP:  # to 32-bit, scaled to 0..255, to 8-bit
        return [
            Copy("normalise: to 32-bit", 4 * n),
            Copy("normalise: scale", 4 * n),
            Copy("normalise: to 8-bit", n),
        ]
    if mode in ("L", "RGB"):
        return []
    if mode in _ALPHA:
        copies = [] if mode == "RGBA" else [Copy("normalise: to RGBA", 4 * n)]
        return [*copies, Copy("normalise: alpha check", n), Copy("normalise: to RGB", 4 * n)]
    return [Copy("normalise: to RGB", 4 * n)]


def output_copies(size: Size, mode: str, *, transpose: bool) -> list[Copy]:
    """Turning upright (after shrinking, so on the small copy) and the encoded bytes.

    The encoder's output is counted at the raw size: JPEG and PNG seldom come out larger.
    """
    nbytes = area(size) * pixel_bytes(mode)
    return ([Copy("transpose", nbytes)] if transpose else []) + [Copy("encode", nbytes)]
