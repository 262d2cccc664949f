"""The database going missing: at start (one line, non-zero exit) and while running (ping
fails fast, then recovers)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from bot.adapters.database import scans as store_module
from bot.adapters.database.engine import async_url
from bot.adapters.database.scans import Store
from tests.fakes.tcp_relay import TcpRelay
from tests.harness import REPO_ROOT, Stack

PASSWORD = "s3cret-pw"


async def _modbot(
    *args: str, env: dict[str, str], cwd: Path, within: float = 60
) -> tuple[int | None, str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(within):
        _, stderr = await child.communicate()
    return child.returncode, stderr.decode()


@pytest.fixture
def nothing_listening() -> int:
    """A port where no database answers (a relay, never started)."""
    return TcpRelay("127.0.0.1", 9).port


@pytest.fixture
async def hung_server() -> AsyncIterator[int]:
    """A port that accepts connections and never answers."""
    relay = TcpRelay("127.0.0.1", 9, silent=True)
    await relay.start()
    yield relay.port
    await relay.stop()


async def test_serve_without_its_database_stops_with_one_line(
    stack: Stack, nothing_listening: int
) -> None:
    """PostgreSQL unreachable at start: `modbot serve` exits 2 with one line naming
    DATABASE_URL, the password masked, and no traceback."""
    url = f"postgresql://modbot:{PASSWORD}@127.0.0.1:{nothing_listening}/modbot"
    code, stderr = await _modbot(
        "serve", "--http", "--port", "0", env={**os.environ, "DATABASE_URL": url}, cwd=stack.tmp
    )
    assert code == 2
    assert "Traceback" not in stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("modbot: ")]
    assert line.startswith(
        "modbot: DATABASE_URL: cannot use the database at "
        f"postgresql://modbot:***@127.0.0.1:{nothing_listening}/modbot ("
    )
    assert PASSWORD not in stderr


async def test_db_upgrade_gives_up_on_a_hung_server_within_the_connect_timeout(
    tmp_path: Path, hung_server: int
) -> None:
    """A server that accepts and never answers: `modbot db upgrade` exits 2 with one line
    after the connect timeout (here 2 s, set in the URL), not never."""
    url = f"postgres://modbot:{PASSWORD}@127.0.0.1:{hung_server}/modbot?connect_timeout=2"
    started = time.monotonic()
    code, stderr = await _modbot(
        "db", "upgrade", env={**os.environ, "DATABASE_URL": url}, cwd=tmp_path, within=30
    )
    assert code == 2
    [line] = stderr.splitlines()  # `db upgrade` logs nothing else
    assert line.startswith("modbot: DATABASE_URL: cannot use the database at postgresql://")
    assert PASSWORD not in stderr
    assert time.monotonic() - started < 15


async def test_db_upgrade_on_sqlite_needs_no_slack_settings(tmp_path: Path) -> None:
    """`modbot db upgrade` with only DATABASE_URL set creates and versions the database."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    code, stderr = await _modbot("db", "upgrade", env=env, cwd=tmp_path)
    assert (code, stderr) == (0, "")
    assert (tmp_path / "fresh.db").exists()


async def test_ping_gives_up_on_a_hung_server(
    hung_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/healthz's ping is bounded twice: by libpq's connect timeout, and by its own limit."""
    for query, limit in (("?connect_timeout=2", 60.0), ("", 1.0)):
        monkeypatch.setattr(store_module, "PING_TIMEOUT_SECONDS", limit)
        store = Store.from_url(async_url(f"postgresql://x@127.0.0.1:{hung_server}/x{query}"))
        started = time.monotonic()
        assert await store.ping() is False
        assert time.monotonic() - started < 4
        await store.close()


@pytest.mark.postgres
async def test_ping_fails_fast_while_the_server_is_gone_and_work_resumes(
    postgres_url: str,
) -> None:
    """PostgreSQL gone while running: ping() is False at once (so /healthz answers 503);
    back again: ping() is True and the store works on fresh connections."""
    server = make_url(postgres_url)
    relay = TcpRelay(server.host or "127.0.0.1", server.port or 5432)
    await relay.start()
    url = server.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    store = Store.from_url(async_url(url))
    try:
        await store.upgrade()
        await asyncio.gather(*(store.ping() for _ in range(4)))  # a pool of live connections
        await relay.stop()
        started = time.monotonic()
        assert await store.ping() is False
        assert time.monotonic() - started < 2
        await relay.start()
        assert await store.ping() is True
        assert await store.status_counts() == {}
    finally:
        await store.close()
        await relay.stop()
