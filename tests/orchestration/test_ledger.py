"""The review ledger: one place that says what earlier posts of the same bytes settled."""

from __future__ import annotations

from bot.adapters.database.reviews import ReviewStore, VoteRule
from bot.adapters.database.scans import Store
from bot.core.model import AlertRef
from bot.core.verdict import Verdict
from bot.orchestration.ledger import ReviewLedger
from tests.orchestration.conftest import alerted_scan

SHA = "a" * 64
VIOLATION = Verdict(violation=True, labels=("Explicit",), workers=2, seconds=5.0)


async def test_first_post_of_bytes_has_no_history(store: Store, reviews: ReviewStore) -> None:
    """Nothing alerted, nothing reviewed: an empty history."""
    scan = await alerted_scan(store, "first", SHA)
    history = await ReviewLedger(store, reviews).history(SHA, scan)
    assert (history.earlier_alert, history.verdict, history.open_review) == (None, None, None)


async def test_a_verdict_on_the_same_bytes_is_reused(store: Store, reviews: ReviewStore) -> None:
    """An earlier scan's verdict comes back with its alert, whichever backend decided it."""
    earlier = await alerted_scan(store, "earlier", SHA, ts="1.000100")
    await reviews.open(earlier, SHA, "a2i", loop_name="modbot-x")
    assert await reviews.decide(earlier, VIOLATION, "a2i-poll")
    now = await alerted_scan(store, "now", SHA, ts="2.000100")

    history = await ReviewLedger(store, reviews).history(SHA, now)

    assert history.earlier_alert == AlertRef("CALERTS", "1.000100")
    assert history.verdict is not None
    assert (history.verdict.violation, history.verdict.labels) == (True, ("Explicit",))
    assert history.verdict.alert == AlertRef("CALERTS", "1.000100")
    assert history.open_review is None


async def test_a_review_still_open_on_the_same_bytes_is_pointed_at(
    store: Store, reviews: ReviewStore
) -> None:
    """No verdict yet, but a review is open: the new post points at it instead of a second."""
    earlier = await alerted_scan(store, "earlier", SHA, ts="1.000100")
    await reviews.open(earlier, SHA, "slack", rule=VoteRule(2, None))
    now = await alerted_scan(store, "now", SHA, ts="2.000100")

    history = await ReviewLedger(store, reviews).history(SHA, now)

    assert history.open_review == AlertRef("CALERTS", "1.000100")
    assert history.verdict is None


async def test_without_review_only_the_earlier_alert_counts(
    store: Store, reviews: ReviewStore
) -> None:
    """MODBOT_REVIEW_BACKEND=none: reviews left from another configuration are not read."""
    earlier = await alerted_scan(store, "earlier", SHA, ts="1.000100")
    await reviews.open(earlier, SHA, "a2i", loop_name="modbot-x")
    assert await reviews.decide(earlier, VIOLATION, "a2i-poll")
    now = await alerted_scan(store, "now", SHA, ts="2.000100")

    history = await ReviewLedger(store).history(SHA, now)

    assert history.earlier_alert == AlertRef("CALERTS", "1.000100")
    assert (history.verdict, history.open_review) == (None, None)
