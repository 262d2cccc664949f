"""How long and how often transient failures are retried: one rule for every path.

A transient failure (Slack 429/5xx or unreachable, AWS throttling/5xx/timeouts, a download
hiccup) is retried with exponential backoff and jitter until `limit` seconds have passed since
the first failure; only then is it reported. A server's own hint (Slack's Retry-After) is
honoured when it asks for a longer wait than the backoff would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """MODBOT_RETRY_LIMIT_SECONDS and MODBOT_RETRY_MAX_DELAY_SECONDS, as one value."""

    limit: float = 3600.0  # keep trying this long after the first transient failure
    base: float = 1.0  # the first retry waits about this long
    cap: float = 60.0  # no single wait is longer than this (unless the server asks)

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        """The wait before retry number `attempt` (1 = the first retry)."""
        backoff = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        jittered = random.uniform(backoff / 2, backoff)  # noqa: S311 - jitter, not security
        if retry_after is not None and retry_after > jittered:
            return retry_after
        return jittered

    def exhausted(self, first_failure_at: float, now: float) -> bool:
        """Whether a failure that first happened at `first_failure_at` should now be reported."""
        return now - first_failure_at >= self.limit
