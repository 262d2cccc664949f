"""The review ledger: what earlier posts of the same bytes settled, whichever backend reviewed
them. The scan reads it to reuse a verdict or point at an open review; a hash bank or appeals
would read it too."""

from __future__ import annotations

from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.core.model import History, PriorVerdict


class ReviewLedger:
    """Over the scan store and, when human review is on, the review store."""

    def __init__(self, store: Store, reviews: ReviewStore | None = None) -> None:
        self._store = store
        self._reviews = reviews

    async def history(self, sha256: str, scan_id: str) -> History:
        """An earlier alert for the same bytes, and a verdict or a review still open on them
        (reviews count only while a review backend is configured)."""
        store, reviews = self._store, self._reviews
        history = History(earlier_alert=await store.earliest_alert(sha256, excluding=scan_id))
        if reviews is None:
            return history
        decided = await reviews.latest_verdict(sha256)
        if decided is not None and decided.verdict is not None:
            return History(
                earlier_alert=history.earlier_alert,
                verdict=PriorVerdict(
                    violation=decided.verdict.violation,
                    labels=decided.verdict.labels,
                    alert=await store.alert_for(decided.scan_id),
                ),
            )
        still_open = await reviews.open_for(sha256, excluding=scan_id)
        if still_open is not None:
            return History(
                earlier_alert=history.earlier_alert,
                open_review=await store.alert_for(still_open.scan_id),
            )
        return history
