"""Keeps the database to MODBOT_RETENTION_DAYS: a pruning run now and then, in the background."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400.0
RUN_EVERY_SECONDS = 3_600.0  # old rows need not go the minute they age; an hour is plenty


class Pruner(Protocol):
    async def prune(self, cutoff: float) -> dict[str, int] | None:
        """Delete what is older than `cutoff` (epoch seconds); rows deleted by table, or None
        when another replica's run is under way."""


async def keep_pruning(
    pruner: Pruner,
    days: float,
    *,
    every: float = RUN_EVERY_SECONDS,
    clock: Callable[[], float] = time.time,
) -> None:
    """Prune at start and then every `every` seconds, forever (run under the Supervisor)."""
    while True:
        pruned = await pruner.prune(clock() - days * DAY_SECONDS)
        if pruned is None:
            log.debug("retention: another replica is pruning")
        elif any(pruned.values()):
            counts = ", ".join(f"{count} {table}" for table, count in pruned.items() if count)
            log.info("retention: deleted %s older than %g days", counts, days)
        await asyncio.sleep(every)
