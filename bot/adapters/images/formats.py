"""What format an image is, from its first bytes, and whether its container is whole."""

from __future__ import annotations

import struct
import zlib

from bot.core.errors import ImageRejected

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\0", "TIFF"),
    (b"MM\0*", "TIFF"),
    (b"II+\0", "TIFF"),  # BigTIFF (64-bit offsets), which Pillow's TIFF plugin reads too
    (b"MM\0+", "TIFF"),
)
_BMP_INFO_SIZES = {12, 40, 52, 56, 64, 108, 124}  # every BITMAPINFOHEADER variant
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_ANY_BRANDS = {b"mif1", b"msf1"}  # generic HEIF containers: the compatible brands say which codec


def sniff_image(data: bytes) -> str | None:
    """Name the image format from magic bytes alone (no decoding), or None if it is not one."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM" and len(data) >= 18 and _u32le(data, 14) in _BMP_INFO_SIZES:
        return "BMP"  # "BM" alone would also match text, so the info header size must fit too
    if data[4:8] == b"ftyp":
        return _sniff_ftyp(data)
    return None


def _u32le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _sniff_ftyp(data: bytes) -> str | None:
    major = data[8:12]
    end = min(len(data), int.from_bytes(data[:4], "big"), 256)
    brands = {data[i : i + 4] for i in range(16, end - 3, 4)} | {major}
    if major in _AVIF_BRANDS or (major in _ANY_BRANDS and brands & _AVIF_BRANDS):
        return "AVIF"
    if major in _HEIF_BRANDS | _ANY_BRANDS:
        return "HEIF"
    return None


def check_container(data: bytes, fmt: str) -> bytes | None:
    """Catch cut-off files whose container records its length; return a PNG's eXIf if any.

    This needs no decoding, and it holds even where LOAD_TRUNCATED_IMAGES is on (pillow_heif
    then decodes a truncated HEIC as black instead of failing).
    """
    if fmt == "PNG":
        return _walk_png(data)
    if fmt == "WEBP" and 8 + _u32le(data, 4) > len(data):
        raise ImageRejected("truncated image", "WebP data ends before its RIFF size")
    if fmt in ("HEIF", "AVIF"):
        _walk_boxes(data)
    return None


def _walk_png(data: bytes) -> bytes | None:
    """Check every chunk's length and CRC up to IEND (no inflating); return the eXIf body."""
    view, pos, exif = memoryview(data), 8, None
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        if zlib.crc32(view[pos + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            raise ImageRejected("truncated image", f"PNG {kind.decode('latin-1')} chunk is corrupt")
        if kind == b"eXIf":
            exif = bytes(view[pos + 8 : end - 4])
        if kind == b"IEND":
            return exif
        pos = end
    raise ImageRejected("truncated image", "PNG data ends before its IEND chunk")


def _walk_boxes(data: bytes) -> None:
    """Check that the top-level ISO BMFF boxes (HEIF, AVIF) fit in the file."""
    pos = 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise ImageRejected("truncated image", "HEIF data ends inside a box header")
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:  # a 64-bit size follows the type
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:  # the last box runs to the end of the file
            return
        if size < 8 or pos + size > len(data):
            raise ImageRejected("truncated image", "HEIF data ends inside a box")
        pos += size
