"""One measurement each: a fresh bot (modbot or naive) on a fresh database, load, figures, stop.

Every phase resets the emulator (Rekognition latency, TPS quota, scripted labels, call log) so
both bots meet the same conditions, and times alerts by the fake Slack's own clock
(`ApiCall.time`, on arrival of chat.postMessage, before its injected latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import load
from bench.load import Sent, Upload, percentile
from bench.stack import (
    BotProcess,
    Child,
    Processes,
    base_env,
    cpu_seconds,
    memory_kib,
    start_bot,
)

THROTTLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "TooManyRequestsException",
}


@dataclass
class Env:
    """The running stand-ins and the benchmark's knobs shared by every phase."""

    procs: Processes
    slack_url: str
    aws_url: str
    rekognition_latency: float
    concurrency: int
    profiler: str | None = None  # py-spy's path: every modbot run is sampled (--profile)
    profile_dir: Path | None = None


async def configure_emulator(env: Env, tps: float | None) -> None:
    async with aiohttp.ClientSession() as session:
        base = f"{env.aws_url}/_emulator"
        await load.post_json(session, f"{base}/reset", {})
        script = {"color": list(load.FLAG_COLOR), "labels": load.FLAG_LABELS}
        await load.post_json(session, f"{base}/script", script)
        await load.post_json(session, f"{base}/latency", {"seconds": env.rekognition_latency})
        await load.post_json(session, f"{base}/tps-quota", {"tps": tps})


async def rekognition_calls(env: Env) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        body = await load.get_json(session, f"{env.aws_url}/_emulator/calls")
    calls: list[dict[str, Any]] = body["calls"]
    return calls


def call_summary(calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    errors = Counter(c["error"] for c in calls if c["error"])
    ok = sorted(c["time"] for c in calls if not c["error"])
    span = ok[-1] - ok[0] if len(ok) > 1 else 0.0
    return {
        "requests": len(calls),
        "succeeded": len(ok),
        "throttled": sum(n for code, n in errors.items() if code in THROTTLE_CODES),
        "errors": dict(errors),
        # Arrival rate of accepted calls at the emulator, first to last (steady state).
        "accepted_per_second": (len(ok) - 1) / span if span else None,
    }


_profilers: dict[int, Child] = {}  # bot pid -> the py-spy sampling it


async def _bot(env: Env, kind: str, tps: float, label: str) -> BotProcess:
    await configure_emulator(env, tps)
    bot = await start_bot(
        env.procs, kind, slack_url=env.slack_url, aws_url=env.aws_url, tps=tps, label=label
    )
    if env.profiler and env.profile_dir and kind == "modbot":
        env.profile_dir.mkdir(parents=True, exist_ok=True)
        out = env.profile_dir / f"{label}-{bot.child.pid}.txt"
        # py-spy pauses the bot for each sample (100 a second): its timings are a little worse
        # while profiled, but only so can it tell idle threads (waits) from busy ones.
        argv = [env.profiler, "record", "--format", "raw", "--output", str(out)]
        argv += ["--pid", str(bot.child.pid)]
        _profilers[bot.child.pid] = env.procs.spawn(f"py-spy-{label}", argv, env=base_env())
        await asyncio.sleep(1.0)  # py-spy attaches before the load starts
    return bot


async def _finish(env: Env, bot: BotProcess) -> dict[str, int]:
    memory = memory_kib(bot.child.pid)
    code = env.procs.stop(bot.child)
    if code not in (0, -15, None):
        print(f"  note: {bot.child.name} exited with {code}; log {bot.child.log_path}")
    profiler = _profilers.pop(bot.child.pid, None)
    if profiler is not None:  # it writes its file once the process it samples has gone
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(profiler.proc.wait, 60.0)
        env.procs.stop(profiler)
    return memory


def _latencies(sent: Sequence[Sent], posted: load.Posted) -> dict[str, Any]:
    acks = [s.ack_seconds for s in sent]
    to_alert = [posted.alerts[s.name] - s.sent_at for s in sent if s.name in posted.alerts]
    return {
        "ack_p50_ms": _ms(percentile(acks, 50)),
        "ack_p99_ms": _ms(percentile(acks, 99)),
        "ack_max_ms": _ms(max(acks) if acks else None),
        "non_200_acks": sum(1 for s in sent if s.status != 200),
        "event_to_alert_p50_s": percentile(to_alert, 50),
        "event_to_alert_p99_s": percentile(to_alert, 99),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


async def scan_run(
    env: Env,
    kind: str,
    *,
    tps: float,
    uploads: Sequence[Upload],
    label: str,
    interval: float = 0.0,
) -> dict[str, Any]:
    """Send one event per upload (a burst, or spaced by `interval`) and wait for every alert."""
    bot = await _bot(env, kind, tps, label)
    try:
        since = time.time()
        cpu_start = cpu_seconds(bot.child.pid)
        sent = await load.send_events(
            bot.events_url, uploads, concurrency=env.concurrency, interval=interval
        )
        cpu_acked = cpu_seconds(bot.child.pid)
        names = {u.name for u in uploads}
        posted = await load.wait_for_alerts(bot.health_url, env.slack_url, names, since)
        cpu_end = cpu_seconds(bot.child.pid)
        calls = await rekognition_calls(env)
    finally:
        memory = await _finish(env, bot)
    alerted = sorted(posted.alerts[n] for n in names if n in posted.alerts)
    first_sent = min(s.sent_at for s in sent)
    elapsed = alerted[-1] - first_sent if alerted else None
    rate = len(alerted) / elapsed if elapsed else None
    return {
        "bot": kind,
        "tps": tps,
        "events": len(uploads),
        "alerts": len(alerted),
        "missing_alerts": len(names - posted.alerts.keys()),
        "could_not_scan": len(posted.could_not_scan),
        "could_not_scan_examples": posted.could_not_scan[:3],
        "seconds_first_event_to_last_alert": elapsed,
        "images_per_second": rate,
        "share_of_quota": rate / tps if rate else None,
        **_latencies(sent, posted),
        **_cpu(cpu_start, cpu_acked, cpu_end, acked_n=len(sent), alerted=len(alerted)),
        "rekognition": call_summary(calls),
        "memory_kib": memory,
    }


def _cpu(
    start: float | None, acked: float | None, end: float | None, *, acked_n: int, alerted: int
) -> dict[str, Any]:
    """The bot's CPU: per scanned image over the whole run (intake, scan, alert), and per event
    over the sending window (its acks, plus whatever scans ran meanwhile)."""
    if start is None or acked is None or end is None:
        return {}
    return {
        "cpu_seconds": end - start,
        "cpu_ms_per_image": (end - start) * 1000 / alerted if alerted else None,
        "cpu_ms_per_acked_event": (acked - start) * 1000 / acked_n if acked_n else None,
    }


async def reposts(
    env: Env, kind: str, *, tps: float, uploads: Sequence[Upload], distinct: int
) -> dict[str, Any]:
    """Posts of `distinct` images (repeated), burst; how many Rekognition calls they cost."""
    result = await scan_run(env, kind, tps=tps, uploads=uploads, label=f"{kind}-reposts")
    calls = result["rekognition"]
    per_100 = 100 / len(uploads)
    result.update(
        {
            "posts": len(uploads),
            "distinct_images": distinct,
            "calls_per_100_posts": calls["requests"] * per_100,
            "billed_calls_per_100_posts": calls["succeeded"] * per_100,
        }
    )
    return result


async def memory_under_queue(
    env: Env, kind: str, *, tps: float, uploads: Sequence[Upload], hold: float
) -> dict[str, Any]:
    """Queue many scans behind a low TPS and sample the bot's RSS while the queue is full."""
    bot = await _bot(env, kind, tps, f"{kind}-rss")
    samples: list[dict[str, int]] = []
    queued_max = 0
    try:
        idle = memory_kib(bot.child.pid)
        stop = asyncio.Event()

        async def sample() -> None:
            nonlocal queued_max
            async with aiohttp.ClientSession() as session:
                while not stop.is_set():
                    samples.append(memory_kib(bot.child.pid))
                    health = await load.get_json(session, bot.health_url)
                    queued_max = max(queued_max, int(health.get("queued", 0)))
                    await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        sent = await load.send_events(bot.events_url, uploads, concurrency=env.concurrency)
        await asyncio.sleep(hold)
        stop.set()
        await sampler
    finally:
        memory = await _finish(env, bot)
    rss = [s.get("VmRSS", 0) for s in samples]
    return {
        "bot": kind,
        "tps": tps,
        "events": len(uploads),
        "non_200_acks": sum(1 for s in sent if s.status != 200),
        "queued_max": queued_max,
        "idle_rss_kib": idle.get("VmRSS"),
        "sampled_rss_max_kib": max(rss) if rss else None,
        "peak_rss_kib": memory.get("VmHWM"),
    }
