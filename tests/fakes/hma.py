"""A fake HMA 2.0 (Open Media Match) speaking the REST API modbot uses, over real HTTP.

Follows facebook/ThreatExchange hasher-matcher-actioner/src/OpenMediaMatch/blueprints:
- `GET /m/lookup?signal_type=pdq&signal=<hex>`: 400 `{"message": ...}` without both params, for
  an unknown signal type or a signal that is not 64 lowercase hex digits; otherwise an object of
  bank name -> `[{"bank_content_id": int, "distance": "<bits>"}]` for every banked hash within
  31 bits (HMA's PDQ threshold), the distance as a string as PDQ's `pretty_str` gives it.
- `POST /c/bank/<NAME>/signal` with a JSON object of signal type -> signal: 404 for an unknown
  bank, 400 for no signals, an unknown type or a bad signal; otherwise
  `{"id": <content id>, "signals": {"pdq": "<hex>"}}`.
HMA has no authentication; an operator's proxy in front of it may want a header, which the fake
checks when `required_header` is set (401 otherwise).

Faults for the outage tests: `fail_with` (an HTTP status), `garbage` (200 with an HTML body),
`delay` (seconds before answering).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PDQ_THRESHOLD = 31
_HEX = re.compile(r"[0-9a-f]{64}")


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeHma:
    banks: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    fail_with: int | None = None
    garbage: bool = False
    delay: float = 0.0
    required_header: tuple[str, str] | None = None
    _next_id: int = 1000
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_bank(self, name: str) -> None:
        self.banks.setdefault(name, [])

    def bank_signal(self, name: str, pdq: str) -> int:
        self._next_id += 1
        self.banks[name].append((self._next_id, pdq))
        return self._next_id

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/m/lookup", self._lookup)
        app.router.add_post("/c/bank/{name}/signal", self._add_signal)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _fault(self, request: web.Request, body: Any) -> web.Response | None:
        self.calls.append(
            Call(request.method, request.path, dict(request.query), body, dict(request.headers))
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.required_header is not None:
            name, value = self.required_header
            if request.headers.get(name) != value:
                return web.json_response({"message": "unauthorized"}, status=401)
        if self.fail_with is not None:
            return web.json_response({"message": "internal error"}, status=self.fail_with)
        if self.garbage:
            return web.Response(text="<html>proxy error</html>", content_type="text/html")
        return None

    async def _lookup(self, request: web.Request) -> web.Response:
        fault = await self._fault(request, None)
        if fault is not None:
            return fault
        signal = request.query.get("signal")
        signal_type = request.query.get("signal_type")
        if not signal or not signal_type:
            return _error(400, "Either url or both signal and signal_type are required")
        if signal_type != "pdq":
            return _error(400, f"No such SignalType '{signal_type}'")
        if not _HEX.fullmatch(signal):
            return _error(400, "invalid signal: not a 64-digit lowercase hex PDQ hash")
        result: dict[str, list[dict[str, Any]]] = {}
        for bank, contents in self.banks.items():
            for content_id, pdq in contents:
                bits = _distance(signal, pdq)
                if bits <= PDQ_THRESHOLD:
                    result.setdefault(bank, []).append(
                        {"bank_content_id": content_id, "distance": str(bits)}
                    )
        return web.json_response(result)

    async def _add_signal(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        fault = await self._fault(request, body)
        if fault is not None:
            return fault
        name = request.match_info["name"]
        if name not in self.banks:
            return _error(404, f"bank '{name}' not found")
        if not isinstance(body, dict) or not body:
            return _error(400, "No signals given")
        for signal_type, value in body.items():
            if signal_type != "pdq":
                return _error(400, f"No such signal type {signal_type}")
            if not isinstance(value, str) or not _HEX.fullmatch(value):
                return _error(400, "Invalid pdq signal: not a 64-digit lowercase hex hash")
        content_id = self.bank_signal(name, body["pdq"])
        return web.json_response({"id": content_id, "signals": {"pdq": body["pdq"]}})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)
