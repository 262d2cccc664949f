"""Image checks and normalisation: what reaches Rekognition, and the reason when nothing can."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from bot.adapters.images import prepare as images
from bot.adapters.images.prepare import (
    MAX_BYTES,
    MAX_SIDE,
    MIN_SIDE,
    REENCODE_SHORT_SIDE,
    PreparedImage,
    prepare_image,
    sniff_image,
)
from bot.core.errors import ImageRejected
from tests.fakes import images as fake

# Pillow warns (instead of failing) on some broken metadata in hostile files; that is Pillow
# talking about the input, not a fault of ours, so those tests let UserWarning through.
hostile = pytest.mark.filterwarnings("ignore::UserWarning")
X = "\N{MULTIPLICATION SIGN}"  # between width and height, as in the reasons


def assert_within_limits(result: PreparedImage) -> None:
    """Check `result` against Rekognition's limits as its headers state them."""
    assert result.format in ("JPEG", "PNG")
    assert sniff_image(result.data) == result.format
    assert len(result.data) <= MAX_BYTES
    assert MIN_SIDE <= result.width <= MAX_SIDE
    assert MIN_SIDE <= result.height <= MAX_SIDE


def assert_valid(result: PreparedImage) -> Image.Image:
    """Check `result` against the limits and its own claims, decoding it; return it decoded."""
    assert_within_limits(result)
    img = Image.open(io.BytesIO(result.data))
    assert img.format == result.format
    assert img.size == (result.width, result.height)
    img.load()
    return img


def assert_mean(result: PreparedImage, color: tuple[float, ...], tolerance: float = 10) -> None:
    """The emulator tells scripted images apart by mean colour; conversions must keep it."""
    mean = fake.mean_color(result.data)
    assert all(abs(m - c) <= tolerance for m, c in zip(mean, color, strict=True)), (mean, color)


def rejection(data: bytes) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data)
    return caught.value


# --- sniffing ---------------------------------------------------------------------------------

SNIFF_CASES: list[tuple[str, Callable[[], bytes], str | None]] = [
    ("jpeg", lambda: fake.make_image(fmt="JPEG"), "JPEG"),
    ("png", lambda: fake.make_image(fmt="PNG"), "PNG"),
    ("gif", fake.animated_gif, "GIF"),
    ("webp", fake.webp, "WEBP"),
    ("bmp", fake.bmp, "BMP"),
    ("tiff", fake.tiff, "TIFF"),
    ("big-endian tiff", lambda: b"MM\0*\0\0\0\x08", "TIFF"),
    ("bigtiff", fake.bigtiff, "TIFF"),
    ("big-endian bigtiff", lambda: b"MM\0+\0\x08\0\0", "TIFF"),
    ("heic", fake.heic, "HEIF"),
    ("avif", lambda: fake.make_image(fmt="AVIF"), "AVIF"),
    ("mif1 with avif brand", lambda: b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf", "AVIF"),
    ("mp4 video", lambda: b"\0\0\0\x18ftypisom\0\0\0\0isomiso2", None),
    ("text starting BM", lambda: b"BMW sells cars and has for a long while", None),
    ("html", lambda: b"<!DOCTYPE html><html><body>files:read</body></html>", None),
    ("pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", None),
    ("svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', None),
    ("empty", lambda: b"", None),
]


@pytest.mark.parametrize(
    ("name", "build", "expected"),
    SNIFF_CASES,
    ids=[c[0] for c in SNIFF_CASES],
)
def test_sniff_image_names_format_from_magic_bytes(
    name: str,
    build: Callable[[], bytes],
    expected: str | None,
) -> None:
    """sniff_image names each supported format from its first bytes and nothing else."""
    assert sniff_image(build()) == expected


# --- rejections -------------------------------------------------------------------------------

REJECT_CASES: list[tuple[str, Callable[[], bytes], str]] = [
    ("empty", lambda: b"", "empty file"),
    ("text", lambda: b"just some words, not a picture", "not an image"),
    ("html", lambda: b"<html><body>Sign in to Slack</body></html>", "not an image"),
    ("png magic then junk", lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "truncated image"),
    ("jpeg magic then junk", lambda: b"\xff\xd8\xff" + b"A" * 200, "not an image"),
    ("gif shorter than its palette", lambda: b"GIF89a" + b"\xff" * 64, "truncated image"),
    ("jpeg cut in header", lambda: fake.make_image(fmt="JPEG")[:40], "truncated image"),
    ("png cut in header", lambda: fake.make_image()[:30], "truncated image"),
    ("bomb png", fake.bomb_png, "image too large to process (decompression bomb guard)"),
    ("bomb jpeg", fake.bomb_jpeg, "image too large to process (decompression bomb guard)"),
    (
        "just over pixel cap",
        lambda: fake.bomb_png(10_000, 8_001),
        "image too large to process (decompression bomb guard)",
    ),
    (
        "tiny",
        lambda: fake.make_image(size=(40, 60)),
        f"image too small (40{X}60 px; at least 80 px a side is needed)",
    ),
    (
        "one side short",
        lambda: fake.make_image(size=(500, 79), fmt="JPEG"),
        f"image too small (500{X}79 px; at least 80 px a side is needed)",
    ),
    (
        "tiny gif",
        lambda: fake.animated_gif(size=(60, 60)),
        f"image too small (60{X}60 px; at least 80 px a side is needed)",
    ),
    (
        "rotated tiny",
        lambda: fake.exif_rotated_jpeg(size=(300, 50)),
        f"image too small (50{X}300 px; at least 80 px a side is needed)",
    ),
    (
        "long and thin",
        lambda: fake.huge_dimensions(20_000, 100),
        f"image too long and thin (20000{X}100 px; "
        "shrunk to 10,000 px long it would be under 80 px wide)",
    ),
]


@pytest.mark.parametrize(
    ("name", "build", "reason"),
    REJECT_CASES,
    ids=[c[0] for c in REJECT_CASES],
)
def test_rejections_give_plain_reasons(name: str, build: Callable[[], bytes], reason: str) -> None:
    """Each kind of unusable input is refused with the reason shown after "Could not scan"."""
    assert rejection(build()).reason == reason


TRUNCATABLE: list[tuple[str, Callable[[], bytes]]] = [
    ("jpeg", lambda: fake.make_image(fmt="JPEG", quality=90)),
    ("progressive jpeg", lambda: fake.make_image(fmt="JPEG", progressive=True)),
    ("png", fake.make_image),
    ("png16", fake.png16),
    ("gif", lambda: fake.make_image(fmt="GIF")),
    ("webp", fake.webp),
    ("bmp", fake.bmp),
    ("tiff", fake.tiff),
    ("heic", fake.heic),
    ("avif", lambda: fake.make_image(fmt="AVIF")),
    ("cmyk jpeg", fake.cmyk_jpeg),
    ("rotated jpeg", fake.exif_rotated_jpeg),
]


@hostile
@pytest.mark.parametrize("load_truncated", [False, True], ids=["default", "LOAD_TRUNCATED_IMAGES"])
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
@pytest.mark.parametrize(("name", "build"), TRUNCATABLE, ids=[c[0] for c in TRUNCATABLE])
def test_truncated_files_are_refused_whatever_pillow_is_told(
    name: str,
    build: Callable[[], bytes],
    keep: float,
    load_truncated: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cut-off file of any format is "truncated image", even with LOAD_TRUNCATED_IMAGES on."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)
    assert rejection(fake.truncated(build(), keep)).reason == "truncated image"


def test_gif_cut_after_its_first_frame_is_refused_as_truncated() -> None:
    """Frames across the whole animation are judged, so a lost tail is a truncated image."""
    data = fake.animated_gif()
    assert rejection(data[:-40]).reason == "truncated image"


def test_animation_frame_that_grows_the_canvas_is_refused_before_it_is_decoded() -> None:
    """A GIF frame placed far outside its 100x100 screen would need an 82 MP canvas: refused."""
    error = rejection(fake.gif_frame_outside_canvas())
    assert error.reason == "image too large to process (decompression bomb guard)"
    assert "grows the canvas" in error.detail


def test_corrupt_png_chunk_is_refused() -> None:
    """A PNG whose pixel data fails its checksum is refused without being decoded."""
    data = bytearray(fake.make_image())
    data[len(data) // 2] ^= 0xFF
    error = rejection(bytes(data))
    assert error.reason == "truncated image"
    assert "IDAT" in error.detail


def test_bomb_is_refused_before_decoding() -> None:
    """A 2.5-gigapixel header is refused from its size alone, quickly and without allocating."""
    error = rejection(fake.bomb_png(50_000, 50_000))
    assert f"50000{X}50000 px" in error.detail


def test_preparing_leaves_pillow_globals_alone() -> None:
    """prepare_image leaves Pillow's process-wide pixel limit and truncation flag alone."""
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    builds: list[Callable[[], bytes]] = [
        fake.bomb_png,
        fake.heic,
        lambda: fake.truncated(fake.bmp()),
    ]
    for build in builds:
        with contextlib.suppress(ImageRejected):
            prepare_image(build())
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)


# --- pass-through -----------------------------------------------------------------------------

PASS_CASES: list[tuple[str, Callable[[], bytes], str]] = [
    ("jpeg", lambda: fake.make_image(fmt="JPEG", quality=90), "JPEG"),
    ("progressive jpeg", lambda: fake.make_image(fmt="JPEG", progressive=True), "JPEG"),
    (
        "greyscale jpeg",
        lambda: fake.encode(fake.noisy((90, 90, 90), (200, 200)).convert("L"), "JPEG"),
        "JPEG",
    ),
    ("jpeg orientation 1", lambda: fake.exif_rotated_jpeg(orientation=1), "JPEG"),
    ("png", fake.make_image, "PNG"),
    ("transparent png", fake.transparent, "PNG"),
    (
        "palette png",
        lambda: fake.encode(fake.noisy((10, 200, 90), (200, 120)).quantize(64), "PNG"),
        "PNG",
    ),
    ("grey+alpha png", lambda: fake.encode(Image.new("LA", (100, 100), (128, 200)), "PNG"), "PNG"),
    ("exactly the limits", lambda: fake.huge_dimensions(10_000, 80), "PNG"),
    ("12 MP camera jpeg", fake.big_jpeg, "JPEG"),
]


@pytest.mark.parametrize(("name", "build", "fmt"), PASS_CASES, ids=[c[0] for c in PASS_CASES])
def test_fitting_jpeg_and_png_pass_through_byte_identical(
    name: str,
    build: Callable[[], bytes],
    fmt: str,
) -> None:
    """A JPEG or PNG that already fits and needs no rotation is returned as the same bytes."""
    data = build()
    result = prepare_image(data)
    assert result.data == data
    assert (result.reencoded, result.format, result.source_format) == (False, fmt, fmt)
    assert_valid(result)


def test_mpo_passes_through_as_jpeg() -> None:
    """A multi-picture JPEG (cameras, phones) passes through: readers see its first picture."""
    first, second = fake.noisy((10, 200, 30), (300, 200)), fake.noisy((200, 10, 30), (300, 200))
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second])
    result = prepare_image(out.getvalue())
    assert (result.reencoded, result.format) == (False, "JPEG")
    assert_mean(result, (10, 200, 30))


# --- conversions ------------------------------------------------------------------------------


class Conversion(NamedTuple):
    name: str
    build: Callable[[], bytes]
    source: str  # source_format reported
    fmt: str  # output format
    size: tuple[int, int]  # output width, height
    color: tuple[int, int, int]  # mean colour to keep


Row = tuple[str, Callable[[], bytes], str, str, tuple[int, int], tuple[int, int, int]]
CONVERSION_ROWS: list[Row] = [
    # Three 160x120 frames stacked: the mean of (30, 160, 60), (80, 20, 200) and (160, 20, 200).
    ("animated gif: frames tiled", fake.animated_gif, "GIF", "JPEG", (160, 360), (90, 67, 153)),
    ("webp", fake.webp, "WEBP", "JPEG", (240, 160), (60, 200, 200)),
    ("bmp", fake.bmp, "BMP", "JPEG", (200, 100), (200, 120, 60)),
    ("tiff", fake.tiff, "TIFF", "JPEG", (180, 180), (100, 100, 30)),
    ("bigtiff", fake.bigtiff, "TIFF", "JPEG", (180, 180), (100, 100, 30)),
    ("heic", fake.heic, "HEIF", "JPEG", (256, 192), (150, 60, 150)),
    (
        "avif",
        lambda: fake.make_image((70, 90, 210), (200, 150), "AVIF"),
        "AVIF",
        "JPEG",
        (200, 150),
        (70, 90, 210),
    ),
    ("cmyk jpeg", fake.cmyk_jpeg, "JPEG", "JPEG", (240, 180), (220, 180, 30)),
    ("16-bit grey png", fake.png16, "PNG", "JPEG", (200, 160), (156, 156, 156)),
    ("apng: frames tiled", fake.apng, "PNG", "JPEG", (120, 180), (100, 50, 128)),
    (
        "apng: hidden default image left out",
        lambda: fake.apng_with_default((40, 200, 40), [(40, 40, 200), (50, 40, 200)]),
        "PNG",
        "JPEG",
        (120, 180),
        (45, 40, 200),
    ),
    ("rotated jpeg", fake.exif_rotated_jpeg, "JPEG", "JPEG", (200, 400), (90, 120, 200)),
    (
        "transparent webp",
        lambda: fake.transparent(fmt="WEBP", lossless=True),
        "WEBP",
        "PNG",
        (200, 150),
        (40, 40, 200),
    ),
    (
        "transparent gif",
        lambda: fake.encode(
            fake.noisy((200, 30, 90), (100, 100), spread=0).quantize(8), "GIF", transparency=0
        ),
        "GIF",
        "PNG",
        (100, 100),
        (200, 30, 90),
    ),
    (
        "opaque rgba webp",
        lambda: fake.encode(
            fake.noisy((20, 120, 20), (150, 150)).convert("RGBA"), "WEBP", lossless=True
        ),
        "WEBP",
        "JPEG",
        (150, 150),
        (20, 120, 20),
    ),
    (
        "too wide png",
        lambda: fake.huge_dimensions(12_000, 900),
        "PNG",
        "JPEG",
        (10_000, 750),
        (120, 130, 140),
    ),
    (
        "too wide jpeg: decoded at 1/2",
        lambda: fake.huge_dimensions(12_000, 900, "JPEG"),
        "JPEG",
        "JPEG",
        (6_000, 450),
        (120, 130, 140),
    ),
    (
        "too tall tiff",
        lambda: fake.huge_dimensions(300, 10_001, "TIFF"),
        "TIFF",
        "JPEG",
        (300, 10_000),
        (120, 130, 140),
    ),
]
CONVERT_CASES = [Conversion(*row) for row in CONVERSION_ROWS]


@pytest.mark.parametrize("case", CONVERT_CASES, ids=[c.name for c in CONVERT_CASES])
def test_conversions_keep_content_and_fit_limits(case: Conversion) -> None:
    """Other formats, modes, frames, rotations and sizes become a fitting JPEG or PNG."""
    result = prepare_image(case.build())
    assert_valid(result)
    assert (result.source_format, result.format, result.reencoded) == (case.source, case.fmt, True)
    assert (result.width, result.height) == case.size
    assert_mean(result, case.color)


def test_transparency_is_kept_as_png_alpha() -> None:
    """See-through pixels stay see-through: the output is an RGBA PNG, not a guessed flattening."""
    result = prepare_image(fake.transparent(fmt="WEBP", lossless=True))
    img = assert_valid(result)
    assert img.mode == "RGBA"
    assert img.getchannel("A").getextrema() == (128, 255)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "AVIF", "HEIF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(fmt: str, orientation: int) -> None:
    """The output shows the picture upright, as ImageOps.exif_transpose would, for all 8 tags."""
    data = fake.quadrants(fmt=fmt, orientation=orientation)
    result = prepare_image(data)
    assert result.reencoded == (orientation != 1 or fmt not in ("JPEG", "PNG"))
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    got = assert_valid(result).convert("RGB")
    assert got.size == expected.size
    for x in (0.25, 0.75):
        for y in (0.25, 0.75):
            at = (int(x * got.width), int(y * got.height))
            pixel, wanted = got.getpixel(at), expected.getpixel(at)
            assert isinstance(pixel, tuple)
            assert isinstance(wanted, tuple)
            assert max(abs(a - b) for a, b in zip(pixel, wanted, strict=True)) < 25


def test_rotated_camera_jpeg_is_decoded_at_the_scale_rekognition_needs() -> None:
    """A 12 MP photo that must be turned upright is decoded at 1/2 scale (libjpeg's own
    reduction), keeping at least REENCODE_SHORT_SIDE px a side: upright and the same picture."""
    data = fake.quadrants(size=(4000, 3000), orientation=6)
    result = prepare_image(data)
    got = assert_valid(result).convert("RGB")
    assert result.reencoded
    assert (result.width, result.height) == (1500, 2000)  # 4000x3000 at 1/2, turned
    assert min(got.size) >= REENCODE_SHORT_SIDE
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    small = expected.resize(got.size)
    for x in (0.25, 0.75):
        for y in (0.25, 0.75):
            at = (int(x * got.width), int(y * got.height))
            pixel, wanted = got.getpixel(at), small.getpixel(at)
            assert isinstance(pixel, tuple)
            assert isinstance(wanted, tuple)
            assert max(abs(a - b) for a, b in zip(pixel, wanted, strict=True)) < 25


def test_rotated_jpeg_near_the_floor_keeps_its_full_size() -> None:
    """A rotated JPEG whose short side halved would drop under the floor is turned at full size."""
    data = fake.quadrants(size=(2000, REENCODE_SHORT_SIDE + 100), orientation=8)
    result = prepare_image(data)
    assert (result.width, result.height) == (REENCODE_SHORT_SIDE + 100, 2000)


def test_oversize_jpeg_is_shrunk_under_5_mb() -> None:
    """A JPEG over 5 MB comes back as a smaller JPEG under the limit, the picture unchanged."""
    data = fake.big_jpeg(quality=97, grain=14)
    assert len(data) > MAX_BYTES
    result = prepare_image(data)
    assert_valid(result)
    assert result.reencoded
    assert_mean(result, fake.mean_color(data), tolerance=3)


def test_oversize_png_photo_becomes_jpeg_under_5_mb() -> None:
    """An opaque PNG over 5 MB becomes a JPEG; the pixel count alone decides no downscale."""
    data = fake.encode(fake.noisy((128, 128, 128), (1500, 1300), spread=120), "PNG")
    assert len(data) > MAX_BYTES
    result = prepare_image(data)
    assert_valid(result)
    assert result.format == "JPEG"
    assert_mean(result, (128, 128, 128), tolerance=3)


def test_oversize_transparent_png_is_shrunk_and_stays_png() -> None:
    """A transparent PNG over 5 MB is downscaled until it fits, keeping its alpha."""
    img = fake.noisy((128, 128, 128), (1300, 1100), spread=120).convert("RGBA")
    img.putalpha(fake.noisy((200, 200, 200), img.size, spread=50).convert("L"))
    data = fake.encode(img, "PNG")
    assert len(data) > MAX_BYTES
    result = prepare_image(data)
    assert_valid(result)
    assert (result.format, result.width < 1300) == ("PNG", True)


def test_shrinking_is_bounded_and_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a tight byte limit the retries shrink to fit, the same way every time."""
    monkeypatch.setattr(images, "MAX_BYTES", 60_000)
    data = fake.big_jpeg(megapixels=1, grain=20)
    first, second = prepare_image(data), prepare_image(data)
    assert first == second
    assert len(first.data) <= 60_000
    assert min(first.width, first.height) >= MIN_SIDE


def test_shrinking_gives_up_with_a_reason_when_80_px_cannot_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If even the smallest allowed size is too many bytes, the image is refused, not upscaled."""
    monkeypatch.setattr(images, "MAX_BYTES", 500)
    assert rejection(fake.make_image(size=(400, 400))).reason == "image too large to process"


# --- properties -------------------------------------------------------------------------------

MODES = ["RGB", "RGBA", "L", "LA", "P", "CMYK", "1", "I;16"]
FORMATS_FOR = {
    "RGB": ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"],
    "RGBA": ["PNG", "WEBP", "TIFF"],
    "L": ["PNG", "JPEG", "GIF", "BMP", "TIFF"],
    "LA": ["PNG"],
    "P": ["PNG", "GIF", "BMP", "TIFF"],
    "CMYK": ["JPEG", "TIFF"],
    "1": ["PNG", "BMP", "TIFF"],
    "I;16": ["PNG", "TIFF"],
}


@st.composite
def encoded_images(draw: st.DrawFn) -> bytes:
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS_FOR[mode]))
    size = (draw(st.integers(MIN_SIDE, 700)), draw(st.integers(MIN_SIDE, 700)))
    color = tuple(draw(st.integers(0, 255)) for _ in range(3))
    img = fake.noisy((color[0], color[1], color[2]), size, seed=draw(st.integers(0, 9)))
    converted = img.convert("I").convert("I;16") if mode == "I;16" else img.convert(mode)
    return fake.encode(converted, fmt)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encoded_images())
def test_any_image_in_range_comes_out_valid(data: bytes) -> None:
    """Every image with sides 80..700 of any common mode and format comes out within limits."""
    assert_valid(prepare_image(data))


MAGICS = [
    b"",
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\0\0\0\0WEBP",
    b"BM\0\0\0\0\0\0\0\0\0\0\0\0\x28\0\0\0",
    b"II*\0",
    b"\0\0\0\x18ftypheic",
]


@hostile
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MAGICS), st.binary(max_size=600))
def test_random_bytes_only_ever_raise_image_rejected(magic: bytes, tail: bytes) -> None:
    """Junk, even behind a real format's magic bytes, raises ImageRejected and nothing else."""
    with contextlib.suppress(ImageRejected):
        assert_valid(prepare_image(magic + tail))


SEEDS = {
    "jpeg": fake.make_image(size=(96, 96), fmt="JPEG"),
    "png": fake.make_image(size=(96, 96)),
    "gif": fake.animated_gif(size=(96, 96)),
    "webp": fake.webp(size=(96, 96)),
    "bmp": fake.bmp(size=(96, 96)),
    "tiff": fake.tiff(size=(96, 96)),
    "heic": fake.heic(size=(96, 96)),
    "rotated": fake.exif_rotated_jpeg(size=(96, 96)),
}


@hostile
@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
)
def test_damaged_images_only_ever_raise_image_rejected(
    seed: str,
    edits: list[tuple[float, int]],
) -> None:
    """Real images with bytes overwritten come out within limits or are refused cleanly.

    A complete JPEG is passed through without decoding, so damage inside it (which libjpeg
    mostly papers over anyway) is left for Rekognition to judge; anything re-encoded must decode.
    """
    data = bytearray(SEEDS[seed])
    for where, value in edits:
        data[int(where * len(data))] = value
    with contextlib.suppress(ImageRejected):
        result = prepare_image(bytes(data))
        assert_within_limits(result)
        if result.reencoded:
            assert_valid(result)
        else:
            assert result.data == bytes(data)
