"""Peak RSS of the real bot under a burst of images that are expensive to decode.

Run: `.venv/bin/python -m bench.decode_burst [--budget-mb 256] [--copies 4]`. Not a test: the
figures depend on the machine. Uploads, all at once, `--copies` distinct files of each kind
below to a fresh `modbot serve --http` with MODBOT_DECODE_MEMORY_MB=`--budget-mb`, waits for
every alert or "Could not scan" note, and reads the bot's VmHWM. The claim under test: the
peak stays within the idle RSS plus the budget.

Kinds (the first is the issue's file: 304 KiB that once peaked at 941 MB):
- 8944x8944 RGBA PNG, EXIF orientation 6, nearly flat (refused under 256 MB, scanned above);
- 8944x8944 16-bit grey PNG, EXIF orientation 6;
- 5000x4000 RGBA PNG, EXIF orientation 6.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from bench import load
from bench.stack import (
    memory_kib,
    processes,
    start_bot,
    start_emulator,
    start_fake_slack,
)
from tests.fakes.images import encode

GREY = (155, 155, 155)  # 39,835 of 65,535 in 16 bits
GREY_16 = 39_835


def _rotated(img: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(img, "PNG", exif=exif.tobytes())


def _rgba(size: tuple[int, int]) -> Image.Image:
    """Near the flag colour, with a faint gradient in red: a picture, yet it compresses well."""
    red = Image.linear_gradient("L").resize(size).point(lambda v: 32 + v // 16)
    green, blue, alpha = (Image.new("L", size, c) for c in (40, 200, 255))
    return Image.merge("RGBA", (red, green, blue, alpha))


def kinds() -> dict[str, bytes]:
    return {
        "issue-rgba-8944": _rotated(_rgba((8944, 8944))),
        "grey16-8944": _rotated(Image.new("I", (8944, 8944), GREY_16).convert("I;16")),
        "rgba-5000x4000": _rotated(_rgba((5000, 4000))),
    }


def distinct(png: bytes, n: int) -> bytes:
    """The same PNG with a tEXt chunk before IEND: other bytes (another SHA-256), same pixels."""
    body = b"Comment\0" + f"copy {n}".encode()
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:-12] + chunk + png[-12:]


async def run(budget_mb: int, copies: int) -> dict[str, Any]:
    made = kinds()
    files = [distinct(data, n) for data in made.values() for n in range(copies)]
    with tempfile.TemporaryDirectory() as tmp, processes(Path(tmp)) as procs:
        slack = start_fake_slack(procs, 0)
        aws = start_emulator(procs)
        async with aiohttp.ClientSession() as session:
            base = f"{aws.url}/_emulator"
            await load.post_json(session, f"{base}/reset", {})
            for color in (load.FLAG_COLOR, GREY):
                script = {"color": list(color), "labels": load.FLAG_LABELS}
                await load.post_json(session, f"{base}/script", script)
        uploads = await load.upload_all(slack.url, "decode", files)
        bot = await start_bot(
            procs,
            "modbot",
            slack_url=slack.url,
            aws_url=aws.url,
            tps=50,
            label="decode-burst",
            extra_env={"MODBOT_DECODE_MEMORY_MB": str(budget_mb)},
        )
        idle = memory_kib(bot.child.pid)
        since = time.time()
        started = time.monotonic()
        await load.send_events(bot.events_url, uploads, concurrency=len(uploads))
        names = {u.name for u in uploads}
        posted = await load.wait_for_alerts(bot.health_url, slack.url, names, since)
        seconds = time.monotonic() - started
        memory = memory_kib(bot.child.pid)
        procs.stop(bot.child)
    idle_mib = idle["VmRSS"] / 1024
    peak_mib = memory["VmHWM"] / 1024
    return {
        "budget_mib": budget_mb,
        "files": {name: len(data) for name, data in made.items()},
        "images": len(files),
        "alerts": len(names & posted.alerts.keys()),
        "could_not_scan": len(posted.could_not_scan),
        "could_not_scan_example": posted.could_not_scan[:1],
        "seconds": round(seconds, 1),
        "idle_rss_mib": round(idle_mib),
        "peak_rss_mib": round(peak_mib),
        "peak_over_idle_mib": round(peak_mib - idle_mib),
        "within_budget": peak_mib - idle_mib <= budget_mb,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-mb", type=int, default=256, help="MODBOT_DECODE_MEMORY_MB")
    parser.add_argument("--copies", type=int, default=4, help="distinct files of each kind")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.budget_mb, args.copies))
    print(json.dumps(result, indent=2))
    return 0 if result["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
