"""The whole bot on PostgreSQL: scans, redeliveries, Slack votes, restarts, a SIGKILL, and
/healthz while the database goes away and comes back.

The bodies are the SQLite functional tests' own, run here with DATABASE_URL=postgresql://.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import make_url

from tests.fakes.tcp_relay import TcpRelay
from tests.harness import Stack, http_bot, started_stack
from tests.test_crash_functional import (
    test_sigkill_with_scans_in_flight_loses_and_doubles_nothing as _sigkill_mid_burst,
)
from tests.test_review_slack_functional import (
    test_quorum_of_two_allowed_reviewers_gives_the_verdict as _quorum_of_two,
)
from tests.test_review_slack_functional import (
    test_votes_survive_a_restart as _votes_survive_a_restart,
)
from tests.test_scan_functional import (
    CLEAN_COLOR,
    FLAG_COLOR,
    _upload_event,
)
from tests.test_scan_functional import (
    test_redelivered_event_produces_nothing_new as _redelivered_event,
)
from tests.test_scan_functional import (
    test_repost_of_same_bytes_reuses_the_result as _repost_of_same_bytes,
)
from tests.test_scan_functional import (
    test_upload_in_review_band_gives_one_alert_with_tree_breakdown as _review_band_upload,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
async def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> AsyncIterator[Stack]:
    """The usual stand-ins, the review settings of the Slack review tests, and PostgreSQL."""
    monkeypatch.setenv("MODBOT_REVIEW_QUORUM", "2")
    monkeypatch.setenv("MODBOT_REVIEWERS", "U0MOD1,S0MODS")
    async with started_stack(tmp_path, monkeypatch) as stack:
        stack.slack.add_usergroup("S0MODS", ["U0MOD2", "U0MOD3"])
        monkeypatch.setenv("DATABASE_URL", postgres_url)
        stack.env["DATABASE_URL"] = postgres_url
        yield stack


async def test_upload_scanned_and_alerted_on_postgresql(stack: Stack) -> None:
    """A review-band upload ends in one alert with its breakdown (test_scan_functional)."""
    async with http_bot(stack) as bot:
        await _review_band_upload(stack, bot)


async def test_redelivered_event_adds_nothing_on_postgresql(stack: Stack) -> None:
    """A redelivered event is deduplicated by PostgreSQL as by SQLite."""
    async with http_bot(stack) as bot:
        await _redelivered_event(stack, bot)


async def test_repost_of_same_bytes_reuses_the_result_on_postgresql(stack: Stack) -> None:
    """Re-posted bytes reuse the stored detection and link the first alert."""
    async with http_bot(stack) as bot:
        await _repost_of_same_bytes(stack, bot)


async def test_slack_votes_reach_a_verdict_on_postgresql(stack: Stack) -> None:
    """Two reviewers' votes give the verdict (votes' `user` column, a reserved word there)."""
    async with http_bot(stack) as bot:
        await _quorum_of_two(stack, bot)


async def test_votes_survive_a_restart_on_postgresql(stack: Stack) -> None:
    """One vote, a restart, a second vote: the quorum counts both."""
    async with http_bot(stack) as bot:
        await _votes_survive_a_restart(stack, bot)


async def test_sigkill_mid_burst_loses_and_doubles_nothing_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_url: str, postgres_url: str
) -> None:
    """A real `modbot serve` process on PostgreSQL killed mid-burst and restarted: every
    acked image is alerted exactly once (test_crash_functional). The restarted process is a
    new replica: it takes the dead one's scans once their leases (3 s here) have run out."""
    async with started_stack(tmp_path, monkeypatch, moto_url=moto_url) as stack:
        monkeypatch.setenv("MODBOT_REKOGNITION_TPS", "4")
        monkeypatch.setenv("MODBOT_LEASE_SECONDS", "3")
        monkeypatch.setenv("DATABASE_URL", postgres_url)
        stack.aws.set_latency(0.2)
        await _sigkill_mid_burst(stack)


async def test_healthz_follows_the_database_away_and_back(
    stack: Stack, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/healthz answers 503 while PostgreSQL is gone and 200 once it is back, scanning then
    works again on fresh connections, and an event that came meanwhile is not acked (Slack
    retries it) and is scanned once when retried."""
    server = make_url(postgres_url)
    relay = TcpRelay(server.host or "127.0.0.1", server.port or 5432)
    await relay.start()
    relayed = server.set(host="127.0.0.1", port=relay.port)
    monkeypatch.setenv("DATABASE_URL", relayed.render_as_string(hide_password=False))
    try:
        async with http_bot(stack) as bot, aiohttp.ClientSession() as session:
            healthz = bot.url.replace("/slack/events", "/healthz")  # type: ignore[attr-defined]

            async def status() -> int:
                async with session.get(healthz) as response:
                    return response.status

            assert await status() == 200
            await relay.stop()
            assert await status() == 503
            await relay.start()
            assert await status() == 200
            assert (await bot.event(_upload_event(stack, CLEAN_COLOR)))["status"] == 200
            await bot.idle()
            assert stack.rekognition_calls() == 1

            # An event arriving while the database is gone is not acked, so Slack retries it;
            # the retry, once the database is back, is taken in and scanned once.
            await relay.stop()
            event = _upload_event(stack, FLAG_COLOR)
            assert (await bot.event(event))["status"] >= 500
            await relay.start()
            assert (await bot.event(event, retry=1))["status"] == 200
            await bot.idle()
            assert stack.rekognition_calls() == 2
            assert len(stack.alerts()) == 1
    finally:
        await relay.stop()
