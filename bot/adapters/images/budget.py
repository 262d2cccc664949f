"""Image decodes run in threads only while their estimated memory fits MODBOT_DECODE_MEMORY_MB.

Each decode reserves what bot.adapters.images.prepare.decode_memory says it will take, before it
starts, and
returns it when its thread is done. So a burst of large images queues here instead of being
decoded side by side, and the process's image memory stays within the budget.
"""

from __future__ import annotations

import asyncio
import ctypes
import weakref
from collections import deque

from bot.adapters.images.prepare import (
    DEFAULT_MEMORY_LIMIT,
    PreparedImage,
    decode_memory,
    prepare_image,
)


class DecodeBudget:
    """Bytes that decodes in flight may hold together.

    Waiters are served first come, first served: a large image is not starved by a stream of
    small ones that would each fit beside the decodes already running.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self.high_water = 0  # the most ever reserved at once: for tests and the benchmark
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, nbytes: int) -> None:
        """Wait until `nbytes` (at most the capacity) fit, and reserve them."""
        if nbytes > self.capacity:
            raise ValueError(f"{nbytes} bytes is more than the whole budget")
        if not self._waiters and self.in_use + nbytes <= self.capacity:
            self._take(nbytes)
            return
        waiter = (nbytes, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter[1]
        except asyncio.CancelledError:
            if waiter[1].done() and not waiter[1].cancelled():
                self.release(nbytes)  # granted just as we were cancelled: give it back
            else:
                self._waiters.remove(waiter)
                self._grant()  # it may have been first in line, holding the others back
            raise

    def release(self, nbytes: int) -> None:
        self.in_use -= nbytes
        self._grant()

    def _take(self, nbytes: int) -> None:
        self.in_use += nbytes
        self.high_water = max(self.high_water, self.in_use)

    def _grant(self) -> None:
        while self._waiters and self.in_use + self._waiters[0][0] <= self.capacity:
            nbytes, future = self._waiters.popleft()
            self._take(nbytes)
            future.set_result(None)


# One budget per event loop: memory is the process's, and a process runs one bot on one loop;
# keying by loop lets tests start a bot per loop in one process without sharing state.
_BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DecodeBudget] = (
    weakref.WeakKeyDictionary()
)


def install(budget: DecodeBudget) -> None:
    """Make `budget` the one that decodes on the running loop use."""
    _BUDGETS[asyncio.get_running_loop()] = budget
    _return_freed_pixels()


# glibc's malloc raises its mmap threshold each time a large block is freed, after which image
# buffers come from per-thread heaps that keep freed memory. Decodes in different threads then
# add up in RSS although the budget keeps them apart in time (measured: 421 MB over idle for a
# 256 MB budget; 184 MB with the threshold fixed). A fixed threshold keeps large blocks mmapped,
# so each goes back to the system when its image is freed.
_M_MMAP_THRESHOLD = -3
_LARGE = 1024 * 1024


def _return_freed_pixels() -> None:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS): its allocator returns large blocks
        return
    mallopt(_M_MMAP_THRESHOLD, _LARGE)


def current() -> DecodeBudget:
    """The running loop's budget (a default one if none was installed)."""
    loop = asyncio.get_running_loop()
    budget = _BUDGETS.get(loop)
    if budget is None:
        budget = _BUDGETS[loop] = DecodeBudget(DEFAULT_MEMORY_LIMIT)
    return budget


async def prepare_within_budget(data: bytes) -> PreparedImage:
    """bot.adapters.images.prepare.prepare_image in a thread, once the memory it will take is free.

    An image that alone needs more than the whole budget is refused (ImageRejected, "image too
    large to process"); the decode itself is made smaller first where that fits.
    """
    budget = current()
    # One trip to a thread: most images are sent as they are, known from their headers alone.
    cost = await asyncio.to_thread(_as_is_or_cost, data, budget.capacity)
    if isinstance(cost, PreparedImage):  # never decoded: no reason to queue behind decodes
        return cost
    await budget.acquire(cost)
    work = asyncio.ensure_future(asyncio.to_thread(prepare_image, data, budget.capacity))
    # Released when the thread is done, not when the caller stops waiting: a cancelled scan's
    # decode still holds its memory until it finishes.
    work.add_done_callback(lambda done: _settle(budget, cost, done))
    return await asyncio.shield(work)


def _as_is_or_cost(data: bytes, capacity: int) -> PreparedImage | int:
    """The image as it will be sent, if it needs no decoding; else what decoding it will take."""
    cost = decode_memory(data, capacity)
    return prepare_image(data, capacity) if cost == 0 else cost


def _settle(budget: DecodeBudget, cost: int, done: asyncio.Future[PreparedImage]) -> None:
    budget.release(cost)
    if not done.cancelled():
        done.exception()  # retrieved here too, so an abandoned failure is not logged as lost
