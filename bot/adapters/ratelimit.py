"""Paces requests to a per-second quota and adapts the pace to throttling (AIMD).

One process paces itself (a sliding window). Several replicas share one quota through a
`QuotaGate`: a schedule of send slots kept in the database, from which each replica's limiter
claims slots for the requests waiting in it (see bot/adapters/database/quota.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

DECREASE = 0.75  # a throttle cuts the rate to three quarters
# Shared slots are spaced (1 + margin) / rate apart; a slot reached later than LATE_TOLERANCE
# is given up rather than spent late, so jitter in waking up can never crowd two sends
# together. The rest of the margin covers the replicas' clock estimates and the network.
SHARED_MARGIN = 1.03
LATE_TOLERANCE = 0.015
CLAIM_AHEAD_SECONDS = 1.0  # a replica holds at most about a second of future slots


def floor_rate(ceiling: float) -> float:
    """The lowest rate throttling may bring the limiter to: a twentieth, at least 0.2/s."""
    return min(ceiling, max(ceiling / 20, 0.2))


def decreased(rate: float, ceiling: float) -> float:
    """Multiplicative decrease after a throttle."""
    return max(floor_rate(ceiling), rate * DECREASE)


def increased(rate: float, ceiling: float, successes: int = 1) -> float:
    """Additive increase: about a tenth of the quota per second of successes."""
    for _ in range(successes):
        if rate >= ceiling:
            return ceiling
        rate = min(ceiling, rate + ceiling / (10 * rate))
    return rate


def slot_spacing(rate: float, margin: float = SHARED_MARGIN) -> float:
    """Seconds between two shared slots: evenly spaced, at most `rate` in any one second.

    A fractional rate above 1 is rounded down: n evenly spaced sends fit a second only when
    n is whole.
    """
    per_second = math.floor(rate) if rate >= 1 else rate
    return margin / per_second


@dataclass(frozen=True)
class Feedback:
    """What a replica saw since its last claim: requests that went through, and throttles."""

    successes: int = 0
    throttles: int = 0

    def __add__(self, other: Feedback) -> Feedback:
        return Feedback(self.successes + other.successes, self.throttles + other.throttles)


@dataclass(frozen=True)
class GateState:
    """The shared schedule: the deployment's current rate, its last slot, its last cut."""

    rate: float
    last_slot: float
    last_decrease: float


def claim_slots(
    state: GateState,
    *,
    now: float,
    count: int,
    ceiling: float,
    feedback: Feedback,
    margin: float = SHARED_MARGIN,
) -> tuple[GateState, tuple[float, ...]]:
    """Apply a replica's feedback to the shared rate, then hand it the next `count` slots.

    A throttle seen by any replica cuts the rate for all, once per second's worth of slots
    (every request in flight during one overshoot is throttled). Slots follow the last one
    given out, or start now when the schedule is idle, each `slot_spacing(rate)` apart.
    """
    rate = min(state.rate, ceiling) if state.rate > 0 else ceiling
    rate = increased(rate, ceiling, feedback.successes)
    last_decrease = state.last_decrease
    if feedback.throttles and now - last_decrease >= slot_spacing(rate, margin) * max(
        1, math.floor(rate)
    ):
        rate = decreased(rate, ceiling)
        last_decrease = now
    spacing = slot_spacing(rate, margin)
    first = max(now, state.last_slot + spacing)
    slots = tuple(first + i * spacing for i in range(count))
    last = slots[-1] if slots else state.last_slot
    return GateState(rate, last, last_decrease), slots


@dataclass(frozen=True)
class Grant:
    """Slots claimed from the gate, as times on the replica's own monotonic clock."""

    slots: tuple[float, ...]
    rate: float  # the deployment's rate now


class QuotaGate(Protocol):
    """The deployment-wide schedule of send slots that replicas claim from."""

    async def claim(self, count: int, ceiling: float, feedback: Feedback) -> Grant: ...


class RateLimiter:
    """At most `rate` requests in any sliding one-second window, shrinking when throttled.

    A sliding window (rather than a token bucket) is what "no burst beyond one second's worth"
    means: a bucket that starts full lets nearly two seconds' worth through in one second.
    Every request sent counts, retries included: callers acquire once per attempt.

    With a `gate` (several replicas, one quota), slots are claimed from the deployment's shared
    schedule instead, and throttles and successes are told to it, which sets the rate for all.
    """

    def __init__(
        self,
        rate: float,
        *,
        floor: float | None = None,
        decrease: float = 0.75,
        margin: float = 1.02,
        clock: Callable[[], float] = time.monotonic,
        gate: QuotaGate | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.ceiling = rate
        self.rate = rate
        self._floor = floor if floor is not None else floor_rate(rate)
        self._decrease = decrease
        # Sends are timed here but arrive a little later and unevenly at the service: a small
        # margin on the window keeps jitter from tipping an exact-quota server into throttling.
        self._margin = margin
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._last_decrease = -math.inf
        self.throttles = 0
        # With a gate, slots come from the shared schedule instead of the local window.
        self._gate = gate
        self._waiting: deque[asyncio.Future[float]] = deque()
        self._claimer: asyncio.Task[None] | None = None
        self._claimed_until = -math.inf
        self._feedback = Feedback()
        self.missed = 0  # shared slots given up because this process woke too late

    def _window(self) -> tuple[int, float]:
        """How many requests fit in how long: n requests per n / rate seconds."""
        count = max(1, math.floor(self.rate))
        return count, count / self.rate * self._margin

    async def acquire(self) -> None:
        """Wait for a slot. FIFO: waiters are served in the order they asked."""
        if self._gate is not None:
            await self._acquire_shared()
            return
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
        if self._gate is not None:
            self._feedback += Feedback(throttles=1)  # the gate cuts the shared rate
            return
        now = self._clock()
        if now - self._last_decrease < self._window()[1]:
            return
        self._last_decrease = now
        self.rate = max(self._floor, self.rate * self._decrease)

    def succeeded(self) -> None:
        """A request went through: speed up additively, about a tenth of the quota per second."""
        if self._gate is not None:
            self._feedback += Feedback(successes=1)  # told to the gate with the next claim
            return
        if self.rate < self.ceiling:
            self.rate = min(self.ceiling, self.rate + self.ceiling / (10 * self.rate))

    # -- shared quota ----------------------------------------------------------------------

    async def _acquire_shared(self) -> None:
        """Wait for a shared slot; one reached too late is given up and another one claimed.

        Spending a slot late could put two sends (this one and the next replica's) closer
        together than the schedule allows; an unused slot only costs a little throughput.
        """
        while True:
            slot = await self._next_slot()
            delay = slot - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._clock() - slot <= LATE_TOLERANCE:
                return
            self.missed += 1

    async def _next_slot(self) -> float:
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        if self._claimer is None or self._claimer.done():
            self._claimer = asyncio.create_task(self._claim_for_waiters(), name="quota-claims")
        try:
            return await waiter
        finally:
            if not waiter.done():  # cancelled while waiting: nobody will hand it a slot
                self._waiting.remove(waiter)

    async def _claim_for_waiters(self) -> None:
        """Claim slots for the waiting requests, a second's worth at most per claim, and never
        more than about a second ahead, so replicas interleave on the shared schedule."""
        assert self._gate is not None
        failures = 0
        while self._waiting:
            ahead = self._claimed_until - self._clock() - CLAIM_AHEAD_SECONDS
            if ahead > 0:
                await asyncio.sleep(ahead)
                continue
            count = min(len(self._waiting), max(1, math.floor(self.rate)))
            feedback, self._feedback = self._feedback, Feedback()
            try:
                grant = await self._gate.claim(count, self.ceiling, feedback)
            except Exception as exc:  # the database is away: wait for it, never go unpaced
                self._feedback += feedback
                failures += 1
                delay = min(5.0, 0.1 * 2**failures)
                log.warning("rate gate unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.rate = grant.rate
            if grant.slots:
                self._claimed_until = grant.slots[-1]
            for slot in grant.slots:
                while self._waiting:
                    waiter = self._waiting.popleft()
                    if not waiter.done():
                        waiter.set_result(slot)
                        break
