"""A local origin server for download tests: canned files, redirects, stalls and endless bodies."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict, CIMultiDictProxy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Hit:
    """One request the server received: its path and a copy of its headers."""

    path: str
    headers: CIMultiDictProxy[str]


@dataclass
class WebServer:
    """An in-process aiohttp server bound to one loopback address, recording every request."""

    host: str = "127.0.0.1"
    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    _routes: dict[str, Handler] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        self._released.set()  # let stalled handlers finish so shutdown does not wait on them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def hits_to(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    def add(
        self,
        path: str,
        body: bytes,
        content_type: str = "image/png",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Serve fixed bytes."""

        # Set as a raw header so any media type, parameters included, goes out verbatim.
        all_headers = {"Content-Type": content_type, **(headers or {})}

        async def handler(_: web.Request) -> web.StreamResponse:
            return web.Response(body=body, status=status, headers=all_headers)

        self._routes[path] = handler

    def html(self, path: str, text: str = "<html><body>Sign in to Slack</body></html>") -> None:
        """Serve a web page, as Slack does when a download lacks a token or scope."""
        self.add(path, text.encode(), content_type="text/html")

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        async def handler(_: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})

        self._routes[path] = handler

    def stall(
        self, path: str, *, after_headers: bool = False, declared_length: int | None = None
    ) -> None:
        """Never finish answering (until close): before the headers, or after a first chunk.

        With `declared_length` the headers claim that many bytes, so a client that reads the
        body instead of trusting the header hangs.
        """

        async def handler(request: web.Request) -> web.StreamResponse:
            if not after_headers:
                await self._released.wait()
                return web.Response(status=503)
            resp = web.StreamResponse(headers={"Content-Type": "image/png"})
            if declared_length is not None:
                resp.content_length = declared_length
            await resp.prepare(request)
            await resp.write(b"\x89PNG")
            await self._released.wait()
            return resp

        self._routes[path] = handler

    def endless(self, path: str, *, declared_length: int | None = None) -> None:
        """Stream bytes until the client hangs up; optionally claim a Content-Length first."""

        async def handler(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "image/png"})
            if declared_length is not None:
                resp.content_length = declared_length
            await resp.prepare(request)
            chunk = b"\0" * 65536
            try:
                while not self._released.is_set():
                    await resp.write(chunk)
            except ConnectionError:  # the client gave up, which is the point
                pass
            return resp

        self._routes[path] = handler

    def truncated(self, path: str, *, declared_length: int = 1000) -> None:
        """Promise `declared_length` bytes, send a few, then hang up."""

        async def handler(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "image/png"})
            resp.content_length = declared_length
            await resp.prepare(request)
            await resp.write(b"\x89PNG")
            assert request.transport is not None
            request.transport.close()
            return resp

        self._routes[path] = handler

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(Hit(request.path, CIMultiDictProxy(CIMultiDict(request.headers))))
        handler = self._routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not found")
        return await handler(request)


class MapResolver(AbstractResolver):
    """A DNS stand-in: fixed names to fixed addresses, so a test can point a name anywhere."""

    def __init__(self, names: Mapping[str, Sequence[str]]) -> None:
        self.names = dict(names)
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.names[host]
        ]

    async def close(self) -> None:
        """Nothing to release."""
