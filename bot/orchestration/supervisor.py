"""Keeps background loops alive: one place that restarts them after any error and notices an end.

A loop (verdict reporter, reminders, A2I poller and event consumer) is meant to run for as long
as the app does. An exception it did not expect is logged with the task's name and the loop is
started again after a backoff (the `Settings.retry` delays, never given up: a loop has no one
to report to but the log). A task that ends anyway (it returned, or was cancelled by anything
but `close`) is logged as an error at once and listed by `stopped`, which `/healthz` reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bot.core.retry import RetryPolicy

log = logging.getLogger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    def __init__(self, retry: RetryPolicy) -> None:
        self._retry = retry
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._stopped: list[str] = []
        self._closing = False

    def start(self, name: str, loop: Loop) -> None:
        """Run `loop()` as the task `name`, restarting it after any exception."""
        task = asyncio.create_task(self._keep(name, loop), name=name)
        task.add_done_callback(lambda done: self._ended(name, done))
        self.tasks[name] = task

    @property
    def stopped(self) -> list[str]:
        """Tasks that ended while the app runs: the app is no longer doing all its work."""
        return list(self._stopped)

    async def close(self) -> None:
        self._closing = True
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def _keep(self, name: str, loop: Loop) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            try:
                await loop()
            except Exception:
                # A loop that ran well for longer than the longest backoff starts afresh.
                if time.monotonic() - started > self._retry.cap:
                    failures = 0
                failures += 1
                delay = self._retry.delay(failures)
                log.exception("background task %s failed; restarting in %.2fs", name, delay)
                await asyncio.sleep(delay)
            else:
                return  # a loop is not meant to return: reported by _ended

    def _ended(self, name: str, task: asyncio.Task[None]) -> None:
        if self._closing:
            return
        self._stopped.append(name)
        if task.cancelled():
            log.error("background task %s was cancelled; its work has stopped", name)
        elif task.exception() is not None:
            log.error(
                "background task %s died; its work has stopped", name, exc_info=task.exception()
            )
        else:
            log.error("background task %s returned; its work has stopped", name)
