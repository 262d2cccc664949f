"""The bot's own HTTP server: aiohttp, with deadlines and a connection cap that aiohttp lacks,
so idle or dribbling clients (Slowloris) cannot keep Slack's signed requests from being served.

Production (`serve`) and the tests (`start`) run the same code, limits included.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.adapters.http_limits import HttpLimits
from bot.core.errors import ConfigError

log = logging.getLogger(__name__)

LIMITS = web.AppKey("http_limits", HttpLimits)
SHUTDOWN_SECONDS = 5.0  # for requests in flight on SIGTERM; scans have their own grace
WARN_EVERY_SECONDS = 60.0


class Phase(Enum):
    IDLE = "idle"  # opened, or answered: waiting for the next request's first byte
    HEAD = "head"  # a request has begun; its head is not complete
    BODY = "body"  # the head is in; the body is being read
    SERVING = "serving"  # the request is whole and being answered: never cut short


def limited_app(limits: HttpLimits) -> web.Application:
    """An Application whose request bodies are capped in size and in time."""
    app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[_read_limits(limits)])
    app[LIMITS] = limits
    return app


async def start(app: web.Application, host: str | None, port: int) -> web.AppRunner:
    """Run `app` (built by `limited_app`) on host:port with every connection guarded."""
    limits = app[LIMITS]
    runner = web.AppRunner(
        app,
        keepalive_timeout=limits.idle_seconds,
        lingering_time=limits.body_seconds,  # reading the rest of a refused body
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    await runner.setup()
    guard = ConnectionGuard(limits, _open_files())
    site = _GuardedSite(runner, guard, host, port)
    try:
        await site.start()
    except OSError as exc:  # the port is taken, or not ours to bind: one line, not a traceback
        await runner.cleanup()
        reason = exc.strerror or str(exc)
        raise ConfigError([f"PORT: cannot listen on port {port} ({reason})"]) from None
    log.info(
        "HTTP limits: request head %gs, body %gs and %d bytes, %d connections",
        limits.header_seconds,
        limits.body_seconds,
        limits.max_body_bytes,
        guard.max_connections,
    )
    return runner


async def serve(app: web.Application, port: int) -> None:
    """Serve on every interface until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # before the start: it can take a while
        loop.add_signal_handler(signum, stop.set)
    runner = await start(app, None, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _open_files() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


class ConnectionGuard:
    """Watches every connection's clock and caps how many are open.

    A connection must send a complete request head within `header_seconds` of its first byte,
    and its body within `body_seconds` (enforced where the body is read, with a 408). Beyond
    `max_connections`, a new connection closes the one that has waited longest without a
    whole request (idle, or still sending one), so a flood of idle clients cannot lock out a
    new one; if every connection is being answered, the new one is refused.
    """

    def __init__(self, limits: HttpLimits, open_files: int | None) -> None:
        self.limits = limits
        self.max_connections = limits.connections_within(open_files)
        # Ordered by when each connection entered its current phase, oldest first.
        self._open: OrderedDict[_Connection, None] = OrderedDict()
        self._warned_at = -WARN_EVERY_SECONDS

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        return lambda: _Connection(self, server)

    def admit(self, connection: _Connection) -> bool:
        if len(self._open) >= self.max_connections:
            self._warn_full()
            victim = next((c for c in self._open if c.phase is not Phase.SERVING), None)
            if victim is None:
                log.debug("connection refused: %d connections all busy", len(self._open))
                return False
            log.debug("closed a connection in phase %s for a new one", victim.phase.value)
            victim.close()
        self._open[connection] = None
        return True

    def _warn_full(self) -> None:
        """Once a minute at most: under a flood, one line says what is going on."""
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning(
                "HTTP connection cap reached (%d): closing the connections that waited longest",
                self.max_connections,
            )

    def moved(self, connection: _Connection) -> None:
        if connection in self._open:
            self._open.move_to_end(connection)

    def forget(self, connection: _Connection) -> None:
        self._open.pop(connection, None)


class _Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's own handler speaks HTTP; this keeps the time."""

    def __init__(self, guard: ConnectionGuard, server: web.Server) -> None:
        self._guard = guard
        self._server = server
        self._handler: web.RequestHandler | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.phase = Phase.IDLE

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if not self._guard.admit(self):
            self._transport.close()
            self._transport = None
            return
        self.enter(Phase.IDLE)
        self._handler = self._server()
        self._handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.phase is Phase.IDLE:
            self.enter(Phase.HEAD)
        if self._handler is not None:
            self._handler.data_received(data)

    def eof_received(self) -> None:
        if self._handler is not None:
            self._handler.eof_received()  # None: the transport closes itself

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        if self._handler is not None:
            self._handler.connection_lost(exc)
            self._handler = None

    def enter(self, phase: Phase) -> None:
        """Start `phase`'s clock (the head's and the idle wait's are kept here)."""
        if self._transport is None:
            return
        self.phase = phase
        self._guard.moved(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        limits = self._guard.limits
        seconds = {Phase.IDLE: limits.idle_seconds, Phase.HEAD: limits.header_seconds}.get(phase)
        if seconds is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(seconds, self._expire)

    def close(self) -> None:
        transport = self._transport
        self._forget()
        if transport is not None:
            transport.close()

    def _expire(self) -> None:
        self._timer = None
        log.debug("closed a connection still %s after its deadline", self.phase.value)
        self.close()

    def _forget(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport = None
        self._guard.forget(self)


class _GuardedSite(web.BaseSite):
    """aiohttp's TCPSite, with each accepted connection wrapped by the guard."""

    __slots__ = ("_guard", "_host", "_port")

    def __init__(
        self, runner: web.BaseRunner, guard: ConnectionGuard, host: str | None, port: int
    ) -> None:
        super().__init__(runner)
        self._guard = guard
        self._host = host
        self._port = port

    @property
    def name(self) -> str:
        return f"http://{self._host or '*'}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None  # set by runner.setup(), which BaseSite requires
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(server), self._host, self._port, backlog=self._backlog
        )


def _connection(request: web.Request) -> _Connection | None:
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, _Connection) else None


def _read_limits(limits: HttpLimits) -> Middleware:
    """Reads every body first, within its deadline and size cap; handlers then read it from
    memory (aiohttp keeps what `read` returned)."""

    @web.middleware
    async def read_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = _connection(request)
        if connection is not None:
            connection.enter(Phase.BODY)
        try:
            length = request.content_length
            if length is not None and length > limits.max_body_bytes:
                return _refuse(413, "request body too large")
            try:
                async with asyncio.timeout(limits.body_seconds):
                    await request.read()
            except web.HTTPRequestEntityTooLarge:  # no Content-Length, too many bytes
                return _refuse(413, "request body too large")
            except TimeoutError:
                return _refuse(408, "request body too slow")
            if connection is not None:
                connection.enter(Phase.SERVING)
            return await handler(request)
        finally:
            if connection is not None:
                connection.enter(Phase.IDLE)

    return read_limits


def _refuse(status: int, reason: str) -> web.Response:
    response = web.json_response({"error": reason}, status=status)
    response.force_close()  # whatever the client still sends is not worth reading
    return response
