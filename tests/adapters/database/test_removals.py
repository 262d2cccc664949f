"""The removal and appeal stores: intents recorded once, outcomes once, appeals once, votes
decided in one transaction. A contract: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bot.adapters.database.appeals import AppealStore
from bot.adapters.database.engine import async_url
from bot.adapters.database.removals import RemovalStore
from bot.adapters.database.reviews import ReviewStore, VoteRule
from bot.adapters.database.scans import Store
from bot.core.removal import Target, Why

TARGET = Target("C1", file_id="F1", message_ts="1.2")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store.from_url(async_url(database_url))
    await store.upgrade()
    yield store
    await store.close()


async def _begin(removals: RemovalStore, scan_id: str = "s1", actor: str | None = None) -> bool:
    return await removals.begin(
        scan_id,
        "ab" * 32,
        TARGET,
        poster="U1",
        source="a.png",
        labels=["Explicit"],
        why=Why.BUTTON if actor else Why.FLAG,
        actor=actor,
        notify=True,
    )


async def test_a_removal_is_recorded_once_and_ends_once(store: Store) -> None:
    removals = RemovalStore(store)
    assert await _begin(removals)
    assert not await _begin(removals, actor="U9")  # a second ask changes nothing
    [pending] = await removals.unfinished()
    assert (pending.status, pending.called, pending.actor, pending.notice) == (
        "pending",
        False,
        None,
        "due",
    )
    assert not await removals.begin_call("s1")  # first call: nothing went before
    assert await removals.begin_call("s1")  # after a crash: look before calling again
    await removals.retry_later("s1", time.time() + 5)
    again = await removals.get("s1")
    assert again is not None
    assert again.failures == 1
    assert again.first_failure_at is not None
    await removals.finish("s1", removed=True)
    await removals.finish("s1", removed=False, detail="late")  # the first outcome stands
    done = await removals.get("s1")
    assert done is not None
    assert (done.status, done.detail) == ("removed", None)
    assert not await removals.begin_reply("s1")
    assert await removals.begin_reply("s1")
    await removals.mark_reported("s1")
    assert not await removals.begin_notice("s1")
    await removals.end_notice("s1", sent=True)
    assert await removals.unfinished() == []
    actions = [row["action"] for row in await store.audit_log("s1")]
    assert actions == ["removal_requested", "removed", "poster_notified"]


async def test_an_appeal_is_once_per_removal_and_votes_decide_it(store: Store) -> None:
    removals, appeals, reviews = RemovalStore(store), AppealStore(store), ReviewStore(store)
    await reviews.open("s1", "ab" * 32, "slack", rule=None)
    await reviews.vote("s1", "U5", True, VoteRule(1, None))
    await _begin(removals, actor="U6")
    assert await appeals.original_deciders("s1") == {"U5", "U6"}
    assert await appeals.open("s1", "U1", "because")
    assert not await appeals.open("s1", "U1", "again")
    assert (await appeals.vote("s1", "U7", True, 2, None)).decided is False
    ballot = await appeals.vote("s1", "U8", True, 2, None)
    assert (ballot.recorded, ballot.decided) == (True, True)
    assert not (await appeals.vote("s1", "U9", False, 2, None)).recorded  # closed
    [decided] = await appeals.unreported()
    assert (decided.status, decided.reviewers) == ("upheld", ("U7", "U8"))
    assert not await appeals.begin_report("s1")
    await appeals.mark_reported("s1")
    assert await appeals.unreported() == []


async def test_forgetting_a_violation_takes_it_out_of_the_repost_memory(store: Store) -> None:
    reviews = ReviewStore(store)
    await reviews.open("s1", "cd" * 32, "slack", rule=None)
    await reviews.vote("s1", "U5", True, VoteRule(1, None))
    assert await reviews.latest_verdict("cd" * 32) is not None
    assert await reviews.forget_violation("cd" * 32) == 1
    assert await reviews.latest_verdict("cd" * 32) is None
    kept = await reviews.get("s1")
    assert kept is not None
    assert kept.status == "overturned"
    assert kept.verdict is not None  # still on record
