"""The deployment's one Rekognition quota, kept in PostgreSQL so every replica draws from it.

Each claim locks the quota's row for a moment (SELECT ... FOR UPDATE), hands out the next send
slots of one schedule shared by all replicas (bot.adapters.ratelimit.claim_slots) and applies
what the claiming replica saw (successes, throttles) to the shared rate. Slot times are on the
database server's clock, the one clock every replica can read; each replica translates them to
its own monotonic clock with the offset measured on its quickest recent round trip, as NTP does.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from sqlalchemy import Float, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.database.engine import insert_ignoring_duplicates
from bot.adapters.database.schema import rate_gates
from bot.adapters.ratelimit import Feedback, GateState, Grant, claim_slots

REKOGNITION = "rekognition"
OFFSET_SAMPLES_SECONDS = 60.0  # clocks drift apart slowly; a minute of samples is recent


class ClockOffset:
    """Server clock minus local clock, from round trips: the quickest recent one is the truest.

    A reading of the server's clock was taken somewhere between sending the query (`sent`)
    and reading its answer (`received`); the midpoint is off by at most half the round trip,
    so the sample with the shortest round trip bounds the error best.
    """

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float, float]] = deque()  # (received, rtt, offset)

    def add(self, sent: float, received: float, server: float) -> float:
        """Record one round trip; return the best current offset."""
        self._samples.append((received, received - sent, server - (sent + received) / 2))
        while self._samples[0][0] < received - OFFSET_SAMPLES_SECONDS:
            self._samples.popleft()
        return min(self._samples, key=lambda sample: sample[1])[2]


def quota_gate(engine: AsyncEngine) -> DatabaseQuotaGate | None:
    """The shared gate where replicas can share a database (PostgreSQL); None for SQLite, which
    serves one process, whose local limiter alone keeps the quota."""
    return DatabaseQuotaGate(engine) if engine.dialect.name == "postgresql" else None


class DatabaseQuotaGate:
    """A bot.adapters.ratelimit.QuotaGate on one row of `rate_gates` (PostgreSQL)."""

    def __init__(
        self,
        engine: AsyncEngine,
        name: str = REKOGNITION,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._name = name
        self._clock = clock
        self._offset = ClockOffset()

    async def claim(self, count: int, ceiling: float, feedback: Feedback) -> Grant:
        server_now = cast(func.extract("epoch", func.clock_timestamp()), Float)
        async with self._engine.begin() as conn:
            query = (
                select(rate_gates, server_now.label("now"))
                .where(rate_gates.c.name == self._name)
                .with_for_update()
            )
            sent = self._clock()
            row = (await conn.execute(query)).first()
            received = self._clock()
            if row is None:  # the first claim ever: make the row, then take it
                await conn.execute(
                    insert_ignoring_duplicates(conn.dialect.name)(rate_gates).values(
                        name=self._name, rate=ceiling, last_slot=0.0, last_decrease=0.0
                    )
                )
                sent = self._clock()
                row = (await conn.execute(query)).one()
                received = self._clock()
            offset = self._offset.add(sent, received, float(row.now))
            state, slots = claim_slots(
                GateState(row.rate, row.last_slot, row.last_decrease),
                now=float(row.now),
                count=count,
                ceiling=ceiling,
                feedback=feedback,
            )
            await conn.execute(
                update(rate_gates)
                .where(rate_gates.c.name == self._name)
                .values(
                    rate=state.rate, last_slot=state.last_slot, last_decrease=state.last_decrease
                )
            )
        return Grant(tuple(slot - offset for slot in slots), state.rate)
