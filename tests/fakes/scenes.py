"""Synthetic photographs for the near-duplicate tests and the PDQ benchmark, and the transforms
people apply when they re-post one (resize, recompress, rotate, mirror, crop, brighten, pad).

Each scene is drawn from its seed alone (Pillow, no files): a gradient sky, a horizon, and a few
dozen shapes of random kinds, sizes and colours, so distinct seeds give visually distinct
images with plenty of detail (PDQ quality 100), as photos have.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

Transform = Callable[[Image.Image], Image.Image]


def scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A distinct synthetic scene for each seed."""
    rng = random.Random(seed)
    width, height = size
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):  # a vertical gradient
        t = y / max(1, height - 1)
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    horizon = rng.randrange(height // 3, 2 * height // 3)
    ground = tuple(rng.randrange(256) for _ in range(3))
    draw.polygon(
        [(0, horizon), (width, horizon + rng.randrange(-60, 60)), (width, height), (0, height)],
        fill=ground,
    )
    for _ in range(rng.randrange(12, 40)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(10, width // 3), rng.randrange(10, height // 3)
        kind = rng.randrange(4)
        box = (x - w // 2, y - h // 2, x + w // 2, y + h // 2)
        if kind == 0:
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            draw.rectangle(box, fill=colour)
        elif kind == 2:
            draw.line(
                [(x, y), (rng.randrange(width), rng.randrange(height))],
                fill=colour,
                width=rng.randrange(2, 12),
            )
        else:
            points = [
                (rng.randrange(width), rng.randrange(height)) for _ in range(rng.randrange(3, 6))
            ]
            draw.polygon(points, fill=colour)
    return image.filter(ImageFilter.GaussianBlur(0.8))


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def recompressed(quality: int) -> Transform:
    return lambda image: decoded(jpeg(image, quality))


def resized(factor: float) -> Transform:
    def apply(image: Image.Image) -> Image.Image:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return image.resize(size, Image.Resampling.LANCZOS)

    return apply


def rotated(degrees: int) -> Transform:
    return lambda image: image.rotate(degrees, expand=True)


def mirrored(image: Image.Image) -> Image.Image:
    return ImageOps.mirror(image)


def cropped(fraction: float) -> Transform:
    """Cut `fraction` of the width and height off, split between the sides."""

    def apply(image: Image.Image) -> Image.Image:
        dx, dy = round(image.width * fraction / 2), round(image.height * fraction / 2)
        return image.crop((dx, dy, image.width - dx, image.height - dy))

    return apply


def brightened(factor: float) -> Transform:
    return lambda image: ImageEnhance.Brightness(image).enhance(factor)


def screenshot(image: Image.Image) -> Image.Image:
    """As a screenshot of a chat window shows it: a uniform frame around, a bar on top."""
    pad_x, pad_top, pad_bottom = image.width // 12, image.height // 6, image.height // 12
    frame = Image.new(
        "RGB", (image.width + 2 * pad_x, image.height + pad_top + pad_bottom), (245, 245, 245)
    )
    ImageDraw.Draw(frame).rectangle((0, 0, frame.width, pad_top // 2), fill=(60, 60, 70))
    frame.paste(image, (pad_x, pad_top))
    return frame


def chained(*steps: Transform) -> Transform:
    def apply(image: Image.Image) -> Image.Image:
        for step in steps:
            image = step(image)
        return image

    return apply


TRANSFORMS: dict[str, Transform] = {
    "JPEG quality 50": recompressed(50),
    "resize 50 %": resized(0.5),
    "rotate 90°": rotated(90),
    "rotate 180°": rotated(180),
    "mirror": mirrored,
    "crop 5 %": cropped(0.05),
    "brightness +20 %": brightened(1.2),
    "brightness -20 %": brightened(0.8),
    "screenshot padding": screenshot,
}
