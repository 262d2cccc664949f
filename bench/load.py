"""Load for the benchmark: distinct images on the fake Slack, signed event bursts, and what came
back (acks from the bot, alerts and Rekognition calls recorded by the stand-ins)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.stack import ALERTS, GENERAL, POSTER, SIGNING_SECRET
from tests.fakes import slack_payloads as payloads
from tests.fakes.images import encode, noisy

# A colour the emulator is scripted to flag (as in tests/harness.py): every image alerts, so
# every event has an alert to time. The label is one the built-in policy flags at 90 %.
FLAG_COLOR = (40, 40, 200)
FLAG_LABELS = {"Exposed Male Genitalia": 97.26}
NAME = re.compile(r"bench-[a-z]+-\d{5}\.jpg")


def distinct_jpegs(count: int, size: tuple[int, int]) -> list[bytes]:
    """`count` JPEGs of the flag colour, each with different bytes (so a different SHA-256).

    One photo-like encoding, with the image's index in a JPEG comment (COM) segment after the
    start-of-image marker: as valid as the original, same pixels for the emulator's colour
    match, and cheap to make by the thousand. Pixel tweaks are not enough: quantisation often
    erases them and produces identical files.
    """
    base = encode(noisy(FLAG_COLOR, size), "JPEG", quality=85)
    assert base[:2] == b"\xff\xd8"
    images = []
    for n in range(count):
        text = f"modbot bench image {n}".encode()
        segment = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
        images.append(base[:2] + segment + base[2:])
    return images


@dataclass(frozen=True)
class Upload:
    """A file hosted on the fake Slack, ready to be announced in a message event."""

    name: str
    file: dict[str, Any]


async def upload(session: aiohttp.ClientSession, slack_url: str, name: str, data: bytes) -> Upload:
    params = {"name": name, "mimetype": "image/jpeg", "channel": GENERAL, "user": POSTER}
    async with session.post(f"{slack_url}/_fake/files", params=params, data=data) as response:
        response.raise_for_status()
        body = await response.json()
    return Upload(name, body["file"])


async def upload_all(
    slack_url: str, prefix: str, images: Sequence[bytes], *, name_offset: int = 0
) -> list[Upload]:
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(16)

        async def one(i: int, data: bytes) -> Upload:
            async with sem:
                return await upload(session, slack_url, f"bench-{prefix}-{i:05d}.jpg", data)

        return list(await asyncio.gather(*(one(name_offset + i, d) for i, d in enumerate(images))))


@dataclass(frozen=True)
class Sent:
    name: str
    sent_at: float  # time.time() just before the request left
    ack_seconds: float  # until the bot's response (status line and body) arrived
    status: int


def signed_event(file: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A message (subtype file_share) event announcing one upload, signed as Slack signs it."""
    body = payloads.message_event(GENERAL, POSTER, files=[file])
    raw, content_type = payloads.http_body("events", body)
    headers = {**payloads.signed_headers(SIGNING_SECRET, raw), "Content-Type": content_type}
    return raw.encode(), headers


async def send_events(
    url: str, uploads: Sequence[Upload], *, concurrency: int, interval: float = 0.0
) -> list[Sent]:
    """POST one event per upload: `concurrency` in flight, or one every `interval` seconds."""
    prepared = [(u.name, *signed_event(u.file)) for u in uploads]
    results: list[Sent] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post(name: str, raw: bytes, headers: dict[str, str]) -> None:
            sent_at = time.time()
            start = time.perf_counter()
            try:
                async with session.post(url, data=raw, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            results.append(Sent(name, sent_at, time.perf_counter() - start, status))

        if interval:
            for item in prepared:
                tick = time.perf_counter()
                await post(*item)
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))
            return results
        queue = list(reversed(prepared))

        async def worker() -> None:
            while queue:
                await post(*queue.pop())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


# ------------------------------------------------------------------------- what came back


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        response.raise_for_status()
        return await response.json()


async def post_json(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with session.post(url, json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {await response.text()}")


@dataclass(frozen=True)
class Posted:
    """Messages the bot posted to the alerts channel after `since`, by image name."""

    alerts: dict[str, float]  # image name -> ApiCall.time of its first alert
    could_not_scan: list[str]  # texts of "Could not scan" notes
    other: int


async def posted_since(session: aiohttp.ClientSession, slack_url: str, since: float) -> Posted:
    calls = await get_json(session, f"{slack_url}/_fake/calls?method=chat.postMessage")
    alerts: dict[str, float] = {}
    notes: list[str] = []
    other = 0
    for call in calls:
        params = call["params"]
        if call["time"] < since or params.get("channel") != ALERTS or params.get("thread_ts"):
            continue
        text = str(params.get("text") or "")
        if text.startswith("Could not scan"):
            notes.append(text)
            continue
        match = NAME.search(json.dumps(params))
        if match is None:
            other += 1
            continue
        alerts.setdefault(match.group(0), call["time"])
    return Posted(alerts, notes, other)


async def wait_for_alerts(
    bot_health_url: str,
    slack_url: str,
    names: set[str],
    since: float,
    *,
    stall: float = 40.0,
    limit: float = 900.0,
) -> Posted:
    """Wait until every name has an alert (or a Could-not-scan note per missing one).

    While the bot still has work queued only its /healthz is polled (cheap), so that the
    stand-ins are not kept busy serialising their logs during the measurement. Gives up after
    `stall` seconds without progress, or `limit` seconds in all.
    """
    started = time.monotonic()
    last_progress, last_count = started, -1
    async with aiohttp.ClientSession() as session:
        while True:
            await asyncio.sleep(0.25)
            health = await get_json(session, bot_health_url)
            if health.get("queued", 0) > 0 and time.monotonic() - started < limit:
                continue
            posted = await posted_since(session, slack_url, since)
            done = len(names & posted.alerts.keys()) + len(posted.could_not_scan)
            if done >= len(names):
                return posted
            now = time.monotonic()
            if done != last_count:
                last_progress, last_count = now, done
            if now - last_progress > stall or now - started > limit:
                return posted
            await asyncio.sleep(0.75)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def image_size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h)
