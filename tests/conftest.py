"""Shared fixtures: a clean environment (no proxies, no stray SLACK_/AWS_ settings) per test,
and the databases the store contract runs on (SQLite, and PostgreSQL: see tests/postgres.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from tests import postgres
from tests.harness import Bot, Stack, http_bot, started_stack


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres-url",
        default=None,
        help=f"PostgreSQL server for the postgres tests (default {postgres.DEFAULT_URL})",
    )


_NOT_RUN = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a PostgreSQL server (and outside CI), its tests are left out, said in one line."""
    wanted = [item for item in items if item.get_closest_marker("postgres")]
    if not wanted or postgres.required():
        return
    problem = postgres.unreachable(postgres.server_url(config.getoption("--postgres-url")))
    if problem is None:
        return
    config.stash[_NOT_RUN] = f"{len(wanted)} PostgreSQL tests not run: {problem}; {postgres.HOW_TO}"
    items[:] = [item for item in items if not item.get_closest_marker("postgres")]
    config.hook.pytest_deselected(items=wanted)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    note = config.stash.get(_NOT_RUN, None)
    if note is not None:
        terminalreporter.write_line(note, yellow=True, bold=True)


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


@pytest.fixture(scope="session")
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A throwaway database on the test server for the whole session.

    Without a server these tests skip with one line saying how to run them; in CI (CI=true)
    they fail instead, so the PostgreSQL half of the contract can never be skipped silently.
    """
    url = postgres.server_url(request.config.getoption("--postgres-url"))
    problem = postgres.unreachable(url)
    if problem is not None:
        if postgres.required():
            pytest.fail(f"{problem}: required here (CI=true or MODBOT_TEST_POSTGRES=require)")
        pytest.skip(f"{problem}: {postgres.HOW_TO}")
    with postgres.throwaway_database(url) as database:
        yield database


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """DATABASE_URL of an empty PostgreSQL database."""
    postgres.reset(postgres_database)
    return postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """DATABASE_URL of an empty database, once per backend the store contract runs on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return str(request.getfixturevalue("postgres_url"))
