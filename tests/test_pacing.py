"""The one concurrency rule: detector calls in flight and scan workers, from the paced rate."""

from __future__ import annotations

import pytest

from bot.core.pacing import calls_in_flight, scan_workers


@pytest.mark.parametrize(
    ("rate", "calls"),
    [(0.5, 4), (1, 4), (2, 4), (2.1, 5), (5, 10), (10.2, 21), (31.5, 63), (32, 64), (500, 64)],
)
def test_calls_in_flight_are_twice_the_rate_between_4_and_64(rate: float, calls: int) -> None:
    """2x the rate, rounded up, never under 4 nor over 64."""
    assert calls_in_flight(rate) == calls


@pytest.mark.parametrize(("rate", "workers"), [(0.5, 8), (2, 8), (5, 14), (30, 64), (500, 64)])
def test_scan_workers_are_the_calls_in_flight_plus_four_between_8_and_64(
    rate: float, workers: int
) -> None:
    """A few more scans than detector calls, so downloads and posts overlap detection."""
    assert scan_workers(rate) == workers
