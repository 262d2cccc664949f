"""Deterministic test images: scripted colours for the Rekognition emulator and a hostile corpus."""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Any

import pillow_heif
from PIL import Image, ImageChops

Color = tuple[int, int, int]

pillow_heif.register_heif_opener()  # idempotent; lets Pillow save HEIF too

_NOISE = 8  # ± per channel: enough texture for JPEG to behave like a photo, small for the mean


def _noise_layer(size: tuple[int, int], spread: int, seed: int) -> Image.Image:
    """Uniform noise in 0..2*spread per pixel and channel, the same for the same arguments."""
    w, h = size
    raw = random.Random(seed).randbytes(w * h * 3)
    return Image.frombytes("RGB", size, raw).point(lambda v: v * (2 * spread + 1) // 256)


def noisy(color: Color, size: tuple[int, int], spread: int = _NOISE, seed: int = 0) -> Image.Image:
    """A solid `color` with light noise; its mean stays within a few units of `color`."""
    base = Image.new("RGB", size, color)
    return ImageChops.add(base, _noise_layer(size, spread, seed), scale=1.0, offset=-spread)


def encode(img: Image.Image, fmt: str, **save_kwargs: Any) -> bytes:
    """Save `img` as `fmt` into bytes."""
    out = io.BytesIO()
    img.save(out, fmt, **save_kwargs)
    return out.getvalue()


def make_image(
    color: Color = (200, 40, 40),
    size: tuple[int, int] = (320, 240),
    fmt: str = "PNG",
    **save_kwargs: Any,
) -> bytes:
    """A solid-colour image with light deterministic noise, encoded as `fmt`."""
    return encode(noisy(color, size), fmt, **save_kwargs)


def mean_color(data: bytes) -> tuple[float, ...]:
    """Mean R, G, B of an encoded image (alpha ignored), as the emulator computes it."""
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
    w, h = rgb.size
    hist = rgb.histogram()
    return tuple(
        sum(i * n for i, n in enumerate(hist[band * 256 : band * 256 + 256])) / (w * h)
        for band in range(3)
    )


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """The first `keep` fraction of `data`, as an interrupted download leaves it."""
    return data[: int(len(data) * keep)]


def animated_gif(
    frames: int = 3,
    color: Color = (30, 160, 60),
    size: tuple[int, int] = (160, 120),
    rest: Color | None = None,
) -> bytes:
    """An animated GIF whose first frame is `color` and later frames are other colours (or all
    near `rest`: alternately one unit apart, so that no two frames in a row are merged)."""
    first = noisy(color, size, spread=2)
    others = [
        Image.new("RGB", size, ((i * 80) % 256, 20, 200) if rest is None else _nudge(rest, i % 2))
        for i in range(1, frames)
    ]
    return encode(first, "GIF", save_all=True, append_images=others, duration=100, loop=0)


def gif_frame_outside_canvas(offset: int = 9000) -> bytes:
    """A 100x100 two-frame GIF whose second frame is placed at (`offset`, `offset`): decoders
    grow the canvas to fit it, to far more pixels than the header announced."""
    frames = [
        Image.new("RGB", (100, 100), (200, 40, 40)),
        Image.new("RGB", (100, 100), (40, 40, 200)),
    ]
    data = bytearray(
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    )
    second = data.rindex(b"\x2c\x00\x00\x00\x00")  # its image descriptor, at (0, 0) as saved
    struct.pack_into("<HH", data, second + 1, offset, offset)
    return bytes(data)


def _nudge(color: Color, by: int) -> Color:
    return (min(255, color[0] + by), color[1], color[2])


def transparent(
    color: Color = (40, 40, 200),
    size: tuple[int, int] = (200, 150),
    fmt: str = "PNG",
    **save_kwargs: Any,
) -> bytes:
    """An RGBA image of `color` whose left half is half-transparent."""
    img = noisy(color, size).convert("RGBA")
    alpha = Image.new("L", size, 255)
    alpha.paste(128, (0, 0, size[0] // 2, size[1]))
    img.putalpha(alpha)
    return encode(img, fmt, **save_kwargs)


def apng(color: Color = (200, 100, 0), size: tuple[int, int] = (120, 90)) -> bytes:
    """An animated PNG whose first frame is `color`."""
    frames = [noisy(color, size, spread=2), Image.new("RGB", size, (0, 0, 255))]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def apng_with_default(
    default: Color, frames: list[Color], size: tuple[int, int] = (120, 90)
) -> bytes:
    """An APNG whose default image (`default`, shown only where APNG is not understood) is not
    part of its animation (`frames`)."""
    shown = [noisy(color, size, spread=2, seed=i + 1) for i, color in enumerate(frames)]
    return encode(
        noisy(default, size, spread=2),
        "PNG",
        save_all=True,
        append_images=shown,
        default_image=True,
        duration=100,
    )


QUADRANT_COLORS = ((220, 30, 30), (30, 220, 30), (30, 30, 220), (220, 220, 30))


def quadrants(size: tuple[int, int] = (240, 160), fmt: str = "JPEG", orientation: int = 1) -> bytes:
    """Red, green / blue, yellow quadrants, tagged with EXIF `orientation`: any wrong turn shows."""
    w, h = size
    img = Image.new("RGB", size)
    for i, color in enumerate(QUADRANT_COLORS):
        x, y = (i % 2) * w // 2, (i // 2) * h // 2
        img.paste(color, (x, y, x + w // 2, y + h // 2))
    exif = Image.Exif()
    exif[0x0112] = orientation
    extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    return encode(img, fmt, exif=exif.tobytes(), **extra)


def cmyk_jpeg(color: Color = (220, 180, 30), size: tuple[int, int] = (240, 180)) -> bytes:
    """A CMYK JPEG (as print workflows and some stock sites produce)."""
    return encode(noisy(color, size).convert("CMYK"), "JPEG", quality=90)


def png16(level: int = 40_000, size: tuple[int, int] = (200, 160)) -> bytes:
    """A 16-bit greyscale PNG (mode I;16) at `level` of 65535."""
    return encode(Image.new("I;16", size, level), "PNG")


def exif_rotated_jpeg(
    color: Color = (90, 120, 200),
    size: tuple[int, int] = (400, 200),
    orientation: int = 6,
) -> bytes:
    """A JPEG stored `size` wide but tagged to display rotated (EXIF Orientation)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(noisy(color, size), "JPEG", quality=90, exif=exif.tobytes())


def heic(color: Color = (150, 60, 150), size: tuple[int, int] = (256, 192)) -> bytes:
    """A HEIC image, as iPhones upload them."""
    return encode(noisy(color, size), "HEIF", quality=90)


def webp(color: Color = (60, 200, 200), size: tuple[int, int] = (240, 160)) -> bytes:
    """A lossy WebP image."""
    return encode(noisy(color, size), "WEBP", quality=90)


def bmp(color: Color = (200, 120, 60), size: tuple[int, int] = (200, 100)) -> bytes:
    """An uncompressed BMP image."""
    return encode(noisy(color, size), "BMP")


def tiff(color: Color = (100, 100, 30), size: tuple[int, int] = (180, 180)) -> bytes:
    """A TIFF image."""
    return encode(noisy(color, size), "TIFF", compression="tiff_lzw")


def bigtiff(color: Color = (100, 100, 30), size: tuple[int, int] = (180, 180)) -> bytes:
    """A BigTIFF image (64-bit offsets, magic `II+`), as scanners and microscopes write them."""
    return encode(noisy(color, size), "TIFF", big_tiff=True)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header claims `width` by `height` greyscale pixels, all zero when inflated.

    Forged by hand so no test has to hold the huge image in memory: the IDAT is one compressed
    scanline, so a decoder that trusted the header would allocate the full size first.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1), 9)
    chunks = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def bomb_jpeg(width: int = 60_000, height: int = 60_000) -> bytes:
    """A small JPEG whose frame header (SOF0) is patched to claim `width` by `height` pixels."""
    data = bytearray(make_image(size=(100, 100), fmt="JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def huge_dimensions(width: int = 20_000, height: int = 100, fmt: str = "PNG") -> bytes:
    """A real image with an extreme side (cheap to build: flat colour compresses to nothing)."""
    return encode(Image.new("RGB", (width, height), (120, 130, 140)), fmt)


def photo(size: tuple[int, int], seed: int = 1, grain: int = 10) -> Image.Image:
    """A photo-like RGB image: smooth random blobs with sensor-like grain on top."""
    rng = random.Random(seed)
    cells = Image.frombytes("RGB", (48, 36), rng.randbytes(48 * 36 * 3))
    smooth = cells.resize(size, Image.Resampling.BICUBIC)
    return ImageChops.add(smooth, _noise_layer(size, grain, seed), scale=1.0, offset=-grain)


def big_jpeg(
    megapixels: float = 12,
    quality: int = 90,
    grain: int = 10,
    **save_kwargs: Any,
) -> bytes:
    """A 4:3 photo-like JPEG of about `megapixels`, as large as a phone camera's output."""
    h = int((megapixels * 1_000_000 * 3 / 4) ** 0.5)
    return encode(photo((h * 4 // 3, h), grain=grain), "JPEG", quality=quality, **save_kwargs)
