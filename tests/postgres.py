"""The PostgreSQL server the tests run on: where it is, whether it must be there, a database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import make_url

from bot.adapters.database.engine import masked

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "modbot_test_"  # throwaway databases: modbot_test_<pid>_<random>
HOW_TO = (
    "start one, or point MODBOT_TEST_POSTGRES_URL (or pytest --postgres-url) at one "
    f"(default {DEFAULT_URL}); run only them with `pytest -m postgres`"
)


# Read once, when conftest imports this: each test's clean environment drops MODBOT_* names.
_ENV_URL = os.environ.get("MODBOT_TEST_POSTGRES_URL")
_REQUIRED = (
    os.environ.get("CI", "").lower() in ("1", "true", "yes")
    or os.environ.get("MODBOT_TEST_POSTGRES", "").lower() == "require"
)


def server_url(option: str | None) -> str:
    return option or _ENV_URL or DEFAULT_URL


def required() -> bool:
    """CI (CI=true) and MODBOT_TEST_POSTGRES=require fail without a server instead of skipping."""
    return _REQUIRED


def unreachable(url: str) -> str | None:
    """Why the server cannot be used, or None when it can."""
    try:
        with psycopg.connect(_conninfo(url), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()
        return f"PostgreSQL not reachable at {masked(url)} ({first[0] if first else exc})"


@contextmanager
def throwaway_database(url: str) -> Iterator[str]:
    """A new, empty database on the server at `url`, dropped afterwards; yields its URL.

    Databases left by killed runs (their test process is gone) are dropped first.
    """
    name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(_conninfo(url), autocommit=True) as admin:
        for (old,) in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{PREFIX}%"]
        ).fetchall():
            if not _alive(old.removeprefix(PREFIX).split("_")[0]):
                admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_conninfo(url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset(url: str) -> None:
    """Empty the database: every table of an earlier test goes."""
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _alive(pid: str) -> bool:
    if not pid.isdecimal():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _conninfo(url: str) -> str:
    """libpq takes postgresql:// URLs; Heroku's postgres:// spelling too, but not a driver."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
