"""The bot's own HTTP port under slow, idle and oversized clients (issue 8, defect 7).

Connections are loopback only and bounded in number and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes import slack_payloads as payloads
from tests.harness import GENERAL, POSTER, SIGNING_SECRET, Bot, BotProcess, Stack, http_bot

PARTIAL_HEAD = b"POST /slack/events HTTP/1.1\r\nHost: modbot\r\n"
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def _hogs(port: int, count: int, *, within: float = 15.0) -> AsyncIterator[list[Connection]]:
    """`count` connections, every other one sending half a request head, the rest nothing;
    all closed on exit. Stops opening at `within` seconds (a server that no longer accepts
    leaves connects hanging)."""
    opened: list[Connection] = []
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                for n in range(count):
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    if n % 2:
                        writer.write(PARTIAL_HEAD)
                    opened.append((reader, writer))
        yield opened
    finally:
        for _, writer in opened:
            writer.close()
        for _, writer in opened:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True once the server has closed the connection (EOF or reset) within `within` s."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


async def _healthz(base: str, within: float = 5.0) -> int:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as session,
        session.get(f"{base}/healthz") as response,
    ):
        return response.status


def _base(bot: Bot) -> str:
    url: str = bot.url  # type: ignore[attr-defined]
    return url.removesuffix("/slack/events")


async def test_idle_and_dribbling_clients_cannot_lock_slack_out(stack: Stack) -> None:
    """`modbot serve` with a container's small open-file limit: 400 idle or half-sent
    connections, then a signed event and /healthz are still answered within seconds."""
    bot = BotProcess(stack, open_files=256)
    await bot.start()
    try:
        async with _hogs(bot.port, 400) as hogs:
            assert len(hogs) == 400
            started = time.monotonic()
            assert await _healthz(bot.url) == 200
            event = payloads.message_event(GENERAL, POSTER, text="hello")
            assert await asyncio.wait_for(bot.event(event), 5) == 200
            assert time.monotonic() - started < 5
    finally:
        assert await bot.terminate() == 0


async def test_connections_beyond_the_cap_close_the_longest_waiting(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODBOT_HTTP_MAX_CONNECTIONS: new connections close the oldest ones that hold no whole
    request, so signed requests are served and the hogs are let go."""
    monkeypatch.setenv("MODBOT_HTTP_MAX_CONNECTIONS", "20")
    async with http_bot(stack) as bot, _hogs(_port(bot), 100) as hogs:
        response = await asyncio.wait_for(
            bot.event(payloads.message_event(GENERAL, POSTER, text="hi")), 5
        )
        assert response["status"] == 200
        assert await _healthz(_base(bot)) == 200
        closed = await asyncio.gather(*(_closed_by_server(reader, 2.0) for reader, _ in hogs))
        assert sum(closed) >= 100 - 20


async def test_a_head_never_finished_is_closed_at_the_header_deadline(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODBOT_HTTP_HEADER_TIMEOUT_SECONDS: a client dribbling its request head a byte at a
    time is cut off at the deadline counted from its first byte."""
    monkeypatch.setenv("MODBOT_HTTP_HEADER_TIMEOUT_SECONDS", "0.5")
    async with http_bot(stack) as bot:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(bot))
        try:
            started = time.monotonic()
            closed = False
            dribble = PARTIAL_HEAD + b"X-Padding: " + b"a" * 200  # a valid head, never ended
            for byte in dribble:  # 0.05 s a byte: far longer than the deadline
                if writer.is_closing() or reader.at_eof():
                    break
                with contextlib.suppress(OSError):
                    writer.write(bytes([byte]))
                if await _closed_by_server(reader, 0.05):
                    closed = True
                    break
            elapsed = time.monotonic() - started
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        assert closed
        assert 0.4 < elapsed < 3


async def test_a_body_sent_too_slowly_gets_408(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODBOT_HTTP_BODY_TIMEOUT_SECONDS: a body that stops arriving gets 408 and the
    connection is closed; nothing reaches the app."""
    monkeypatch.setenv("MODBOT_HTTP_BODY_TIMEOUT_SECONDS", "0.5")
    async with http_bot(stack) as bot:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(bot))
        try:
            writer.write(PARTIAL_HEAD + b"Content-Length: 1000\r\n\r\n" + b"{" * 10)
            async with asyncio.timeout(5):
                answer = await reader.read()  # to EOF: the server closes after answering
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"request body too slow" in answer


async def test_a_body_over_the_cap_gets_413(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """MODBOT_HTTP_MAX_BODY_BYTES: an over-size body gets 413, even a correctly signed one,
    declared by Content-Length or sent chunked; nothing is scanned."""
    monkeypatch.setenv("MODBOT_HTTP_MAX_BODY_BYTES", "65536")
    async with http_bot(stack) as bot:
        raw, content_type = payloads.http_body(
            "events", payloads.message_event(GENERAL, POSTER, text="x" * 100_000)
        )
        headers = {**payloads.signed_headers(SIGNING_SECRET, raw), "Content-Type": content_type}
        url: str = bot.url  # type: ignore[attr-defined]

        async def chunks() -> AsyncIterator[bytes]:
            data = raw.encode()
            for at in range(0, len(data), 8192):
                yield data[at : at + 8192]

        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=raw.encode(), headers=headers) as response:
                assert response.status == 413
                assert await response.json() == {"error": "request body too large"}
            async with session.post(url, data=chunks(), headers=headers) as response:
                assert response.status == 413
        small = await bot.event(payloads.message_event(GENERAL, POSTER, text="small"))
        assert small["status"] == 200
        await bot.idle()
        assert stack.rekognition_calls() == 0


def _port(bot: Bot) -> int:
    return int(_base(bot).rsplit(":", 1)[1])


async def test_a_port_already_taken_is_one_line(stack: Stack) -> None:
    """`modbot serve` on a port another process holds: exit 2 and one line naming PORT."""
    bot = BotProcess(stack)
    with socket.socket() as taken:
        # Bound, not listening: the bot's bind on every interface clashes with it, and the
        # harness's /healthz probes are refused at once instead of waiting on it.
        taken.bind(("127.0.0.1", bot.port))
        with pytest.raises(AssertionError) as failed:
            await bot.start()
    assert bot.process is not None
    assert await bot.process.wait() == 2
    output = str(failed.value)
    assert f"modbot: PORT: cannot listen on port {bot.port} (" in output
    assert "Traceback" not in output
