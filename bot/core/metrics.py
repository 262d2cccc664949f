"""The metrics port: what the bot counts, as the places that count it see it (no Prometheus here).

The Prometheus adapter is bot/adapters/metrics.py. Every label value passed here comes from a
small fixed set (outcomes, decisions, detector names), never a scan id or a user id, so the
number of time series stays bounded whatever the traffic.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class CallResult(StrEnum):
    """How one detector request ended (each retry is a request of its own)."""

    OK = "ok"
    THROTTLED = "throttled"
    ERROR = "error"


class Metrics(Protocol):
    def scan_finished(self, outcome: str, mode: str | None = None) -> None:
        """A scan's one outcome: allow | review | flag (with the channel's mode), skipped,
        or failed."""

    def detector_call(self, detector: str, result: CallResult) -> None:
        """One request sent to a detector and how it ended."""

    def alert_posted(self, decision: str, seconds: float | None) -> None:
        """An alert reached Slack; `seconds` since the scan was accepted (None: unknown)."""

    def verdict_reported(self, outcome: str) -> None:
        """A review ended: violation | no_violation | failed."""

    def removal(self, result: str) -> None:
        """A removal attempt: removed | failed."""

    def hma_lookup(self, result: str) -> None:
        """An HMA hash lookup: match | no_match | error."""


class NoMetrics:
    """Counts nothing: for parts built without a metrics registry (tests, one-off commands)."""

    def scan_finished(self, outcome: str, mode: str | None = None) -> None:
        pass

    def detector_call(self, detector: str, result: CallResult) -> None:
        pass

    def alert_posted(self, decision: str, seconds: float | None) -> None:
        pass

    def verdict_reported(self, outcome: str) -> None:
        pass

    def removal(self, result: str) -> None:
        pass

    def hma_lookup(self, result: str) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()
