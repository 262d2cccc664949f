"""The rate limiter: a sliding one-second window that adapts to throttling."""

from __future__ import annotations

import asyncio

import pytest

from bot.adapters.ratelimit import Feedback, GateState, RateLimiter, claim_slots, slot_spacing
from tests.fakes.quota import FakeQuotaGate


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


# -- the shared schedule (several replicas, one quota) ----------------------------------------


def test_shared_slots_are_evenly_spaced_and_start_now_when_idle() -> None:
    """An idle schedule starts at once; busy, slots follow the last one, (1.03 / rate) apart."""
    state = GateState(rate=10, last_slot=0.0, last_decrease=0.0)
    state, slots = claim_slots(state, now=100.0, count=3, ceiling=10, feedback=Feedback())
    assert slots == pytest.approx((100.0, 100.103, 100.206))
    state, more = claim_slots(state, now=100.01, count=2, ceiling=10, feedback=Feedback())
    assert more == pytest.approx((100.309, 100.412))  # another replica's claim follows on
    assert state.last_slot == pytest.approx(100.412)


@pytest.mark.parametrize(("rate", "spacing"), [(50, 1.03 / 50), (7.5, 1.03 / 7), (0.5, 2.06)])
def test_no_second_holds_more_than_the_rate_of_shared_slots(rate: float, spacing: float) -> None:
    """Whole requests per second: a fractional rate above 1 rounds down, below 1 spaces out."""
    assert slot_spacing(rate) == pytest.approx(spacing)


def test_a_throttle_from_any_replica_cuts_the_shared_rate_once_per_window() -> None:
    """AIMD on the shared rate: one cut per second's worth of slots, successes recover it."""
    state = GateState(rate=20, last_slot=0.0, last_decrease=0.0)
    state, _ = claim_slots(state, now=10.0, count=1, ceiling=20, feedback=Feedback(throttles=4))
    assert state.rate == pytest.approx(15)
    state, _ = claim_slots(state, now=10.5, count=1, ceiling=20, feedback=Feedback(throttles=1))
    assert state.rate == pytest.approx(15)  # the same overshoot, told by another replica
    state, _ = claim_slots(state, now=12.0, count=1, ceiling=20, feedback=Feedback(throttles=1))
    assert state.rate == pytest.approx(11.25)
    state, _ = claim_slots(state, now=13.0, count=1, ceiling=20, feedback=Feedback(successes=500))
    assert state.rate == pytest.approx(20)
    state, _ = claim_slots(state, now=14.0, count=1, ceiling=8, feedback=Feedback())
    assert state.rate == pytest.approx(8)  # never above the claiming replica's quota


async def test_a_gated_limiter_spends_the_slots_it_claims(clock: FakeClock) -> None:
    """With a gate, sends follow the shared schedule, and results are told with the next claim."""
    gate = FakeQuotaGate(clock)
    limiter = RateLimiter(10, clock=clock, gate=gate)
    times = []
    for _ in range(4):
        await limiter.acquire()
        times.append(clock.now)
        limiter.succeeded()
    limiter.throttled()
    await limiter.acquire()
    assert times == pytest.approx([0.0, 0.103, 0.206, 0.309])
    assert gate.feedback[-1] == Feedback(successes=1, throttles=1)
    assert sum(f.successes for f in gate.feedback) == 4
    assert limiter.rate == pytest.approx(7.5)


async def test_a_slot_reached_too_late_is_given_up(clock: FakeClock) -> None:
    """Waking up late must not crowd two sends together: the slot is dropped, another claimed."""
    gate = FakeQuotaGate(clock)
    limiter = RateLimiter(10, clock=clock, gate=gate)
    await limiter.acquire()
    real_sleep = asyncio.sleep

    async def oversleep(seconds: float) -> None:
        clock.now += max(seconds, 0.0) + (0.05 if limiter.missed == 0 else 0.0)
        await real_sleep(0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bot.adapters.ratelimit.asyncio.sleep", oversleep)
        await limiter.acquire()
    assert limiter.missed == 1
    assert clock.now == pytest.approx(0.206)  # the next slot, on time


async def test_an_unreachable_gate_is_waited_for_never_bypassed(clock: FakeClock) -> None:
    """Without the database no request goes out unpaced; claims resume when it is back."""
    gate = FakeQuotaGate(clock)
    gate.fail = 2
    limiter = RateLimiter(10, clock=clock, gate=gate)
    await limiter.acquire()
    assert gate.fail == 0
    assert clock.now > 0.2  # two failed claims waited before the third went through
