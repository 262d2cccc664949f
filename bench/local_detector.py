"""The local detector's speed and memory: images per second and peak memory (README, bench/).

    .venv/bin/python -m bench.local_detector [--images 60] [--size 1024] [--workers 1,2]

Needs the extra (`pip install -e '.[nudenet]'`). Each run is a fresh process (so its peak
resident memory is its own): it loads the model, warms it up on one image, then sends `--images`
distinct generated JPEGs through NudeNetDetector.detect (preparation, decode, inference, label
mapping: what `modbot serve` and `modbot scan` do per image) with every image submitted at once,
so the thread pool and its semaphore are what bound the work.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time

from PIL import Image, ImageDraw


def _image(index: int, size: int) -> bytes:
    """A photo-like JPEG (noise under shapes), different for every index."""
    rng = random.Random(index)
    img = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.randrange(size), rng.randrange(size)
        r = rng.randrange(size // 10, size // 3)
        color = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


async def _measure(images: int, size: int, workers: int) -> dict[str, float]:
    from bot.adapters.images.budget import DecodeBudget, install
    from bot.adapters.nudenet import NudeNetDetector

    install(DecodeBudget(256 * 1024 * 1024))  # the default MODBOT_DECODE_MEMORY_MB
    before_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loaded_at = time.perf_counter()
    detector = NudeNetDetector.installed(workers=workers)
    load_seconds = time.perf_counter() - loaded_at
    data = [_image(i, size) for i in range(images + 1)]
    await detector.detect(data[-1], 40.0)  # warm-up: first-run allocations are not throughput
    started = time.perf_counter()
    await asyncio.gather(*(detector.detect(item, 40.0) for item in data[:images]))
    seconds = time.perf_counter() - started
    detector.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "workers": workers,
        "images": images,
        "size_px": size,
        "images_per_second": images / seconds,
        "ms_per_image": 1000 * seconds / images,
        "model_load_seconds": load_seconds,
        "peak_rss_mib": peak / 1024,
        "rss_before_model_mib": before_load / 1024,
    }


def _child(args: argparse.Namespace) -> None:
    result = asyncio.run(_measure(args.images, args.size, args.child_workers))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--size", type=int, default=1024, help="side of each test JPEG (px)")
    parser.add_argument("--workers", default="1,2", help="thread pool sizes to try")
    parser.add_argument("--child-workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_workers:
        _child(args)
        return
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print("| workers | images/s | ms/image | peak RSS (MiB) | model load (s) |")
    print("|---|---|---|---|---|")
    for workers in (int(w) for w in args.workers.split(",")):
        done = subprocess.run(
            [
                sys.executable, "-m", "bench.local_detector",
                "--images", str(args.images), "--size", str(args.size),
                "--child-workers", str(workers),
            ],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {workers} | {r['images_per_second']:.1f} | {r['ms_per_image']:.0f} | "
            f"{r['peak_rss_mib']:.0f} | {r['model_load_seconds']:.1f} |"
        )


if __name__ == "__main__":
    main()
