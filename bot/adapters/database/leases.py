"""Leases on shared work, so several replicas on one database each do a piece of it once.

A lease names a piece of work ("report:<scan id>", "detect:rekognition:<sha256>", ...), the
replica holding it and until when. Taking one is a single atomic upsert: inserted when free,
taken over when expired, refused while another holder's lease runs. The holder renews all its
leases (these and its scans') on a heartbeat while it works, so a long piece of work keeps its
lease and a replica that dies loses all of them within MODBOT_LEASE_SECONDS.

Times are each replica's wall clock (as the scans' leases): replicas are expected to keep their
clocks in step (NTP), and a lease is tens of seconds, far above their drift.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.adapters.database.scans import Store
from bot.adapters.database.schema import leases, scan_runs

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 60.0
Beat = Callable[[], Awaitable[Any]]


class DatabaseLeases:
    """The Claims port (bot/orchestration/claims.py) over the `leases` table."""

    def __init__(
        self,
        store: Store,
        *,
        holder: str,
        seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.holder = holder
        self.seconds = seconds
        self._clock = clock

    async def take(self, name: str) -> bool:
        """Lease `name` to this holder; False while another holder's lease on it runs."""
        now = self._clock()
        async with self._store.write() as conn:
            insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
            statement = insert(leases).values(
                name=name, holder=self.holder, until=now + self.seconds
            )
            # The conflict branch updates only a free row: PostgreSQL re-checks this condition
            # on the row as it is once the row lock is had, so of two takers one wins.
            statement = statement.on_conflict_do_update(
                index_elements=["name"],
                set_={"holder": statement.excluded.holder, "until": statement.excluded.until},
                where=(leases.c.until <= now) | (leases.c.holder == self.holder),
            )
            taken = await conn.execute(statement.returning(leases.c.name))
            return taken.first() is not None

    async def release(self, name: str) -> None:
        """The work is done (or given back): the lease goes, if it is still this holder's."""
        async with self._store.write() as conn:
            await conn.execute(
                delete(leases).where(leases.c.name == name, leases.c.holder == self.holder)
            )

    async def renew(self) -> None:
        """Extend every lease this holder has, on scans and on other work."""
        until = self._clock() + self.seconds
        async with self._store.write() as conn:
            await conn.execute(
                update(leases).where(leases.c.holder == self.holder).values(until=until)
            )
            await conn.execute(
                update(scan_runs)
                .where(scan_runs.c.holder == self.holder, scan_runs.c.lease_until.is_not(None))
                .values(lease_until=until)
            )
            # A dead replica's leases on work no one asked for again (bytes never re-posted):
            # long expired, they go.
            await conn.execute(delete(leases).where(leases.c.until < until - 10 * self.seconds))

    async def keep_renewed(self, *, also: Beat | None = None) -> None:
        """The heartbeat: renew three times per lease, so one missed beat loses nothing (run
        under the Supervisor, which restarts it after an error such as the database away).
        `also`: more to do on each beat (the replica registry's)."""
        while True:
            await asyncio.sleep(self.seconds / 3)
            await self.renew()
            if also is not None:
                await also()
