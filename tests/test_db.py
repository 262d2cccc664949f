"""The SQLite write gate: one writer at a time, in order, urgent writers first."""

from __future__ import annotations

import asyncio

from bot.adapters.database.engine import WriteGate


async def test_writers_take_turns_in_order_with_urgent_ones_first() -> None:
    """Waiting writers run one at a time: urgent ones first, then the rest, each FIFO."""
    gate = WriteGate()
    order: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with gate.hold():
            holding.set()
            await release.wait()
            order.append("first")

    async def writer(name: str, *, urgent: bool) -> None:
        async with gate.hold(urgent=urgent):
            order.append(name)

    running = [asyncio.create_task(first())]
    await holding.wait()
    for name, urgent in [("n1", False), ("u1", True), ("n2", False), ("u2", True)]:
        running.append(asyncio.create_task(writer(name, urgent=urgent)))
    await asyncio.sleep(0)  # let them queue up behind the holder
    release.set()
    await asyncio.gather(*running)
    assert order == ["first", "u1", "u2", "n1", "n2"]


async def test_a_cancelled_waiter_does_not_keep_the_gate() -> None:
    """A writer cancelled while waiting (or just as it is handed the gate) passes it on."""
    gate = WriteGate()
    release = asyncio.Event()
    holding = asyncio.Event()

    async def holder() -> None:
        async with gate.hold():
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with gate.hold():
            pass

    held = asyncio.create_task(holder())
    await holding.wait()
    doomed = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    release.set()
    doomed.cancel()  # cancelled right as the gate is handed to it
    await asyncio.gather(held, doomed, return_exceptions=True)
    async with asyncio.timeout(1):
        async with gate.hold():  # the gate is free again
            pass
