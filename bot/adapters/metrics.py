"""Prometheus metrics (prometheus-client): every metric modbot exposes on GET /metrics, in one file.

Counters and the latency histogram are moved by the parts that do the work, through the
bot.core.metrics port (an increment is a lock and an add: nothing per event worth measuring).
The gauges that describe the database (queue depth, open reviews, the oldest one's age) are
read from it when Prometheus scrapes, with two small indexed queries, so they are right for the
whole deployment whichever replica is scraped, and cost nothing between scrapes.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.aiohttp import make_aiohttp_handler
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.database.schema import reviews, scans
from bot.core.metrics import CallResult

# Seconds from a scan's intake to its alert in Slack: a download, a detector call and a post
# take about a second; a queue behind the Rekognition rate or retries take minutes.
REFRESH_TIMEOUT_SECONDS = 2.0  # a scrape must not hang on a database that stopped answering
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class PrometheusMetrics:
    """The bot.core.metrics port over a registry of its own (one per running bot)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created`: doubles output
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # CPU seconds, resident memory, open files
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.scans = Counter(
            "modbot_scans",
            "Scans finished, by outcome (allow, review, flag, skipped, failed) and channel mode",
            ["outcome", "mode"],
            registry=r,
        )
        self.detector_calls = Counter(
            "modbot_detector_calls",
            "Requests sent to the detector (retries included), by how they ended",
            ["detector", "result"],
            registry=r,
        )
        self.detector_throttles = Counter(
            "modbot_detector_throttles",
            "Detector requests refused for the rate (ThrottlingException and the like)",
            ["detector"],
            registry=r,
        )
        self.alerts = Counter(
            "modbot_alerts", "Alerts posted to the alerts channel", ["decision"], registry=r
        )
        self.event_to_alert = Histogram(
            "modbot_event_to_alert_seconds",
            "Seconds from a scan's intake (Slack event, command or shortcut) to its alert",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.verdicts = Counter(
            "modbot_verdicts",
            "Reviews ended, by outcome (violation, no_violation, failed)",
            ["outcome"],
            registry=r,
        )
        self.removals = Counter(
            "modbot_removals",
            "Removal attempts, by result (removed, failed)",
            ["result"],
            registry=r,
        )
        self.hma_lookups = Counter(
            "modbot_hma_lookups",
            "HMA hash lookups, by result (match, no_match, error)",
            ["result"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "modbot_queue_depth",
            "Scans accepted and not finished (queued, running or waiting for a retry)",
            registry=r,
        )
        self.open_reviews = Gauge(
            "modbot_open_reviews", "Reviews waiting for a verdict", registry=r
        )
        self.oldest_review_age = Gauge(
            "modbot_oldest_open_review_age_seconds",
            "Age of the oldest review waiting for a verdict (0 when none)",
            registry=r,
        )
        for result in CallResult:  # a series exists from the start: rate() needs two points
            self.detector_calls.labels("rekognition", result.value)

    # -- the port ---------------------------------------------------------------------------

    def scan_finished(self, outcome: str, mode: str | None = None) -> None:
        self.scans.labels(outcome, mode or "").inc()

    def detector_call(self, detector: str, result: CallResult) -> None:
        self.detector_calls.labels(detector, result.value).inc()
        if result is CallResult.THROTTLED:
            self.detector_throttles.labels(detector).inc()

    def alert_posted(self, decision: str, seconds: float | None) -> None:
        self.alerts.labels(decision).inc()
        if seconds is not None:
            self.event_to_alert.observe(max(0.0, seconds))

    def verdict_reported(self, outcome: str) -> None:
        self.verdicts.labels(outcome).inc()

    def removal(self, result: str) -> None:
        self.removals.labels(result).inc()

    def hma_lookup(self, result: str) -> None:
        self.hma_lookups.labels(result).inc()

    # -- scrape time ------------------------------------------------------------------------

    async def refresh(self, engine: AsyncEngine) -> None:
        """Set the database gauges (the status columns are indexed)."""
        async with engine.connect() as conn:
            depth = await conn.scalar(
                select(func.count()).select_from(scans).where(scans.c.status == "pending")
            )
            row = (
                await conn.execute(
                    select(func.count(), func.min(reviews.c.created_at)).where(
                        reviews.c.status == "open"
                    )
                )
            ).one()
        self.queue_depth.set(int(depth or 0))
        self.open_reviews.set(int(row[0] or 0))
        self.oldest_review_age.set(max(0.0, time.time() - row[1]) if row[1] is not None else 0.0)


def metrics_handler(metrics: PrometheusMetrics, engine: AsyncEngine) -> Handler:
    """GET /metrics: the database gauges refreshed, then the registry in Prometheus text format.
    An unreachable database leaves those gauges at their last values; the rest is still served."""
    render = make_aiohttp_handler(metrics.registry)

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT_SECONDS):
                await metrics.refresh(engine)
        except Exception as exc:  # the database is down: /healthz says so; counters still count
            request.app.logger.debug("metrics: database gauges not refreshed: %r", exc)
        return await render(request)

    return handler
