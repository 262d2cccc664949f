"""Turn any posted image into a JPEG or PNG that Rekognition accepts, or say why it cannot be."""

from __future__ import annotations

import contextlib
import io
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pillow_heif
from PIL import (
    AvifImagePlugin,
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from bot.adapters.images import frames as frames_mod
from bot.adapters.images.formats import check_container, sniff_image
from bot.adapters.images.memory import (
    MB,
    Copy,
    Size,
    animation_copies,
    area,
    decode_copies,
    final_mode,
    output_copies,
    reduce_factors,
    shrink_copies,
    total,
    widened,
)
from bot.core.errors import ImageRejected

MAX_BYTES = 5 * 1024 * 1024  # Rekognition's Bytes limit, 5,242,880
MIN_SIDE = 80
MAX_SIDE = 10_000
# 80 MP covers every common camera at full resolution (61 MP full frame, 50 MP phone modes) and
# bounds a full non-JPEG decode at ~320 MB (RGBA). It stays under Pillow's own 89.5 MP warning
# threshold, which its GIF, TIFF and MPO loaders still apply, so no image we accept trips it.
MAX_PIXELS = 80_000_000

# Pixels a scan may hold while preparing one image, when the caller names no budget; the bot
# passes MODBOT_DECODE_MEMORY_MB (bot/adapters/images/budget.py).
DEFAULT_MEMORY_LIMIT = 256 * MB

_BOMB = "image too large to process (decompression bomb guard)"
_FILL = 0.85  # aim re-encodes at 85% of MAX_BYTES: output size only roughly follows pixel count
_QUALITIES = (90, 85, 80, 75, 70, 65)  # one entry per encode attempt: bounded and deterministic
_JPEG_SCALES = (0.5, 0.25, 0.125)  # what libjpeg decodes at natively
# A JPEG re-encoded anyway (to turn it upright, or from CMYK) is decoded at the smallest libjpeg
# scale that keeps at least this short side. Rekognition resizes every image internally to its
# models' own ranges (AWS, "Image specifications"), so a 12 MP photo decoded in full, turned and
# re-encoded (about 4 times the work) buys no better answer. 1080 keeps full-HD detail: a
# 4000x3000 photo goes out at 2000x1500; a long thin one is not made any thinner.
REENCODE_SHORT_SIDE = 1080
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    ZeroDivisionError,
    RuntimeError,
)  # what decoders raise on bad bytes

pillow_heif.register_heif_opener()  # once, at import: Pillow then knows HEIF as it knows JPEG

# Each format is parsed by its own plugin only (we sniffed it first), which also skips the
# pixel check inside Image.open: it reads the global Image.MAX_IMAGE_PIXELS and warns or raises
# on its own terms, where we want one limit and one message, checked before any decoding.
_OPENERS: dict[str, Callable[[io.BytesIO], ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.jpeg_factory,
    "PNG": PngImagePlugin.PngImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
    "HEIF": pillow_heif.HeifImageFile,
    "AVIF": AvifImagePlugin.AvifImageFile,
}
_PASS_MODES = {"JPEG": {"L", "RGB"}, "PNG": {"1", "L", "LA", "P", "RGB", "RGBA"}}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # the table ImageOps.exif_transpose uses


@dataclass(frozen=True)
class PreparedImage:
    """Bytes ready for Rekognition, with what was done to them."""

    data: bytes
    format: str  # "JPEG" or "PNG"
    width: int
    height: int
    source_format: str  # as sniff_image named it
    reencoded: bool  # False: `data` is the caller's bytes, untouched


class _Source(io.BytesIO):
    """The input; notes reads that ran past its end, which Pillow forgives under
    LOAD_TRUNCATED_IMAGES, a global that other code may turn on."""

    short = False  # some read got fewer bytes than it asked for
    ran_out = False  # some read got nothing at all

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if size is not None and size > len(chunk):
            self.short = True
            self.ran_out = self.ran_out or not chunk
        return chunk


def prepare_image(data: bytes, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> PreparedImage:
    """Check `data` and make it a JPEG or PNG within Rekognition's limits, or ImageRejected.

    Preparing it never takes more than `memory_limit` bytes of pixels (decode_memory says how
    much it will take): the output is made smaller to fit, or the image is refused.
    """
    with _inspected(data) as (img, src, fmt, orientation):
        plan = _plan(img, data, fmt, orientation, memory_limit)
        if plan is None:
            width, height = img.size
            return PreparedImage(data, fmt, width, height, fmt, reencoded=False)
        return _reencode(img, src, fmt, orientation, plan)


def decode_memory(data: bytes, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> int:
    """The bytes prepare_image(data) will take at most (0: sent as is), from headers alone.

    Raises ImageRejected as prepare_image would for anything refused before decoding,
    including an image that needs more than `memory_limit` however small it is made.
    """
    with _inspected(data) as (img, _src, fmt, orientation):
        plan = _plan(img, data, fmt, orientation, memory_limit)
        return 0 if plan is None else plan.cost


@contextlib.contextmanager
def _inspected(data: bytes) -> Iterator[tuple[ImageFile.ImageFile, _Source, str, int]]:
    """The image opened (headers only) once every check that needs no decoding has passed."""
    if not data:
        raise ImageRejected("empty file")
    fmt = sniff_image(data)
    if fmt is None:
        raise ImageRejected("not an image", "its first bytes match no image format")
    png_exif = check_container(data, fmt)
    src = _Source(data)
    with _open(src, fmt) as img:
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise ImageRejected(_BOMB, f"{_px(width, height)} is over {MAX_PIXELS:,} pixels")
        # Entropy-coded data escapes every 0xFF, so an end marker after the scan header can only
        # be the image's own end; a cut-off JPEG has none (libjpeg itself would just pad it).
        # Searching from the back finds a complete file's marker at once.
        if fmt == "JPEG" and data.rfind(b"\xff\xd9", src.tell()) < 0:
            raise ImageRejected("truncated image", "JPEG data ends before its end marker")
        orientation = _orientation(img, png_exif)
        _check_sides(*_oriented(img.size, orientation))
        yield img, src, fmt, orientation


def _open(src: _Source, fmt: str) -> ImageFile.ImageFile:
    try:
        return _OPENERS[fmt](src)
    # GIF and MPO plugins apply Pillow's global pixel limit themselves; the warning is only
    # an exception where warnings are errors (as in our tests), but then it means the same.
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(_BOMB, str(exc)) from exc
    except _DECODE_ERRORS as exc:
        reason = "truncated image" if src.short else "not an image"
        raise ImageRejected(reason, f"{fmt} header unreadable: {exc}") from exc


def _orientation(img: ImageFile.ImageFile, png_exif: bytes | None) -> int:
    """EXIF orientation 1..8 (1 = as stored); read once, as resizing drops TIFF's tags."""
    if img.format == "TIFF":  # Pillow's TIFF loader turns the image upright itself
        return 1
    try:
        if img.format == "PNG":  # PngImageFile.getexif() would decode the image to look for it
            exif = Image.Exif()
            if png_exif:
                exif.load(png_exif)
        else:
            exif = img.getexif()
        value = exif.get(0x0112, 1)
        return value if value in _TRANSPOSE else 1
    except _DECODE_ERRORS:
        return 1  # a broken EXIF block is no reason to refuse the picture


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _px(width: int, height: int) -> str:
    return f"{width}\N{MULTIPLICATION SIGN}{height} px"


def _check_sides(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(
            f"image too small ({_px(width, height)}; at least {MIN_SIDE} px a side is needed)"
        )
    if min(width, height) * MAX_SIDE < MIN_SIDE * max(width, height):
        raise ImageRejected(
            f"image too long and thin ({_px(width, height)}; shrunk to {MAX_SIDE:,} px long "
            f"it would be under {MIN_SIDE} px wide)"
        )


def _fits_as_is(img: ImageFile.ImageFile, data: bytes, fmt: str, orientation: int) -> bool:
    return (
        fmt in _PASS_MODES
        and img.mode in _PASS_MODES[fmt]
        and orientation == 1
        and len(data) <= MAX_BYTES
        and max(img.size) <= MAX_SIDE
        # A 16-bit PNG can still open as "RGB"; the IHDR bit depth byte tells.
        and (fmt != "PNG" or (data[24] <= 8 and not getattr(img, "is_animated", False)))
    )


@dataclass(frozen=True)
class _Plan:
    """How an image will be re-encoded, and every copy of its pixels that this makes."""

    target: Size  # as stored: the output before turning upright, or each animation frame's cell
    copies: tuple[Copy, ...]
    draft: bool = False  # JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 scale
    frames: tuple[int, ...] = ()  # an animation's frames to tile; () for a still image

    @property
    def cost(self) -> int:
        return total(list(self.copies))


def _plan(
    img: ImageFile.ImageFile, data: bytes, fmt: str, orientation: int, memory_limit: int
) -> _Plan | None:
    """None if `data` goes as it is; else the largest output whose preparation fits
    `memory_limit` (ImageRejected if none does)."""
    if _fits_as_is(img, data, fmt, orientation):
        return None
    size = img.size
    min_scale = MIN_SIDE / min(size)
    frames = _frames(img, fmt)
    if frames:
        scale = min(1.0, frames_mod.CELL_SIDE / max(size))
    else:
        scale = min(1.0, MAX_SIDE / max(size))
        if fmt == "JPEG" and len(data) > MAX_BYTES:  # same codec, so size follows pixel count
            scale = min(scale, math.sqrt(_FILL * MAX_BYTES / len(data)))
        if fmt == "JPEG":
            scale = min(scale, _enough_for_rekognition(size))
    while True:
        if fmt == "JPEG" and scale < 1:
            # Decoding at 1/2, 1/4 or 1/8 costs a fraction of a full decode plus a resample, and
            # Rekognition resizes internally anyway; so round down to a scale libjpeg does.
            scale = max(min_scale, max((s for s in _JPEG_SCALES if s <= scale), default=scale))
        plan = _costed(img, fmt, orientation, frames, _scaled(size, scale))
        if plan.cost <= memory_limit:
            return plan
        if scale <= min_scale:
            raise ImageRejected(
                f"image too large to process (it needs about {plan.cost // MB:,} MB of memory; "
                f"the limit is {memory_limit // MB:,} MB)",
                f"{_px(*size)} {img.mode} {fmt}",
            )
        # A smaller output: smaller copies after the decode. Small steps, as what the decode
        # takes does not shrink with the output, and the largest output that fits is wanted.
        scale = max(min_scale, scale * 0.8)


def _enough_for_rekognition(size: Size) -> float:
    """The smallest libjpeg decode scale that keeps the short side at REENCODE_SHORT_SIDE."""
    short_side = min(size)
    return min(
        (s for s in (1.0, *_JPEG_SCALES) if short_side * s >= REENCODE_SHORT_SIDE), default=1.0
    )


def _costed(
    img: ImageFile.ImageFile, fmt: str, orientation: int, frames: tuple[int, ...], target: Size
) -> _Plan:
    turn = orientation != 1
    keyed = _keyed(img)
    if frames:
        # Shrinking a frame makes full-size copies, gone before the next frame is sought (any
        # frame may be a palette with a colour key: the widest path is counted); what is kept
        # of each frame is its cell.
        shrinking = shrink_copies(img.size, "P", target, keyed=True)
        shrinking += [Copy("tile: cell converted to the tile's mode", area(target) * 4)]
        kept = [Copy("tile: cell", area(target) * 4)]
        kept += [Copy("tile: cell turned upright", area(target) * 4)] if turn else []
        cols, rows = frames_mod.layout(len(frames), _oriented(target, orientation))
        tiled = (cols * target[0], rows * target[1])
        copies = animation_copies(img.size) + shrinking + kept * len(frames)
        copies += [Copy("tile", area(tiled) * 4), *output_copies(tiled, "RGBA", transpose=False)]
        return _Plan(target, tuple(copies), frames=frames)
    draft = fmt == "JPEG" and target != img.size
    decoded = _draft_size(img.size, target) if draft else img.size
    tiff_turns = fmt == "TIFF" and _tiff_orientation(img) != 1
    copies = decode_copies(fmt, decoded, img.mode, upright_on_load=tiff_turns)
    copies += shrink_copies(decoded, img.mode, target, keyed=keyed)
    out_mode = final_mode(widened(img.mode, keyed))
    copies += output_copies(target, out_mode, transpose=turn)
    return _Plan(target, tuple(copies), draft=draft)


def _draft_size(size: Size, target: Size) -> Size:
    """The size libjpeg decodes at when asked for `target` (JpegImageFile.draft's own rule)."""
    ratio = min(size[0] // target[0], size[1] // target[1])
    step = next(s for s in (8, 4, 2, 1) if ratio >= s)
    return (size[0] + step - 1) // step, (size[1] + step - 1) // step


def _tiff_orientation(img: ImageFile.ImageFile) -> int:
    tags = getattr(img, "tag_v2", {})
    value = tags.get(0x0112, 1) if hasattr(tags, "get") else 1
    return value if value in _TRANSPOSE else 1


def _frames(img: ImageFile.ImageFile, fmt: str) -> tuple[int, ...]:
    """The frames to judge if `img` is an animation people see playing; () for a still."""
    if fmt not in ("GIF", "PNG", "WEBP"):
        return ()  # TIFF pages and HEIF sequences are not shown as animations
    try:
        count = int(getattr(img, "n_frames", 1))
    except _DECODE_ERRORS as exc:  # GIF counts its frames by walking the whole file
        raise ImageRejected("truncated image", f"{fmt} frames unreadable: {exc}") from exc
    if count < 2:
        return ()
    hidden = fmt == "PNG" and bool(getattr(img, "default_image", False))
    shown = frames_mod.displayed_frames(count, hidden, area(img.size))
    return frames_mod.sample(shown)


def _reencode(
    img: ImageFile.ImageFile, src: _Source, fmt: str, orientation: int, plan: _Plan
) -> PreparedImage:
    if plan.frames:
        picture = _tiled(img, src, orientation, plan)
        orientation = 1  # each frame was turned upright before tiling
    else:
        if plan.draft:
            img.draft("RGB", plan.target)
        picture = _shrink(_decode(img, src), plan.target)
    size = picture.size
    min_scale = MIN_SIDE / min(size)
    scale = 1.0
    current = picture
    for quality in _QUALITIES:
        data, out_fmt, (width, height) = _encode(current, orientation, quality)
        if len(data) <= MAX_BYTES:
            return PreparedImage(data, out_fmt, width, height, fmt, reencoded=True)
        # Shrink from the prepared picture, not the decode: it is already small, and each try
        # is smaller than the one before, so no try needs more memory than the first.
        scale = max(min_scale, scale * math.sqrt(_FILL * MAX_BYTES / len(data)))
        current = picture.resize(_scaled(size, scale), Image.Resampling.LANCZOS, reducing_gap=3.0)
    raise ImageRejected("image too large to process", f"still over {MAX_BYTES:,} bytes when shrunk")


def _tiled(img: ImageFile.ImageFile, src: _Source, orientation: int, plan: _Plan) -> Image.Image:
    cells = []
    canvas = img.size
    for index in plan.frames:
        _seek(img, src, index, canvas)
        frame = _decode(img, src)
        cell = _shrink(frame, plan.target)
        if orientation != 1:
            cell = cell.transpose(_TRANSPOSE[orientation])
        cells.append(cell.copy() if cell is frame else cell)  # the next seek reuses `frame`
    return frames_mod.tile(cells)


def _seek(img: ImageFile.ImageFile, src: _Source, index: int, canvas: Size) -> None:
    """Decode up to frame `index` one frame at a time, as a player would.

    A GIF frame placed outside the logical screen makes Pillow grow the canvas, past what the
    memory estimate was made for; the growth shows before the grown frame is decoded.
    """
    for step in range(img.tell() + 1, index + 1):
        try:
            img.seek(step)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(_BOMB, str(exc)) from exc
        except _DECODE_ERRORS as exc:
            reason = "truncated image" if src.short else "not an image"
            raise ImageRejected(reason, f"frame {step} unreadable: {exc}") from exc
        if img.size != canvas:
            raise ImageRejected(
                _BOMB, f"frame {step} grows the canvas from {_px(*canvas)} to {_px(*img.size)}"
            )


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    # Ceiling matches libjpeg's draft sizes and keeps a side at MIN_SIDE from rounding to 79.
    return (
        min(MAX_SIDE, math.ceil(size[0] * scale - 1e-9)),
        min(MAX_SIDE, math.ceil(size[1] * scale - 1e-9)),
    )


def _decode(img: ImageFile.ImageFile, src: _Source) -> ImageFile.ImageFile:
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise ImageRejected(_BOMB, str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("truncated image", str(exc)) from exc
    if src.ran_out:
        raise ImageRejected("truncated image", "the data ends before the image does")
    return img


def _keyed(img: Image.Image) -> bool:
    """A colour-key transparency (PNG tRNS, GIF) that this mode can apply."""
    key = img.info.get("transparency")
    return key is not None and (img.mode != "RGB" or isinstance(key, tuple))


def _shrink(img: Image.Image, target: Size) -> Image.Image:
    """`img` at `target` in L, RGB or RGBA; the copies it makes are shrink_copies' list.

    A cheap box reduction comes first when the image is much larger, then the resample, then
    the mode conversion, on the small copy by then.
    """
    work = widened(img.mode, _keyed(img))
    if work != img.mode:
        img = img.convert(work)
    if img.size != target:
        factors = reduce_factors(img.size, target, img.mode)
        if factors != (1, 1):
            img = img.reduce(factors)
        img = img.resize(target, Image.Resampling.LANCZOS)
    return _normalise(img)


def _normalise(img: Image.Image) -> Image.Image:
    """Bring any mode to L, RGB or (only when some pixel is see-through) RGBA."""
    if img.mode == "I" or img.mode.startswith("I;16"):  # 16-bit greys (PNG, TIFF) to 8-bit
        return img.convert("I").point(lambda v: v / 257).convert("L")
    if "A" in img.mode or "a" in img.mode:
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        opaque = rgba.getchannel("A").getextrema() == (255, 255)
        return rgba.convert("RGB") if opaque else rgba
    if img.mode in ("L", "RGB"):
        return img
    try:
        return img.convert("RGB")
    except ValueError as exc:  # LAB, HSV and the like have no direct route to RGB
        raise ImageRejected("unsupported image format", f"colour mode {img.mode}") from exc


def _encode(img: Image.Image, orientation: int, quality: int) -> tuple[bytes, str, Size]:
    """Encode upright (turned after shrinking, on the small copy); JPEG unless see-through."""
    if orientation in _TRANSPOSE:
        img = img.transpose(_TRANSPOSE[orientation])
    # Transparent images stay PNG with their alpha, so they reach Rekognition exactly as an
    # uploaded transparent PNG does; flattening would have to guess a background, and Slack
    # shows both light and dark ones, so a guess could hide strokes that people can see.
    fmt = "PNG" if img.mode == "RGBA" else "JPEG"
    out = io.BytesIO()
    if fmt == "PNG":
        img.save(out, fmt)
    else:
        img.save(out, fmt, quality=quality)
    return out.getvalue(), fmt, img.size
