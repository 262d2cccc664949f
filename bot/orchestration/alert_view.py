"""The alert as it stands now (verdict, removal, appeal), so whichever update runs last shows
all of it: the verdict reporter and the removal outbox both render it from the database."""

from __future__ import annotations

from bot.adapters.database.appeals import AppealStore
from bot.adapters.database.removals import RemovalStore
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.core.messages import removal as texts
from bot.core.messages.common import SlackMessage


class AlertView:
    def __init__(
        self,
        store: Store,
        reviews: ReviewStore,
        removals: RemovalStore,
        appeals: AppealStore,
    ) -> None:
        self._store = store
        self._reviews = reviews
        self._removals = removals
        self._appeals = appeals

    async def render(self, scan_id: str) -> SlackMessage | None:
        original = await self._store.alert_message(scan_id)
        review = await self._reviews.get(scan_id)
        removal = await self._removals.get(scan_id)
        lines: list[str] = []
        if removal is not None:
            if removal.status == "removed":
                by = texts.decided_by(removal.why, removal.actor)
                lines.append(f"Removed — decided by {by}.")
            elif removal.status == "failed":
                lines.append("Could not remove the image: see the thread.")
            else:
                lines.append("Removal under way.")
            appeal = await self._appeals.get(scan_id)
            if appeal is not None:
                lines.append(
                    f"Appeal from <@{appeal.user}>: open."
                    if appeal.status == "open"
                    else f"Appeal verdict: {appeal.status}."
                )
        verdict = review.verdict if review is not None else None
        return texts.current_alert(original, verdict, lines, keep_remove=removal is None)
