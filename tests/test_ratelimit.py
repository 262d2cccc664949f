"""The rate limiter: a sliding one-second window that adapts to throttling."""

from __future__ import annotations

import asyncio

import pytest

from bot.adapters.ratelimit import RateLimiter


class FakeClock:
    """A clock the test moves by hand; asyncio.sleep is replaced to advance it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    real_sleep = asyncio.sleep

    async def advance(seconds: float) -> None:
        clock.now += max(seconds, 0.0)
        await real_sleep(0)

    monkeypatch.setattr("bot.adapters.ratelimit.asyncio.sleep", advance)
    return clock


async def test_no_window_of_one_second_holds_more_than_the_rate(clock: FakeClock) -> None:
    """Sends are spread so that any one-second window holds at most `rate` of them."""
    limiter = RateLimiter(5, margin=1.0, clock=clock)
    times = []
    for _ in range(23):
        await limiter.acquire()
        times.append(clock.now)
    for start in times:
        assert sum(1 for t in times if start <= t < start + 1.0) <= 5
    assert times[-1] == pytest.approx(4.0)  # 23 sends at 5/s: the 21st..23rd in the fifth second


async def test_fractional_rates_space_single_requests(clock: FakeClock) -> None:
    """Below one request per second, requests are spaced 1/rate apart."""
    limiter = RateLimiter(0.5, margin=1.0, clock=clock)
    times = []
    for _ in range(3):
        await limiter.acquire()
        times.append(clock.now)
    assert times == pytest.approx([0.0, 2.0, 4.0])


def test_throttling_slows_down_and_success_recovers(clock: FakeClock) -> None:
    """AIMD: a throttle cuts the rate multiplicatively; successes bring it back to the ceiling."""
    limiter = RateLimiter(20, clock=clock)
    limiter.throttled()
    assert limiter.rate == pytest.approx(15)
    for _ in range(30):
        clock.now += 2.0  # separate windows: each throttle counts
        limiter.throttled()
    assert limiter.rate == pytest.approx(1.0)  # never below the floor (a twentieth)
    for _ in range(500):
        limiter.succeeded()
    assert limiter.rate == pytest.approx(20)
    assert limiter.throttles == 31


def test_a_cluster_of_throttles_in_one_window_cuts_the_rate_once(clock: FakeClock) -> None:
    """Every request in flight during one overshoot is throttled; the rate drops only once."""
    limiter = RateLimiter(20, clock=clock)
    for _ in range(10):
        limiter.throttled()
        clock.now += 0.05
    assert limiter.rate == pytest.approx(15)
    assert limiter.throttles == 10
