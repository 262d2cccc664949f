"""The deployment-wide quota in PostgreSQL: replicas together stay within it and reach it."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from bot.adapters.database.engine import async_url, make_engine
from bot.adapters.database.quota import ClockOffset, DatabaseQuotaGate, quota_gate
from bot.adapters.database.scans import Store
from bot.adapters.ratelimit import Feedback

ROOT = Path(__file__).resolve().parent.parent


def most_in_one_second(times: list[float]) -> int:
    """The largest number of sends in any half-open one-second window."""
    times = sorted(times)
    best, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def test_most_in_one_second_counts_a_sliding_window() -> None:
    """The checker itself: windows slide, and a send exactly one second later is outside."""
    assert most_in_one_second([0.0, 0.5, 0.99, 1.0, 1.2]) == 4
    assert most_in_one_second([0.0, 1.0, 2.0]) == 1


def test_the_quickest_round_trip_sets_the_clock_offset() -> None:
    """A slow round trip says little about when the server read its clock; a quick one wins."""
    offset = ClockOffset()
    assert offset.add(sent=10.0, received=10.2, server=110.0) == pytest.approx(99.9)
    assert offset.add(sent=11.0, received=11.002, server=112.0) == pytest.approx(100.999)
    assert offset.add(sent=12.0, received=12.5, server=113.0) == pytest.approx(100.999)
    # A minute later the old samples are gone: clocks drift, recent samples are truer.
    assert offset.add(sent=80.0, received=80.1, server=181.0) == pytest.approx(100.95)


async def test_sqlite_has_no_shared_gate(tmp_path: Path) -> None:
    """One process on SQLite: the local limiter alone keeps the quota."""
    store = Store.from_url(async_url(f"sqlite:///{tmp_path}/state.db"))
    try:
        assert quota_gate(store.engine) is None
    finally:
        await store.close()


async def _upgraded(url: str) -> Store:
    store = Store.from_url(async_url(url))
    await store.upgrade()
    return store


@pytest.mark.postgres
async def test_a_throttle_seen_by_one_replica_slows_every_replica(postgres_url: str) -> None:
    """The shared rate falls for all after one replica's throttle, and recovers with successes."""
    store = await _upgraded(postgres_url)
    other = make_engine(async_url(postgres_url))
    try:
        first, second = DatabaseQuotaGate(store.engine), DatabaseQuotaGate(other)
        assert (await first.claim(1, 20, Feedback())).rate == 20
        assert (await first.claim(1, 20, Feedback(throttles=3))).rate == pytest.approx(15)
        grant = await second.claim(2, 20, Feedback())
        assert grant.rate == pytest.approx(15)
        assert grant.slots[1] - grant.slots[0] == pytest.approx(1.03 / 15)
        assert (await second.claim(1, 20, Feedback(successes=100))).rate == pytest.approx(20)
    finally:
        await other.dispose()
        await store.close()


@pytest.mark.postgres
async def test_replicas_together_stay_within_the_quota_and_reach_it(postgres_url: str) -> None:
    """Three processes, each with its own engine and limiter, acquire at once for 4 s against a
    quota of 40/s: no one-second window holds more than 40 sends, and they reach 90 % of it."""
    quota, replicas, seconds = 40, 3, 4.0
    (await _upgraded(postgres_url)).engine.sync_engine.dispose()
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.quota_replica",
            postgres_url,
            str(quota),
            "30",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(replicas)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            async with asyncio.timeout(30):
                assert (await process.stdout.readline()).strip() == b"ready"
        start = time.monotonic() + 0.3
        end = start + seconds
        outputs = []
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(f"{start} {end}\n".encode())
            await process.stdin.drain()
        for process in processes:
            async with asyncio.timeout(30):
                out, _ = await process.communicate()
            assert process.returncode == 0
            outputs.append(json.loads(out.decode().splitlines()[-1]))
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    sent = [at for output in outputs for at in output["sent"]]
    assert most_in_one_second(sent) <= quota
    assert len(sent) >= 0.9 * quota * seconds, (len(sent), [o["missed"] for o in outputs])
    assert all(output["sent"] for output in outputs)  # every replica had its share
