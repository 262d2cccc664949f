"""The Supervisor keeps background loops alive and notices the ones that end anyway."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.core.retry import RetryPolicy
from bot.orchestration.supervisor import Supervisor

FAST = RetryPolicy(limit=60, base=0.01, cap=0.01)


async def test_a_loop_that_raises_is_logged_and_restarted_after_a_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Any exception: logged with the task's name, the loop runs again; nothing is 'stopped'."""
    runs = 0
    third = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise ConnectionResetError("slack went away")
        third.set()
        await asyncio.Event().wait()  # then runs for good

    supervisor = Supervisor(FAST)
    supervisor.start("flaky", flaky)
    await asyncio.wait_for(third.wait(), 5)
    assert supervisor.stopped == []
    failures = [r for r in caplog.records if "background task flaky failed" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].exc_info is not None
    await supervisor.close()
    assert supervisor.stopped == []  # closing is not dying


async def test_a_loop_that_returns_or_is_cancelled_is_reported_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A loop that ends (returns, or is cancelled by anything but close) is an error, listed."""

    async def forever() -> None:
        await asyncio.Event().wait()

    async def returns() -> None:
        return

    supervisor = Supervisor(FAST)
    supervisor.start("returns", returns)
    supervisor.start("cancelled", forever)
    supervisor.start("healthy", forever)
    await asyncio.sleep(0)
    supervisor.tasks["cancelled"].cancel()
    await asyncio.wait_for(
        asyncio.gather(
            supervisor.tasks["returns"], supervisor.tasks["cancelled"], return_exceptions=True
        ),
        5,
    )
    assert sorted(supervisor.stopped) == ["cancelled", "returns"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("returns" in message for message in errors)
    assert any("cancelled" in message for message in errors)
    await supervisor.close()
