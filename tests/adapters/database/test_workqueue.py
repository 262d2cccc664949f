"""The database work queue: claims are leases, the retry clock and crash counts are durable.

A contract: every test runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.adapters.database.engine import async_url
from bot.adapters.database.scans import Store
from bot.adapters.database.workqueue import DatabaseWorkQueue
from bot.core.model import ImageRef, Origin, ScanRequest, Trigger
from bot.core.work import Lane


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


def _request(key: str, *, file_id: str | None = None) -> ScanRequest:
    return ScanRequest(
        ImageRef(url=f"https://x.example/{key}.png", file_id=file_id),
        Origin(Trigger.LINK, "C1"),
        key,
    )


async def test_a_claim_is_a_lease_that_others_can_take_once_it_expires(store: Store) -> None:
    clock = Clock()
    one = DatabaseWorkQueue(store, holder="one", lease_seconds=60, exclusive=False, clock=clock)
    two = DatabaseWorkQueue(store, holder="two", lease_seconds=60, exclusive=False, clock=clock)
    [scan_id] = await one.put([_request("a")])
    claimed = await one.claim(scan_id)
    assert claimed is not None
    assert (claimed.holder, claimed.lease_until) == ("one", clock.now + 60)
    assert await two.claim(scan_id) is None  # leased to one
    assert await two.waiting() == []
    assert [item.scan_id for item in await one.waiting()] == [scan_id]  # its own
    clock.now += 61  # one died holding it
    [expired] = await two.waiting()
    assert expired.crashes == 1  # a start that never ended
    taken = await two.claim(scan_id)
    assert taken is not None
    assert (taken.holder, taken.crashes, taken.attempts) == ("two", 1, 2)
    assert taken.lane is Lane.SUSPECT
    await two.finish(scan_id, error="gone")
    assert await one.claim(scan_id) is None
    assert await two.waiting() == []


async def test_retry_later_gives_up_the_lease_and_starts_the_retry_clock(store: Store) -> None:
    clock = Clock()
    one = DatabaseWorkQueue(store, holder="one", exclusive=False, clock=clock)
    two = DatabaseWorkQueue(store, holder="two", exclusive=False, clock=clock)
    [scan_id] = await one.put([_request("b", file_id="F1")])
    assert await one.claim(scan_id) is not None
    updated = await one.retry_later(scan_id, delay=30, bug=True)
    assert updated is not None
    assert (updated.failures, updated.bugs, updated.crashes) == (1, 1, 0)
    assert updated.first_failure_at is not None
    [waiting] = await two.waiting()  # no lease: anyone may take it once the clock runs out
    assert (waiting.holder, waiting.not_before, waiting.lane) == (None, clock.now + 30, Lane.FILE)
    again = await two.claim(scan_id)
    assert again is not None
    assert (again.crashes, again.failures, again.not_before) == (0, 1, None)


async def test_release_ends_the_run_and_keeps_the_lease_only_when_asked(store: Store) -> None:
    clock = Clock()
    one = DatabaseWorkQueue(store, holder="one", exclusive=False, clock=clock)
    two = DatabaseWorkQueue(store, holder="two", exclusive=False, clock=clock)
    [scan_id] = await one.put([_request("c")])
    assert await one.claim(scan_id) is not None
    await one.release(scan_id, keep_lease=True)  # waiting for its note
    assert await two.waiting() == []
    [mine] = await one.waiting()
    assert mine.crashes == 0  # no crash: the run ended
    await one.release(scan_id)
    [free] = await two.waiting()
    assert free.holder is None


async def test_the_only_process_of_a_database_voids_the_leases_of_its_earlier_lives(
    store: Store,
) -> None:
    """Today's deployments: a restart takes up everything at once, not after the lease."""
    earlier = DatabaseWorkQueue(store, holder="earlier", lease_seconds=600)
    [scan_id] = await earlier.put([_request("d")])
    assert await earlier.claim(scan_id) is not None  # then SIGKILL
    restarted = DatabaseWorkQueue(store, holder="restarted", lease_seconds=600)
    await restarted.open()
    [item] = await restarted.waiting()
    assert item.crashes == 1
    claimed = await restarted.claim(scan_id)
    assert claimed is not None
    assert claimed.holder == "restarted"
