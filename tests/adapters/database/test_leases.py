"""Leases shared by replicas: claims on work other than scans, the heartbeat, the replicas'
policies, and the scan claim that skips a row another replica has locked.

A contract: the tests taking `database_url` run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text

from bot.adapters.database.engine import async_url
from bot.adapters.database.leases import DatabaseLeases
from bot.adapters.database.replicas import ReplicaRegistry
from bot.adapters.database.scans import Store
from bot.adapters.database.schema import scans
from bot.adapters.database.workqueue import DatabaseWorkQueue
from bot.core.model import ImageRef, Origin, ScanRequest, Trigger
from bot.core.policy import DEFAULT_POLICY
from bot.core.policy.file import parse_policy
from bot.core.policy.fingerprint import policy_fingerprint


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store.from_url(async_url(database_url))
    await store.upgrade()
    yield store
    await store.close()


def _request(key: str) -> ScanRequest:
    return ScanRequest(
        ImageRef(url=f"https://x.example/{key}.png", file_id="F1"), Origin(Trigger.LINK, "C1"), key
    )


async def test_a_lease_is_refused_to_others_until_released_or_expired(store: Store) -> None:
    clock = Clock()
    one = DatabaseLeases(store, holder="one", seconds=60, clock=clock)
    two = DatabaseLeases(store, holder="two", seconds=60, clock=clock)
    assert await one.take("report:s1")
    assert await one.take("report:s1")  # its own: taken again (renewed)
    assert not await two.take("report:s1")
    await two.release("report:s1")  # not two's to release
    assert not await two.take("report:s1")
    await one.release("report:s1")
    assert await two.take("report:s1")
    clock.now += 61  # two died holding it
    assert await one.take("report:s1")


async def test_the_heartbeat_keeps_leases_on_work_and_on_scans(store: Store) -> None:
    """A long piece of work renewed on the heartbeat stays its holder's past the first term."""
    clock = Clock()
    one = DatabaseLeases(store, holder="one", seconds=60, clock=clock)
    two = DatabaseLeases(store, holder="two", seconds=60, clock=clock)
    queue_one = DatabaseWorkQueue(
        store, holder="one", lease_seconds=60, exclusive=False, clock=clock
    )
    queue_two = DatabaseWorkQueue(
        store, holder="two", lease_seconds=60, exclusive=False, clock=clock
    )
    [scan_id] = await queue_one.put([_request("a")])
    assert await queue_one.claim(scan_id) is not None
    assert await one.take("detect:rekognition:abc")
    for _ in range(5):  # five minutes of work, beating every 20 s
        for _ in range(3):
            clock.now += 20
            await one.renew()
    assert not await two.take("detect:rekognition:abc")
    assert await queue_two.claim(scan_id) is None
    assert await queue_two.waiting() == []
    clock.now += 61  # the beats stop: one died
    assert await two.take("detect:rekognition:abc")
    assert await queue_two.claim(scan_id) is not None


async def test_a_replica_on_a_shared_queue_voids_no_one_elses_lease(store: Store) -> None:
    """On PostgreSQL a starting replica leaves the others' leases alone: they may be alive."""
    running = DatabaseWorkQueue(store, holder="running", exclusive=False)
    [scan_id] = await running.put([_request("b")])
    assert await running.claim(scan_id) is not None
    starting = DatabaseWorkQueue(store, holder="starting", exclusive=False)
    await starting.open()
    assert starting.shared
    assert await starting.waiting() == []
    assert await starting.claim(scan_id) is None


async def test_a_replica_with_another_policy_is_warned_about(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Warned, not refused: a rolling deploy of a new policy runs both for a while."""
    old = policy_fingerprint(DEFAULT_POLICY)
    new = policy_fingerprint(parse_policy({"defaults": {"flag": 80}}, "new.toml"))
    assert old != new
    assert policy_fingerprint(parse_policy({}, "elsewhere.toml")) == old  # the rules, not a path
    first = ReplicaRegistry(store, holder="first", policy=old, lease_seconds=60)
    same = ReplicaRegistry(store, holder="same", policy=old, lease_seconds=60)
    other = ReplicaRegistry(store, holder="other", policy=new, lease_seconds=60)
    assert await first.beat() == []
    assert await same.beat() == []
    with caplog.at_level(logging.WARNING, logger="bot.adapters.database.replicas"):
        differing = await other.beat()
        await other.beat()  # once per replica, not on every beat
    assert sorted(replica.holder for replica in differing) == ["first", "same"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert f"fingerprint {old}; this replica's is {new}" in warnings[0]
    await other.leave()
    assert await first.beat() == []


@pytest.mark.postgres
async def test_simultaneous_takes_give_the_lease_to_one(postgres_url: str) -> None:
    store = Store.from_url(async_url(postgres_url))
    await store.upgrade()
    try:
        replicas = [DatabaseLeases(store, holder=f"r{n}") for n in range(8)]
        for round_ in range(5):
            name = f"a2i:loop-{round_}"
            taken = await asyncio.gather(*(replica.take(name) for replica in replicas))
            assert taken.count(True) == 1
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_claim_skips_a_scan_another_replica_has_locked(postgres_url: str) -> None:
    """FOR UPDATE SKIP LOCKED: a replica claiming a scan whose row another replica holds
    locked gets None at once instead of waiting for that transaction."""
    store = Store.from_url(async_url(postgres_url))
    await store.upgrade()
    try:
        queue = DatabaseWorkQueue(store, holder="one", exclusive=False)
        [scan_id] = await queue.put([_request("c")])
        async with store.engine.connect() as other:
            await other.execute(text("SET lock_timeout = '10s'"))
            await other.execute(select(scans.c.id).where(scans.c.id == scan_id).with_for_update())
            async with asyncio.timeout(2):
                assert await queue.claim(scan_id) is None
            await other.rollback()
        assert await queue.claim(scan_id) is not None
    finally:
        await store.close()
