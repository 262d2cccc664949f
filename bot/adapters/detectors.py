"""The detector MODBOT_DETECTOR names, built one way for `modbot serve` and `modbot scan`."""

from __future__ import annotations

import importlib.util

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.database.quota import quota_gate
from bot.adapters.nudenet import INSTALL_HINT, NudeNetDetector
from bot.adapters.ratelimit import RateLimiter
from bot.adapters.rekognition import RekognitionDetector, rekognition_client
from bot.core.metrics import NO_METRICS, Metrics
from bot.core.pacing import calls_in_flight

REKOGNITION = "rekognition"
NUDENET = "nudenet"

AnyDetector = RekognitionDetector | NudeNetDetector


def detector_problems(kind: str) -> list[str]:
    """What stops `kind` from being built, checked without loading anything heavy."""
    if kind == NUDENET and importlib.util.find_spec("nudenet") is None:
        return [INSTALL_HINT]
    return []


def rekognition_detector(
    engine: AsyncEngine,
    *,
    region: str | None,
    tps: float,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    metrics: Metrics = NO_METRICS,
) -> RekognitionDetector:
    """Rekognition paced at `tps`; on PostgreSQL every replica claims from one schedule."""
    limiter = RateLimiter(tps, gate=quota_gate(engine))
    return RekognitionDetector(
        rekognition_client(region, calls_in_flight(tps)),
        limiter,
        base_delay=base_delay,
        max_delay=max_delay,
        metrics=metrics,
    )


def build_detector(
    kind: str,
    engine: AsyncEngine,
    *,
    region: str | None,
    tps: float,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    metrics: Metrics = NO_METRICS,
) -> AnyDetector:
    """The configured detector; the caller closes it. ConfigError when the extra is missing."""
    if kind == NUDENET:
        return NudeNetDetector.installed()
    return rekognition_detector(
        engine,
        region=region,
        tps=tps,
        base_delay=base_delay,
        max_delay=max_delay,
        metrics=metrics,
    )
