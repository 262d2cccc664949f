"""Tells verdicts in Slack: thread reply, alert update. Works from the database outbox, so a
verdict reached just before a crash or while Slack was down is still reported later, once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from bot.adapters.database.reviews import Review, ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.slack import Notifier
from bot.core import messages
from bot.core.messages import SlackMessage
from bot.core.metrics import NO_METRICS, Metrics
from bot.core.retry import RetryPolicy
from bot.core.verdict import Verdict
from bot.orchestration.claims import Claims, Unshared


class AlertRender(Protocol):
    """The alert as it stands now (verdict, removal, appeal)."""

    async def render(self, scan_id: str) -> SlackMessage | None: ...


class VerdictFollowUp(Protocol):
    """What a reported verdict leads to (removal under the policy), recorded before the
    verdict counts as reported, so a crash in between repeats it (idempotently)."""

    async def at_verdict(self, scan_id: str, verdict: Verdict) -> None: ...


log = logging.getLogger(__name__)


class VerdictReporter:
    def __init__(
        self,
        store: Store,
        reviews: ReviewStore,
        notifier: Notifier,
        *,
        retry: RetryPolicy,
        interval: float = 30.0,
        metrics: Metrics = NO_METRICS,
        view: AlertRender | None = None,
        follow_up: VerdictFollowUp | None = None,
        claims: Claims | None = None,
    ) -> None:
        self._view = view
        self._follow_up = follow_up
        self._store = store
        self._metrics = metrics
        self._claims: Claims = claims or Unshared()
        self._reviews = reviews
        self._notifier = notifier
        self._retry = retry
        self._interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Report whatever is pending now, then again whenever woken (or every `interval`);
        after a failed round, again after a backoff (Slack may be back by then)."""
        failed_rounds = 0
        while True:
            self._wake.clear()
            failed_rounds = 0 if await self.report_pending() else failed_rounds + 1
            wait = self._retry.delay(failed_rounds) if failed_rounds else self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def report_pending(self) -> bool:
        """One round over the outbox; False if something is left for the next round."""
        reported_all = True
        for review in await self._reviews.unreported():
            try:
                await self._report(review)
            except Exception as exc:  # Slack down or unreachable: the outbox keeps it
                log.warning("verdict for %s not reported yet: %r", review.scan_id, exc)
                reported_all = False
        return reported_all

    async def _report(self, review: Review) -> None:
        """Tell one review's outcome, claimed: of several replicas reading the same outbox, one
        tells it; if that one dies midway, its claim expires and another takes over (the
        reply's intent, below, keeps the thread from getting it twice)."""
        claim = f"report:{review.scan_id}"
        if not await self._claims.take(claim):
            return  # another replica is telling it right now
        try:
            current = await self._reviews.get(review.scan_id)
            if current is not None and not current.reported:  # not told meanwhile
                await self._tell(current)
        finally:
            await asyncio.shield(self._claims.release(claim))

    async def _tell(self, review: Review) -> None:
        alert = await self._store.alert_for(review.scan_id)
        if alert is not None:
            if review.verdict is not None:
                rendered = await self._view.render(review.scan_id) if self._view else None
                if rendered is None:
                    original = await self._store.alert_message(review.scan_id)
                    rendered = messages.resolved_alert(original, review.verdict)
                await self._notifier.update(alert, rendered)
                reply = messages.verdict(review.verdict)
            else:
                reply = messages.review_failed(review.detail or "", review.loop_name)
            # The intent goes first: if an earlier attempt's reply reached Slack (a crash or a
            # lost answer before mark_reported), it is found in the thread, not posted twice.
            tried_before = await self._reviews.begin_reply(review.scan_id)
            if not tried_before or not await self._notifier.find_reply(alert, review.scan_id):
                await self._notifier.reply(alert, reply, scan_id=review.scan_id)
        if review.verdict is not None and self._follow_up is not None:
            await self._follow_up.at_verdict(review.scan_id, review.verdict)
        await self._reviews.mark_reported(review.scan_id)
        verdict = review.verdict
        outcome = (
            "failed" if verdict is None else "violation" if verdict.violation else "no_violation"
        )
        self._metrics.verdict_reported(outcome)
