"""A reverse proxy that fails the first N requests with a 5xx, then forwards to the real server.

Used in front of moto to show that transient S3/SQS errors are retried and absorbed.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

_S3_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


class FaultyProxy:
    def __init__(self, upstream: str, *, failures: int, status: int = 500) -> None:
        self.upstream = upstream.rstrip("/")
        self.failures_left = failures
        self.status = status
        self.failed: list[str] = []  # "METHOD path" of every request answered with a fault
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.failures_left > 0:
            self.failures_left -= 1
            self.failed.append(f"{request.method} {request.path}")
            return web.Response(status=self.status, body=_S3_ERROR, content_type="application/xml")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with self._session.request(
            request.method, f"{self.upstream}{request.path_qs}", data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            skip = {"content-length", "transfer-encoding", "content-encoding", "connection"}
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in skip}
            return web.Response(status=upstream.status, body=payload, headers=out)
