"""The one retry rule: exponential backoff with jitter, a cap, Retry-After, and a time limit."""

from __future__ import annotations

from bot.core.retry import RetryPolicy


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    """Each wait lies between half and all of base * 2^(n-1), never above the cap."""
    policy = RetryPolicy(limit=100, base=1.0, cap=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)


def test_a_longer_retry_after_wins_a_shorter_one_does_not() -> None:
    """Slack's Retry-After is honoured when it asks for more than the backoff would wait."""
    policy = RetryPolicy(limit=100, base=1.0, cap=2.0)
    assert policy.delay(1, retry_after=30.0) == 30.0
    assert policy.delay(1, retry_after=0.0) <= 1.0


def test_exhausted_only_after_the_limit() -> None:
    """A failure is reported only once the limit has passed since the first failure."""
    policy = RetryPolicy(limit=3600)
    assert not policy.exhausted(1000.0, 1000.0 + 3599)
    assert policy.exhausted(1000.0, 1000.0 + 3600)
