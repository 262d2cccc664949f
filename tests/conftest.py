"""Shared fixtures: a clean environment (no proxies, no stray SLACK_/AWS_ settings) per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from tests.harness import Bot, Stack, http_bot, started_stack

_STRAY = ("SLACK_", "MODBOT_", "AWS_", "DATABASE_URL", "PORT")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Proxies would hijack loopback traffic and stray settings would change how apps are built."""
    for name in list(os.environ):
        if name.startswith(_STRAY) or name in _PROXIES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # a developer's .env must not leak into tests


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto in server mode for S3 and SQS, shared by the tests that need them."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    """Every stand-in started, and the bot's settings pointed at them (see tests/harness.py)."""
    async with started_stack(tmp_path, monkeypatch) as stack:
        yield stack


@pytest.fixture
async def bot(stack: Stack) -> AsyncIterator[Bot]:
    """The real modbot in HTTP mode against `stack`."""
    async with http_bot(stack) as bot:
        yield bot
