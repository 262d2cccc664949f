"""Paces requests to a per-second quota and adapts the pace to throttling (AIMD)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most `rate` requests in any sliding one-second window, shrinking when throttled.

    A sliding window (rather than a token bucket) is what "no burst beyond one second's worth"
    means: a bucket that starts full lets nearly two seconds' worth through in one second.
    Every request sent counts, retries included: callers acquire once per attempt.
    """

    def __init__(
        self,
        rate: float,
        *,
        floor: float | None = None,
        decrease: float = 0.75,
        margin: float = 1.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.ceiling = rate
        self.rate = rate
        self._floor = floor if floor is not None else min(rate, max(rate / 20, 0.2))
        self._decrease = decrease
        # Sends are timed here but arrive a little later and unevenly at the service: a small
        # margin on the window keeps jitter from tipping an exact-quota server into throttling.
        self._margin = margin
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._last_decrease = -math.inf
        self.throttles = 0

    def _window(self) -> tuple[int, float]:
        """How many requests fit in how long: n requests per n / rate seconds."""
        count = max(1, math.floor(self.rate))
        return count, count / self.rate * self._margin

    async def acquire(self) -> None:
        """Wait for a slot. FIFO: waiters are served in the order they asked."""
        async with self._lock:
            while True:
                now = self._clock()
                count, window = self._window()
                while self._sent and self._sent[0] <= now - window:
                    self._sent.popleft()
                if len(self._sent) < count:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + window - now)

    def throttled(self) -> None:
        """The service pushed back: slow down multiplicatively, once per window.

        One overshoot gets every request then in flight throttled; cutting the rate for each
        of them would answer a single burst of jitter with a collapse.
        """
        self.throttles += 1
        now = self._clock()
        if now - self._last_decrease < self._window()[1]:
            return
        self._last_decrease = now
        self.rate = max(self._floor, self.rate * self._decrease)

    def succeeded(self) -> None:
        """A request went through: speed up additively, about a tenth of the quota per second."""
        if self.rate < self.ceiling:
            self.rate = min(self.ceiling, self.rate + self.ceiling / (10 * self.rate))
