"""How much work may be under way at once for a detector paced at a given rate: one rule."""

from __future__ import annotations

import math


def calls_in_flight(rate: float) -> int:
    """Detector calls (threads, pooled connections) that may be under way at once at `rate`/s.

    Twice the rate, because calls under way = rate x seconds per call: with 2x, calls taking up
    to two seconds each (Rekognition usually answers in well under one) still find a free thread
    whenever the rate limiter lets one go, so the limiter sets the pace, never a shortage of
    threads. At least 4, so a low rate still overlaps a slow call with the next; at most 64
    threads and connections, whatever the rate.
    """
    return min(64, max(4, math.ceil(rate * 2)))


def scan_workers(rate: float) -> int:
    """Scans run at once: one per detector call in flight, plus a few (at least 8 in all, at
    most 64) downloading or posting while the detector is busy."""
    return min(64, max(8, calls_in_flight(rate) + 4))
