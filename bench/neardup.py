"""Near-duplicate benchmark: the hash index's speed and memory, and PDQ's recall and false matches.

Run: `.venv/bin/python -m bench.neardup` (about 10 minutes on 2 busy cores; `--quick` for ~2).
Not a test: the figures depend on the machine. Results go to bench/results/neardup.json and
neardup.md (the tables, also printed).

Index (bot/adapters/hashindex.py through the bank, bot/orchestration/bank.py):
- a SQLite database with N bank rows of uniformly random 256-bit hashes (quality 100) is made
  with the bot's own migrations; start-up is HashBank.refresh() on it: every row read through
  the bot's store and indexed, as `modbot serve` does at start;
- lookups are the bot's: 8 query hashes (one per rotation and mirror image) within distance
  31; half are bank rows with up to 24 bits flipped (hits), half random (misses);
- memory is the process's peak RSS over the Python baseline (numpy and the bot imported), and
  the index's own arrays.

Quality: `--corpus` synthetic scenes (tests/fakes/scenes.py: a gradient sky, a horizon and
12-40 random shapes each, 640x480, drawn from a seed, saved as JPEG quality 85), each hashed
the way the bot hashes (prepared, decoded at most 512 px, PDQ with dihedral and inside-border
hashes). Every transform of tests/fakes/scenes.py is applied to every scene and saved as JPEG
quality 90 (JPEG quality 50 at 50); recall is the share of copies within 31 bits of their own
original in the bank. False matches: pairs of distinct originals within 31 bits, and copies
within 31 bits of another scene's original.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bot.adapters.database.bank import BankStore
from bot.adapters.database.scans import Store
from bot.adapters.hashindex import HexHashIndex
from bot.adapters.images.pdq import hash_prepared
from bot.adapters.images.prepare import prepare_image
from bot.core.pdq import DEFAULT_MATCH_DISTANCE, distance
from bot.orchestration.bank import HashBank
from tests.fakes.scenes import TRANSFORMS, jpeg, scene

RESULTS = Path(__file__).parent / "results"
TARGETS = {100_000: 2.0, 1_000_000: 20.0}  # lookup p99 in ms


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process. Not ru_maxrss: Linux carries that over
    from the parent across fork and exec, so a child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return usage.ru_utime + usage.ru_stime


def _random_hexes(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 256, (n, 32), dtype=np.uint8).tobytes().hex()
    return [raw[i * 64 : (i + 1) * 64] for i in range(n)]


async def _make_bank(path: Path, hexes: list[str]) -> None:
    store = Store.from_url(f"sqlite+aiosqlite:///{path}")
    await store.upgrade()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO hash_bank (pdq, quality, violation, labels, first_seen) "
            "VALUES (?, 100, 1, '[]', 0)",
            ((h,) for h in hexes),
        )


async def index_case(n: int, queries: int, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    hexes = _random_hexes(rng, n)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bank.db"
        await _make_bank(path, hexes)
        store = Store.from_url(f"sqlite+aiosqlite:///{path}")
        index = HexHashIndex()
        bank = HashBank(BankStore(store), distance=DEFAULT_MATCH_DISTANCE, index=index)
        started, cpu_started = time.perf_counter(), _cpu_s()
        await bank.refresh()
        startup = time.perf_counter() - started
        startup_cpu = _cpu_s() - cpu_started
        await store.close()
    assert len(bank) == n
    times, cpu = [], []
    hits = 0
    for q in range(-20, queries):  # 20 warm-up lookups, not counted
        if q % 2 == 0:  # a near copy of a banked hash: flip up to 24 bits
            value = int(hexes[int(rng.integers(n))], 16)
            for bit in rng.choice(256, int(rng.integers(0, 25)), replace=False):
                value ^= 1 << int(bit)
            first = f"{value:064x}"
        else:
            first = _random_hexes(rng, 1)[0]
        variants = [first, *_random_hexes(rng, 7)]  # the other 7 orientations
        t, c = time.perf_counter(), time.thread_time()
        found = index.within_hex(variants, DEFAULT_MATCH_DISTANCE)
        if q >= 0:
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.thread_time() - c) * 1000)
            hits += bool(found) and q % 2 == 0
    times.sort()
    cpu.sort()
    return {
        "n": n,
        "startup_s": round(startup, 2),
        # CPU time of the whole process (every thread): what the start-up costs undisturbed
        "startup_cpu_s": round(startup_cpu, 2),
        "lookup_p50_ms": round(statistics.median(times), 2),
        "lookup_p99_ms": round(times[int(len(times) * 0.99) - 1], 2),
        # CPU time of the lookup's thread: what it costs when the machine is not shared
        "lookup_cpu_p50_ms": round(statistics.median(cpu), 2),
        "lookup_cpu_p99_ms": round(cpu[int(len(cpu) * 0.99) - 1], 2),
        "queries": queries,
        "near_copies_found": f"{hits}/{(queries + 1) // 2}",
        "index_mb": round(index.nbytes / 2**20, 1),
    }


def _memory_child(n: int) -> dict[str, Any]:
    """Load a bank of n in a fresh interpreter (the database is made here, outside it)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bank.db"
        asyncio.run(_make_bank(path, _random_hexes(np.random.default_rng(2), n)))
        out = subprocess.run(
            [sys.executable, "-m", "bench.neardup", "--memory-child", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def memory_child(path: str) -> None:
    """Peak RSS of loading the bank at `path`, over the RSS just before."""
    baseline = _status_mb("VmRSS")
    store = Store.from_url(f"sqlite+aiosqlite:///{path}")
    bank = HashBank(BankStore(store), distance=DEFAULT_MATCH_DISTANCE)
    await bank.refresh()
    await store.close()
    peak, now = _status_mb("VmHWM"), _status_mb("VmRSS")
    print(
        json.dumps(
            {
                "n": len(bank),
                "baseline_mb": round(baseline),
                "peak_mb": round(peak),
                "after_mb": round(now),
            }
        )
    )


def _hashes(data: bytes) -> Any:
    return hash_prepared(prepare_image(data))


def quality_case(corpus: int, seed0: int = 10_000) -> dict[str, Any]:
    radius = DEFAULT_MATCH_DISTANCE
    originals = []
    banked: list[list[str]] = []
    for k in range(corpus):
        hashes = _hashes(jpeg(scene(seed0 + k)))
        originals.append(hashes)
        banked.append([hashes.pdq, *hashes.trimmed[:1]])
    index = HexHashIndex()
    ids = [k for k, codes in enumerate(banked) for _ in codes]
    index.add_hex(ids, [code for codes in banked for code in codes])
    low_quality = sum(1 for h in originals if not h.matchable)
    recall: dict[str, dict[str, Any]] = {}
    wrong = 0
    for name, transform in TRANSFORMS.items():
        found = 0
        distances = []
        for k in range(corpus):
            image = transform(scene(seed0 + k))
            copy = _hashes(jpeg(image, 50 if "JPEG" in name else 90))
            matches = dict(index.within_hex(list(copy.queries), radius))
            found += k in matches
            wrong += sum(1 for other in matches if other != k)
            distances.append(min(distance(b, q) for b in banked[k] for q in copy.queries))
        recall[name] = {
            "recall": round(found / corpus, 3),
            "median_distance": statistics.median(distances),
            "max_distance": max(distances),
        }
    pairs = 0
    closest = 256
    for k, hashes in enumerate(originals):
        for other, bits in index.within_hex(list(hashes.queries), 255):
            if other > k:
                closest = min(closest, bits)
                pairs += bits <= radius
    return {
        "corpus": corpus,
        "low_quality": low_quality,
        "recall": recall,
        "false_matches_between_originals": pairs,
        "closest_distinct_pair_bits": closest,
        "false_matches_of_copies": wrong,
    }


def _table(results: dict[str, Any]) -> str:
    lines = ["| measure | target | measured |", "|---|---|---|"]
    for case in results["index"]:
        n = case["n"]
        target = TARGETS.get(n)
        lines.append(
            f"| lookup p99 at {n:,} hashes (p50); CPU time p99 (p50) | ≤ {target:g} ms | "
            f"{case['lookup_p99_ms']} ms ({case['lookup_p50_ms']} ms); "
            f"{case['lookup_cpu_p99_ms']} ms ({case['lookup_cpu_p50_ms']} ms) |"
            if target
            else f"| lookup p99 at {n:,} (p50) | | "
            f"{case['lookup_p99_ms']} ({case['lookup_p50_ms']}) ms |"
        )
    for case in results["index"]:
        if case["n"] == 1_000_000:
            lines.append(
                f"| start-up with a 1e6 bank; CPU time | ≤ 10 s | {case['startup_s']} s; "
                f"{case['startup_cpu_s']} s |"
            )
    memory = results.get("memory")
    if memory:
        over = memory["peak_mb"] - memory["baseline_mb"]
        lines.append(
            f"| memory at 1e6 hashes (peak RSS over baseline; held after) | ≤ 300 MB | {over} MB; "
            f"{memory['after_mb'] - memory['baseline_mb']} MB "
            f"(peak {memory['peak_mb']} MB; index arrays "
            f"{next(c['index_mb'] for c in results['index'] if c['n'] == 1_000_000)} MB) |"
        )
    quality = results["quality"]
    cpus = results["machine"]["cpus"]
    lines.append(f"\nLoad average at the start: {results['load_average']} on {cpus} CPUs.")
    lines += [
        "",
        f"Corpus: {quality['corpus']} synthetic scenes, {quality['low_quality']} below quality 50.",
        "",
        "| transform | recall at distance 31 | median / max distance |",
        "|---|---|---|",
    ]
    for name, row in quality["recall"].items():
        lines.append(
            f"| {name} | {row['recall'] * 100:.1f} % | "
            f"{row['median_distance']} / {row['max_distance']} |"
        )
    lines += [
        "",
        f"False matches between distinct originals: {quality['false_matches_between_originals']} "
        f"(closest pair {quality['closest_distinct_pair_bits']} bits); copies matching another "
        f"scene: {quality['false_matches_of_copies']}.",
    ]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e5 only, 100 scenes")
    parser.add_argument("--index-only", action="store_true", help="skip the quality corpus")
    parser.add_argument("--corpus", type=int, default=None, help="scenes (default 300)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        await memory_child(args.memory_child)
        return
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    results: dict[str, Any] = {
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "node": platform.machine(),
        },
        "commit": _commit(),
        "index": [],
    }
    for n in sizes:
        print(f"index: {n:,} hashes ...", flush=True)
        results["index"].append(await index_case(n, args.queries))
    if not args.quick:
        print("memory: 1,000,000 hashes in a fresh process ...", flush=True)
        results["memory"] = await asyncio.to_thread(_memory_child, 1_000_000)
    corpus = args.corpus or (100 if args.quick else 300)
    earlier = RESULTS / "neardup.json"
    if args.index_only and earlier.exists():  # keep the quality figures of the last full run
        results["quality"] = json.loads(earlier.read_text())["quality"]
    else:
        print(f"quality: {corpus} scenes x {len(TRANSFORMS)} transforms ...", flush=True)
        random.seed(0)
        results["quality"] = quality_case(corpus)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "neardup.json").write_text(json.dumps(results, indent=2))
    table = _table(results)
    (RESULTS / "neardup.md").write_text(table + "\n")
    print(table)


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    asyncio.run(main())
