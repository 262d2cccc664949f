"""One image through the bot's steps without Slack, for `modbot scan`: read or fetch, detect
once (the stored result is reused), decide under the policy and, for a backtest, a second one."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.adapters.fetch import Fetcher
from bot.core.model import Detection, Outcome
from bot.core.policy import Policy, decide
from bot.orchestration.scan import Detector


class DetectionCache(Protocol):
    """Detections stored per detector, shared with the bot (the database)."""

    async def detection(self, sha256: str, detector: str) -> Detection | None: ...

    async def save_detection(self, sha256: str, detector: str, detection: Detection) -> None: ...


@dataclass(frozen=True)
class Scanned:
    """What one image came to: under the policy, and under the compared one if any."""

    source: str
    sha256: str
    detection: Detection
    outcome: Outcome
    reused: bool  # the stored result was used: no detector call
    compared: Outcome | None = None

    @property
    def differs(self) -> bool:
        return self.compared is not None and self.compared.decision != self.outcome.decision


def is_url(source: str) -> bool:
    """Whether a command-line argument names a URL rather than a path."""
    return "://" in source


class LocalScanner:
    """The bot's fetch, detection cache, detector and policy, one image at a time."""

    def __init__(
        self,
        *,
        cache: DetectionCache,
        fetcher: Fetcher,
        detector: Detector,
        policy: Policy,
        channel: str | None = None,
        compare: Policy | None = None,
        read_file: Callable[[str], Awaitable[bytes]],
        link_timeout: float,
    ) -> None:
        self._cache = cache
        self._fetcher = fetcher
        self._detector = detector
        self._policy = policy
        self._channel = channel
        self._compare = compare
        self._read_file = read_file
        self._link_timeout = link_timeout
        # One call serves both policies: the lower MinConfidence of the two.
        floors = [p.call_min_confidence for p in (policy, compare) if p is not None]
        self._min_confidence = min(floors)

    async def scan(self, source: str) -> Scanned:
        """Raises ScanFailed (with the reason a person is shown) when the image cannot be."""
        if is_url(source):
            # No token: only Slack's own files get one, and none are fetched here.
            fetched = await self._fetcher.fetch(source, deadline=self._link_timeout)
            data = fetched.data
        else:
            data = await self._read_file(source)
        sha256 = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        detection, reused = await self._detection(sha256, data)
        outcome = decide(self._policy, detection, self._channel)
        compared = (
            decide(self._compare, detection, self._channel) if self._compare is not None else None
        )
        return Scanned(source, sha256, detection, outcome, reused, compared)

    async def _detection(self, sha256: str, data: bytes) -> tuple[Detection, bool]:
        name = self._detector.name
        stored = await self._cache.detection(sha256, name)
        if stored is not None and stored.min_confidence <= self._min_confidence:
            return stored, True
        detection = await self._detector.detect(data, self._min_confidence)
        await self._cache.save_detection(sha256, name, detection)
        return detection, False
