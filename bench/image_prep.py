"""Time prepare_image on 12-MP camera JPEGs against a naive full decode and re-encode.

Run: `.venv/bin/python -m bench.image_prep [runs]`. Not a test: timings depend on the machine.
The goal (issue: image preparation performance) is the first row: under 40 ms median and at
least 3x faster than the naive path. The other rows show the re-encoding paths for context.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

from PIL import Image, ImageOps

from bot.adapters.images.prepare import prepare_image
from tests.fakes.images import big_jpeg


def naive(data: bytes) -> bytes:
    """What preparation would cost with no shortcuts: decode everything, encode it again."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90)  # these camera JPEGs are RGB already: no convert()
    return out.getvalue()


def full_size_turn(data: bytes) -> bytes:
    """How modbot turned a rotated photo before it decoded at a reduced scale: in full."""
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img)
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=90)
    return out.getvalue()


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm caches and lazy plugin imports
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    rotated = Image.Exif()
    rotated[0x0112] = 6
    cases = {
        "12 MP JPEG that fits (pass-through)": big_jpeg(),
        "12 MP JPEG tagged Orientation 6": big_jpeg(exif=rotated.tobytes()),
        "12 MP JPEG over 5 MB": big_jpeg(quality=97, grain=14),
    }
    print(f"median of {runs} runs")
    for name, data in cases.items():
        prepared = prepare_image(data)
        ours = median_ms(partial(prepare_image, data), runs)
        theirs = median_ms(partial(naive, data), runs)
        print(
            f"{name}: {len(data) / 1e6:.1f} MB -> {prepared.width}x{prepared.height} "
            f"{len(prepared.data) / 1e6:.1f} MB reencoded={prepared.reencoded}\n"
            f"    prepare_image {ours:6.1f} ms   naive {theirs:6.1f} ms"
            f"   ratio {theirs / ours:5.1f}x"
        )
    # The alternatives for a photo tagged with an EXIF orientation (issue 15). Leaving the turn to
    # Rekognition is not one: AWS documents EXIF orientation handling for DetectLabels and the
    # face operations, not for DetectModerationLabels.
    data = cases["12 MP JPEG tagged Orientation 6"]
    turned = median_ms(partial(full_size_turn, data), runs)
    print(f"12 MP JPEG tagged Orientation 6, turned at full size (before): {turned:6.1f} ms")


if __name__ == "__main__":
    main()
