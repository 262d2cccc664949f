"""The review store: reviews, votes, verdicts and the verdict outbox.

A contract: every test runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.adapters.database.engine import async_url
from bot.adapters.database.reviews import ReviewStore, VoteRule
from bot.adapters.database.scans import Store
from bot.adapters.database.schema import votes
from bot.core.model import Decision
from bot.core.verdict import Verdict


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store.from_url(async_url(database_url))
    await store.upgrade()
    yield store
    await store.close()


@pytest.fixture
def reviews(store: Store) -> ReviewStore:
    return ReviewStore(store)


VIOLATION = Verdict(
    violation=True, labels=("Explicit",), reviewers=("U1", "U2"), workers=0, seconds=12.5
)


async def test_a_review_opens_once_and_is_found_by_scan_and_loop(reviews: ReviewStore) -> None:
    """open() is True once per scan; get() and by_loop() find it; it is open for its backend."""
    assert await reviews.open("s1", "h" * 64, "a2i", loop_name="modbot-s1") is True
    assert await reviews.open("s1", "h" * 64, "a2i", loop_name="modbot-s1") is False
    review = await reviews.get("s1")
    assert review is not None
    assert (review.status, review.backend, review.loop_name) == ("open", "a2i", "modbot-s1")
    assert review.verdict is None
    assert await reviews.by_loop("modbot-s1") == review
    assert await reviews.get("nope") is None
    assert [r.scan_id for r in await reviews.open_reviews("a2i")] == ["s1"]
    assert await reviews.open_reviews("slack") == []


async def test_votes_are_kept_per_reviewer_and_only_while_open(
    store: Store, reviews: ReviewStore
) -> None:
    """A changed vote replaces the reviewer's earlier one (the `user` column, a reserved word
    in PostgreSQL); no vote lands on an unknown or decided review."""
    await reviews.open("s1", "h" * 64, "slack")
    assert (await reviews.vote("s1", "U1", True, QUORUM_OF_3)).recorded
    assert (await reviews.vote("s1", "U1", False, QUORUM_OF_3)).recorded
    assert (await reviews.vote("s1", "U2", True, QUORUM_OF_3)).recorded
    assert await _votes(store, "s1") == {"U1": False, "U2": True}
    assert not (await reviews.vote("unknown", "U1", True, QUORUM_OF_3)).recorded
    assert await reviews.decide("s1", VIOLATION, "U2") is True
    assert not (await reviews.vote("s1", "U3", True, QUORUM_OF_3)).recorded
    actions = [row["action"] for row in await store.audit_log("s1")]
    assert actions == ["review_started", "vote", "vote", "vote", "verdict"]


async def test_a_violation_vote_confirms_the_alerts_causes(
    store: Store, reviews: ReviewStore
) -> None:
    """The labels a violation verdict confirms are the causes begin_alert was given; the alert's
    Slack message is kept as posted, without them."""
    await store.begin_alert(
        "s1", "h" * 64, "C0", Decision.REVIEW, {"text": "alert"}, causes=["Weapons", "Explicit"]
    )
    await store.begin_alert("s2", "h" * 64, "C0", Decision.REVIEW, {"text": "alert"}, causes=[])
    for scan in ("s1", "s2"):
        await reviews.open(scan, "h" * 64, "slack")
        await reviews.vote(scan, "U1", True, QUORUM_OF_2)
    assert await store.alert_message("s1") == {"text": "alert"}
    first = (await reviews.vote("s1", "U2", True, QUORUM_OF_2)).verdict
    assert first is not None
    assert first.labels == ("Weapons", "Explicit")
    second = (await reviews.vote("s2", "U2", True, QUORUM_OF_2)).verdict
    assert second is not None
    assert second.labels == ()


async def test_concurrent_votes_on_one_review_see_each_other(reviews: ReviewStore) -> None:
    """Two reviewers voting at the same moment: the later of the two sees both votes, so a
    quorum of two is reached (no verdict lost between two PostgreSQL transactions)."""
    for round_ in range(12):
        scan = f"s{round_}"
        await reviews.open(scan, "h" * 64, "slack")
        ballots = await asyncio.gather(
            reviews.vote(scan, "U1", True, QUORUM_OF_2), reviews.vote(scan, "U2", True, QUORUM_OF_2)
        )
        decided = [ballot.verdict for ballot in ballots if ballot.verdict is not None]
        assert len(decided) == 1, ballots
        assert decided[0].violation
        assert sorted(decided[0].reviewers) == ["U1", "U2"]


async def test_exactly_one_decider_wins_and_the_verdict_reads_back(
    reviews: ReviewStore,
) -> None:
    """Of concurrent decide() calls exactly one gets True; the verdict round-trips whole."""
    await reviews.open("s1", "h" * 64, "slack")
    won = await asyncio.gather(*(reviews.decide("s1", VIOLATION, f"U{n}") for n in range(6)))
    assert won.count(True) == 1
    assert await reviews.fail("s1", "too late") is False
    review = await reviews.get("s1")
    assert review is not None
    assert review.status == "decided"
    assert review.verdict == VIOLATION
    assert await reviews.latest_verdict("h" * 64) == review


async def test_failed_reviews_and_the_verdict_outbox(reviews: ReviewStore) -> None:
    """A failed or decided review waits in the outbox until reported; reminders are stamped."""
    await reviews.open("s1", "h" * 64, "a2i", loop_name="modbot-s1")
    await reviews.open("s2", "h" * 64, "a2i", loop_name="modbot-s2")
    await reviews.open("s3", "g" * 64, "slack")
    assert await reviews.unreported() == []
    assert await reviews.fail("s1", "loop expired\x00") is True  # NUL: PostgreSQL text refuses
    assert await reviews.fail("s1", "again") is False
    assert await reviews.decide("s2", Verdict(violation=False, workers=3), None) is True
    assert sorted(r.scan_id for r in await reviews.unreported()) == ["s1", "s2"]
    failed = await reviews.get("s1")
    assert failed is not None
    assert failed.status == "failed"
    assert failed.detail is not None
    assert failed.detail.startswith("loop expired")
    await reviews.mark_reported("s1")
    assert [r.scan_id for r in await reviews.unreported()] == ["s2"]
    await reviews.mark_reminded("s3")
    reminded = await reviews.get("s3")
    assert reminded is not None
    assert reminded.reminded_at is not None


async def test_open_review_and_latest_verdict_for_the_same_bytes(reviews: ReviewStore) -> None:
    """open_for finds another scan's open review of the bytes; latest_verdict the newest."""
    await reviews.open("s1", "h" * 64, "slack")
    await reviews.open("s2", "h" * 64, "slack")
    found = await reviews.open_for("h" * 64, excluding="s2")
    assert found is not None
    assert found.scan_id == "s1"
    assert await reviews.open_for("h" * 64, excluding="s1") is not None
    assert await reviews.latest_verdict("h" * 64) is None
    await reviews.decide("s1", VIOLATION, "U1")
    await reviews.decide("s2", Verdict(violation=False, reviewers=("U3",)), "U3")
    latest = await reviews.latest_verdict("h" * 64)
    assert latest is not None
    assert latest.scan_id == "s2"
    assert await reviews.open_for("h" * 64, excluding="s9") is None


QUORUM_OF_2 = VoteRule(quorum=2, allowed=None)
QUORUM_OF_3 = VoteRule(quorum=3, allowed=None)


async def _votes(store: Store, scan_id: str) -> dict[str, bool]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(votes.c.user, votes.c.violation).where(votes.c.scan_id == scan_id)
        )
        return {row.user: bool(row.violation) for row in rows}
