"""Which frames of an animation are judged, and how they are laid out into one image.

Viewers see an animation, not its first frame, and an APNG's default image is not shown at all
where the animation plays. So modbot judges the frames people see: the first displayed frame
and a few sampled evenly across the animation, up to the last.

They are tiled into one image rather than sent as one detection each: the product promises one
Rekognition call per image (each call is billed), and a tile of four frames stays far inside
Rekognition's limits (10,000 px a side, 5 MB). Each frame keeps at least a quarter of the
tile, enough for the moderation model, which looks at whole-picture content.
"""

from __future__ import annotations

from PIL import Image

FRAMES_JUDGED = 4
# A frame is shrunk to this many pixels on its long side before tiling: 2x2 frames of 1,600 px
# give a tile of at most 3,200 px a side, whose JPEG fits 5 MB with room to spare.
CELL_SIDE = 1600
# Seeking decodes every frame before the one sought. 100 megapixels of frames is about 1.5 s of
# decoding on one core; a longer animation is judged on the frames within that much.
DECODE_PIXELS = 100_000_000


def displayed_frames(n_frames: int, hidden_default: bool, canvas_pixels: int) -> range:
    """The frames a viewer sees (an APNG's default image is not one of them), within the
    decoding bound."""
    first = 1 if hidden_default and n_frames > 1 else 0
    affordable = max(first + 1, DECODE_PIXELS // max(1, canvas_pixels))
    return range(first, min(n_frames, affordable))


def sample(frames: range, count: int = FRAMES_JUDGED) -> tuple[int, ...]:
    """The first displayed frame and frames spread evenly across the rest, the last included."""
    if len(frames) <= count:
        return tuple(frames)
    last = len(frames) - 1
    picks = {frames[round(i * last / (count - 1))] for i in range(count)}
    return tuple(sorted(picks))


def layout(count: int, cell: tuple[int, int]) -> tuple[int, int]:
    """(columns, rows) with no empty cell: 2x2 for four, otherwise one row or one column,
    along the cells' short side so the tile stays near square."""
    if count == 4:
        return 2, 2
    return (1, count) if cell[0] >= cell[1] else (count, 1)


def tile(cells: list[Image.Image]) -> Image.Image:
    """The cells (same size; L, RGB or RGBA) pasted into one image, row by row."""
    mode = "RGBA" if any(cell.mode == "RGBA" for cell in cells) else "RGB"
    width, height = cells[0].size
    cols, rows = layout(len(cells), cells[0].size)
    out = Image.new(mode, (cols * width, rows * height))
    for i, cell in enumerate(cells):
        out.paste(cell, ((i % cols) * width, (i // cols) * height))
    return out
