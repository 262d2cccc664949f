"""Generated images with no person in them, for calibrating NudeNet's cut-off and timing it.

Shared by `bench/nudenet_calibration.py` and `bench/local_detector.py`; nothing here is a
photograph. Skin-coloured ellipses are the hard case: round, smooth, skin-toned shapes are what
the model's body-part classes look for.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

from PIL import Image, ImageDraw, ImageFilter

SKIN_TONES = ((224, 172, 140), (198, 134, 66), (141, 85, 36), (255, 219, 172))
BACKGROUNDS = ((255, 255, 255), (30, 30, 30), (90, 140, 200))


def _jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def _noise(size: int, seed: int) -> Image.Image:
    raw = random.Random(seed).randbytes(size * size * 3)
    return Image.frombytes("RGB", (size, size), raw)


Color = tuple[int, int, int]


def _ellipses(size: int, skin: Color, back: Color, n: int, *, tall: bool = False) -> Image.Image:
    img = Image.new("RGB", (size, size), back)
    draw = ImageDraw.Draw(img)
    if n == 1:
        draw.ellipse((size * 0.2, size * 0.3, size * 0.8, size * 0.7), fill=skin)
    else:  # two side by side, touching: the shape most like a body part
        draw.ellipse((size * 0.1, size * 0.25, size * 0.52, size * 0.75), fill=skin)
        draw.ellipse((size * 0.48, size * 0.25, size * 0.9, size * 0.75), fill=skin)
    if tall:
        img = img.rotate(90)
    return img.filter(ImageFilter.GaussianBlur(size / 60))


def images(size: int = 480, *, wide: bool = True) -> Iterator[tuple[str, bytes]]:
    """(name, JPEG bytes) for every generated image, the same on every run (`wide`: also the
    ellipse pairs turned upright and at two more sizes)."""
    yield "blank-white", _jpeg(Image.new("RGB", (size, size), (255, 255, 255)))
    yield "blank-black", _jpeg(Image.new("RGB", (size, size), (0, 0, 0)))
    for seed in range(3):
        yield f"noise-{seed}", _jpeg(_noise(size, seed))
    for i, skin in enumerate(SKIN_TONES):
        yield f"skin-fill-{i}", _jpeg(Image.new("RGB", (size, size), skin))
        for j, back in enumerate(BACKGROUNDS):
            for n in (1, 2):
                yield f"skin-ellipse-{i}-{j}-x{n}", _jpeg(_ellipses(size, skin, back, n))
            if wide:
                yield (
                    f"skin-ellipse-{i}-{j}-x2-upright",
                    _jpeg(_ellipses(size, skin, back, 2, tall=True)),
                )
                for other in (320, 800):
                    yield (
                        f"skin-ellipse-{i}-{j}-x2-{other}px",
                        _jpeg(_ellipses(other, skin, back, 2)),
                    )
    gradient = Image.linear_gradient("L").resize((size, size)).convert("RGB")
    yield "gradient", _jpeg(gradient)
