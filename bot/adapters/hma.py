"""Meta's Hasher-Matcher-Actioner (HMA 2.0, "Open Media Match") as a partner: lookups and pushes.

HMA's REST API (facebook/ThreatExchange, hasher-matcher-actioner/src/OpenMediaMatch/blueprints):
- `GET /m/lookup?signal_type=pdq&signal=<hex>` answers, for a given signal type, an object of
  bank name -> matches, each `{"bank_content_id": int, "distance": "<bits>"}` (the distance as
  PDQ's `pretty_str`, a string of digits). Versions before 2024 answered a list of bank names;
  both are read.
- `POST /c/bank/<NAME>/signal` with `{"pdq": "<hex>"}` adds a hash to a bank:
  `{"id": <content id>, "signals": {"pdq": "<hex>"}}`; 404 for an unknown bank, 400 for a bad
  signal. Errors come as `{"message": ...}`.

HMA has no authentication of its own; operators put it behind a proxy that wants a bearer token
or an API-key header (MODBOT_HMA_TOKEN, MODBOT_HMA_AUTH_HEADER). A slow, failing or garbled HMA
must never slow scanning: every call has a deadline (retries included), and a circuit breaker
skips HMA entirely for a while after repeated failures. Failures are logged and counted
(`counts`), and the scan goes on as if HMA were not configured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.core.breaker import CircuitBreaker
from bot.core.metrics import NO_METRICS, Metrics
from bot.core.pdq import PartnerMatch

log = logging.getLogger(__name__)


class HmaUnavailable(Exception):
    """HMA did not answer usefully (timeout, refused, 5xx, garbage)."""


@dataclass(frozen=True)
class HmaConfig:
    url: str  # the base URL, e.g. https://hma.internal:5000
    banks: tuple[str, ...] = ()  # lookups count matches in these banks only
    push_bank: str | None = None  # confirmed violations are added here
    auth_header: str = "Authorization"
    token: str | None = None  # sent as "Bearer <token>" in Authorization, else as is
    timeout: float = 2.0  # one call's deadline, retries included
    retries: int = 1  # further attempts after a timeout, refusal or 5xx, within the deadline
    breaker_failures: int = 3
    breaker_cooldown: float = 30.0

    def headers(self) -> dict[str, str]:
        if not self.token:
            return {}
        value = self.token
        if self.auth_header.lower() == "authorization":
            value = f"Bearer {self.token}"
        return {self.auth_header: value}


def parse_lookup(body: Any, banks: tuple[str, ...]) -> PartnerMatch | None:
    """The nearest match in one of `banks` from a /m/lookup answer; ValueError if the answer
    has neither of HMA's shapes."""
    if isinstance(body, list):  # HMA before 2024: the names of the matching banks
        if not all(isinstance(name, str) for name in body):
            raise ValueError("lookup answer is a list but not of bank names")
        named = [name for name in body if name in banks]
        return PartnerMatch(named[0], None) if named else None
    if not isinstance(body, Mapping):
        raise ValueError("lookup answer is neither an object nor a list")
    best: PartnerMatch | None = None
    for bank, matches in body.items():
        if not isinstance(bank, str) or not isinstance(matches, list):
            raise ValueError("lookup answer is not an object of bank -> list of matches")
        for match in matches:
            if not isinstance(match, Mapping) or "distance" not in match:
                raise ValueError(f"a match in bank {bank!r} has no distance")
            bits = _bits(match["distance"])
            if bank in banks and (best is None or (best.distance or 0) > bits):
                best = PartnerMatch(bank, bits)
    return best


def _bits(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("distance is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"distance {value!r} is not a number of bits")


class HmaClient:
    """Lookups and pushes over one shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: HmaConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._session = session
        self._metrics = metrics
        self._config = config
        self._base = config.url.rstrip("/")
        self._clock = clock
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
        # lookups, matches, failures, skipped (breaker open), pushes, push_failures: for
        # whoever exports metrics, and for the tests.
        self.counts: Counter[str] = Counter()

    @property
    def push_bank(self) -> str | None:
        return self._config.push_bank

    async def lookup(self, pdq: str) -> PartnerMatch | None:
        """The nearest match in the named banks, or None (no match, or HMA unavailable)."""
        if not self._config.banks:
            return None
        if not self.breaker.allow(self._clock()):
            self.counts["skipped"] += 1
            self._metrics.hma_lookup("error")  # not asked: HMA failed lately
            return None
        try:
            body = await self._call(
                "GET", "/m/lookup", params={"signal_type": "pdq", "signal": pdq}
            )
            match = parse_lookup(body, self._config.banks)
        except (HmaUnavailable, ValueError) as exc:
            self._failed("lookup", exc)
            self._metrics.hma_lookup("error")
            return None
        self.breaker.succeeded()
        self.counts["lookups"] += 1
        if match is not None:
            self.counts["matches"] += 1
        self._metrics.hma_lookup("no_match" if match is None else "match")
        return match

    async def push(self, pdq: str) -> bool:
        """Add a hash to MODBOT_HMA_PUSH_BANK; False when it did not happen (try again later)."""
        bank = self._config.push_bank
        if bank is None or not self.breaker.allow(self._clock()):
            return False
        try:
            body = await self._call(
                "POST", f"/c/bank/{quote(bank, safe='')}/signal", json={"pdq": pdq}
            )
            if not isinstance(body, Mapping) or "id" not in body:
                raise HmaUnavailable("push answer has no content id")
        except HmaUnavailable as exc:
            self.counts["push_failures"] += 1
            self._failed("push", exc)
            return False
        self.breaker.succeeded()
        self.counts["pushes"] += 1
        return True

    def _failed(self, what: str, exc: Exception) -> None:
        self.breaker.failed(self._clock())
        self.counts["failures"] += 1
        state = "; skipped for a while" if self.breaker.open else ""
        log.warning("HMA %s failed (%s): scanning goes on without it%s", what, exc, state)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request with retries, all within the configured deadline."""
        config = self._config
        attempts = 1 + config.retries
        try:
            async with asyncio.timeout(config.timeout):
                for attempt in range(attempts):
                    try:
                        return await self._once(method, path, **kwargs)
                    except _Retryable as exc:
                        if attempt + 1 == attempts:
                            raise HmaUnavailable(str(exc)) from None
                        await asyncio.sleep(0.05 * (attempt + 1))
        except TimeoutError:
            raise HmaUnavailable(f"no answer within {config.timeout:g} s") from None
        raise HmaUnavailable("no attempt made")  # pragma: no cover - attempts >= 1

    async def _once(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with self._session.request(
                method, self._base + path, headers=self._config.headers(), **kwargs
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise _Retryable(f"HTTP {response.status}")
                if response.status >= 400:
                    raise HmaUnavailable(f"HTTP {response.status}: {await _message(response)}")
                try:
                    return await response.json(content_type=None)
                except ValueError:
                    raise HmaUnavailable("answer is not JSON") from None
        except aiohttp.ClientError as exc:
            raise _Retryable(type(exc).__name__) from None


class _Retryable(Exception):
    pass


async def _message(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return "no message"
    return str(body.get("message", "no message"))[:200] if isinstance(body, dict) else "no message"
