"""`modbot doctor`: the database (reachable, migrations at head) and HMA (reachable)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.adapters.database import migrate
from bot.adapters.database.engine import async_url, masked
from bot.ops.doctor_checks import Check, DoctorSettings, fail, ok, skip

TIMEOUT_SECONDS = 10.0


def database_checks(env: DoctorSettings) -> list[Check]:
    name = "database"
    try:
        url = make_url(async_url(env.database_url))
    except Exception:
        return [fail(name, "DATABASE_URL cannot be read (the settings line says why)")]
    shown = masked(url)
    on_disk = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if on_disk and not Path(str(url.database)).exists():  # opening it would create it
        return [skip(name, f"{shown} does not exist yet: `modbot serve` creates it")]
    try:
        at = asyncio.run(asyncio.wait_for(migrate.current(url), TIMEOUT_SECONDS))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        why = reason[0] if reason else type(exc).__name__
        return [
            fail(
                name,
                f"cannot use the database at {shown} ({why}): check DATABASE_URL "
                "and that the server runs and accepts this user",
            )
        ]
    head = migrate.head()
    if at == head:
        return [ok(name, f"{shown} reachable, schema at {head} (current)")]
    if at is None:
        return [
            fail(
                name,
                f"{shown} reachable but has no modbot schema: run `modbot db upgrade` "
                "(`modbot serve` also does at start)",
            )
        ]
    return [
        fail(
            name,
            f"{shown} is at schema {at}, this release needs {head}: run `modbot db "
            "upgrade` (`modbot serve` also does at start)",
        )
    ]


def hma_checks(env: DoctorSettings) -> list[Check]:
    """GET <MODBOT_HMA_URL>/status: HMA 2.0 answers it without touching any bank."""
    name = "HMA"
    base = env.hma_url
    if not base:
        return [skip(name, "MODBOT_HMA_URL is not set")]
    if urlsplit(base).scheme not in ("http", "https"):
        return [fail(name, f"MODBOT_HMA_URL {base} is not an http(s) URL")]
    status_url = urljoin(base if base.endswith("/") else base + "/", "status")
    try:
        with urllib.request.urlopen(status_url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) checked above
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return [
            fail(
                name,
                f"{status_url} unreachable ({getattr(exc, 'reason', exc)}): check "
                "MODBOT_HMA_URL (scans still run without HMA)",
            )
        ]
    if code != 200:
        return [fail(name, f"{status_url} answered {code}: check MODBOT_HMA_URL")]
    return [ok(name, f"{status_url} answered 200")]
