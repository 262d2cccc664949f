"""The Socket Mode half of the fake Slack: a `/link` WebSocket that pushes envelopes, records acks.

Kept apart from the Web API fake because it has its own state (open sockets, acks) and its own
waiting helpers; `FakeSlack` owns one `SocketLink` and delegates to it.
"""

# Waiting helpers take a timeout (not asyncio.timeout) so a failure says what was awaited.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

# The shape of Slack's greeting (slack.md §3.1); slack_sdk does not wait for it, but Slack sends it.
_HELLO_DEBUG_INFO = {
    "host": "applink-fake",
    "build_number": 10,
    "approximate_connection_time": 18060,
}


class SocketLink:
    """Server side of Socket Mode: accepts clients, pushes envelopes, collects ack frames."""

    def __init__(self, *, app_id: str = "A0TEST") -> None:
        self.app_id = app_id
        self.open_sockets: list[web.WebSocketResponse] = []
        self.connections_accepted = 0
        self.tickets_seen: list[str | None] = []
        self.acks: dict[str, dict[str, Any]] = {}
        # Every text frame the client sent, acks included, in order (for debugging failed tests).
        self.frames: list[dict[str, Any]] = []
        self.pushed: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Serve one client connection until either side closes it."""
        # autoping=True (the default) answers the client's heartbeat and `sdk-ping-pong` pings;
        # without pongs slack_sdk reconnects every few seconds (slack.md gotcha 3).
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections_accepted += 1
        self.tickets_seen.append(request.query.get("ticket"))
        self.open_sockets.append(ws)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self.open_sockets),
                    "debug_info": _HELLO_DEBUG_INFO,
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._record_frame(msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            if ws in self.open_sockets:
                self.open_sockets.remove(ws)
        return ws

    def _record_frame(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            frame = {"_raw": data}
        if not isinstance(frame, dict):
            frame = {"_raw": frame}
        self.frames.append(frame)
        envelope_id = frame.get("envelope_id")
        if isinstance(envelope_id, str):
            self.acks[envelope_id] = frame

    async def wait_connected(self, timeout: float = 5.0, *, connections: int = 1) -> None:
        """Wait until `connections` sockets have been accepted in total and one is open."""
        await poll_until(
            lambda: self.connections_accepted >= connections and bool(self.open_sockets),
            timeout,
            lambda: (
                f"no Socket Mode connection: accepted {self.connections_accepted} "
                f"(wanted {connections}), open {len(self.open_sockets)}"
            ),
        )

    async def push(self, envelope: dict[str, Any]) -> str:
        """Send an envelope to the newest open socket; return its envelope_id."""
        await self.wait_connected()
        envelope = dict(envelope)
        envelope.setdefault("envelope_id", str(uuid.uuid4()))
        self.pushed.append(envelope)
        # Slack picks one of the app's connections; the newest is the one a reconnect just made.
        await self.open_sockets[-1].send_json(envelope)
        return str(envelope["envelope_id"])

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the client's ack frame for `envelope_id` and return it."""
        await poll_until(
            lambda: envelope_id in self.acks,
            timeout,
            lambda: (
                f"no ack for envelope {envelope_id!r}; acked so far: {sorted(self.acks)}; "
                "note that Bolt sends no ack for unhandled or failed requests (slack.md gotcha 11)"
            ),
        )
        return self.acks[envelope_id]

    async def assert_no_ack(self, envelope_id: str, within: float = 0.5) -> None:
        """Fail if an ack for `envelope_id` arrives within the observation window.

        Proving a negative needs a window; this is not a wait for work to finish.
        """
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if envelope_id in self.acks:
                frame = self.acks[envelope_id]
                raise AssertionError(f"unexpected ack for {envelope_id!r}: {frame}")
            await asyncio.sleep(0.01)

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every open client to reconnect, as Slack does before it rotates a link."""
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        for ws in list(self.open_sockets):
            await ws.send_json(frame)

    async def close_sockets(self) -> None:
        """Close every open socket from the server side (a client with auto-reconnect returns)."""
        for ws in list(self.open_sockets):
            await ws.close()


async def poll_until(
    predicate: Callable[[], bool],
    timeout: float,
    describe: Callable[[], str],
) -> None:
    """Poll `predicate` every 10 ms; on timeout raise AssertionError with `describe()`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s: {describe()}")
        await asyncio.sleep(0.01)
