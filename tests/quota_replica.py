"""One stand-in replica for the shared-quota test: its own process, engine and limiter.

Run as `python -m tests.quota_replica DATABASE_URL QUOTA TASKS`. It connects, prints `ready`,
reads `START END` (monotonic times, shared by processes on one machine) from standard input,
then lets TASKS coroutines acquire from the limiter from START to END, and prints the times of
the sends it was granted as one JSON list.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bot.adapters.database.engine import async_url, make_engine
from bot.adapters.database.quota import DatabaseQuotaGate
from bot.adapters.ratelimit import RateLimiter


async def main(url: str, quota: float, tasks: int) -> None:
    engine = make_engine(async_url(url))
    limiter = RateLimiter(quota, gate=DatabaseQuotaGate(engine))
    async with engine.connect():
        pass  # the pool's first connection is made before the clock starts
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start, end = (float(part) for part in line.split())
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    sent: list[float] = []

    async def send() -> None:
        while True:
            await limiter.acquire()
            now = time.monotonic()
            if now >= end:
                return
            sent.append(now)

    await asyncio.gather(*(send() for _ in range(tasks)))
    print(json.dumps({"sent": sent, "missed": limiter.missed}), flush=True)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
