"""Which replicas work this database and with which policy: a replica whose policy differs from
a live one's is logged as a warning (not refused: a rolling deploy of a new policy runs old and
new replicas side by side for a while, and refusing would stop it half way)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select

from bot.adapters.database.engine import upsert
from bot.adapters.database.scans import Store
from bot.adapters.database.schema import replicas

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replica:
    holder: str
    policy: str  # the fingerprint of its policy (bot.core.policy.fingerprint)


class ReplicaRegistry:
    def __init__(
        self,
        store: Store,
        *,
        holder: str,
        policy: str,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._me = Replica(holder, policy)
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._started_at = clock()
        self._warned: set[str] = set()

    async def beat(self) -> list[Replica]:
        """Say this replica is alive with its policy; warn about live replicas whose policy
        differs (once each). Returns those replicas."""
        now = self._clock()
        values = {
            "holder": self._me.holder,
            "policy": self._me.policy,
            "started_at": self._started_at,
            "seen_at": now,
        }
        async with self._store.write() as conn:
            await conn.execute(upsert(conn.dialect.name, replicas, ["holder"], values))
            # Gone for several leases: dead (a kill leaves its row); its row goes.
            await conn.execute(
                delete(replicas).where(replicas.c.seen_at < now - 3 * self._lease_seconds)
            )
        async with self._store.engine.connect() as conn:
            rows = await conn.execute(
                select(replicas.c.holder, replicas.c.policy).where(
                    replicas.c.holder != self._me.holder, replicas.c.policy != self._me.policy
                )
            )
            others = [Replica(row.holder, row.policy) for row in rows]
        for other in others:
            if other.holder not in self._warned:
                self._warned.add(other.holder)
                log.warning(
                    "replica %s runs a different policy (fingerprint %s; this replica's is %s):"
                    " until every replica runs the same policy file, the same image may be"
                    " judged differently depending on which replica scans it",
                    other.holder,
                    other.policy,
                    self._me.policy,
                )
        return others

    async def leave(self) -> None:
        """At a clean shutdown: no longer a live replica."""
        async with self._store.write() as conn:
            await conn.execute(delete(replicas).where(replicas.c.holder == self._me.holder))
