"""Appeals against a removal (PRODUCT §10): the poster asks, reviewers who did not take the
original decision vote in the alert's thread, and the outcome is told in the thread and to the
poster. An overturned removal takes the image out of the violation memory (`ViolationMemory`).

Like removals, every Slack post is preceded by its recorded intent and looked for before it is
made again, so a crash or a redelivery posts nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from enum import StrEnum
from typing import Protocol

from bot.adapters.database.appeals import Appeal, AppealStore
from bot.adapters.database.removals import RemovalStore
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.slack import Notifier, SlackUnavailable
from bot.core.messages import appeal as texts
from bot.core.messages import removal as removal_texts
from bot.core.retry import RetryPolicy
from bot.orchestration.bank import HashBank
from bot.orchestration.claims import Claims, Unshared
from bot.orchestration.removal import AlertRender, Allowed, DirectMessages

log = logging.getLogger(__name__)


class ViolationMemory(Protocol):
    """What remembers confirmed violations so that re-posts are acted on: the review ledger's
    exact-bytes memory and the hash bank's near-duplicates (`RepostMemory` forgets in both)."""

    async def forget(self, sha256: str) -> None: ...


class RepostMemory:
    """`ViolationMemory` over both memories: confirmed violations of these bytes are marked
    overturned in the review ledger, and leave the hash bank, so neither a re-post nor a
    near-duplicate is treated as a confirmed violation any more."""

    def __init__(self, reviews: ReviewStore, bank: HashBank | None = None) -> None:
        self._reviews = reviews
        self._bank = bank

    async def forget(self, sha256: str) -> None:
        await self._reviews.forget_violation(sha256)
        if self._bank is not None:
            await self._bank.forget(sha256)


class AppealStart(StrEnum):
    NOTHING = "nothing"  # no removal of this scan (or it failed): nothing to appeal
    NOT_POSTER = "not_poster"
    ALREADY = "already"
    OPEN = "open"  # may appeal (the modal), or the appeal was recorded (on submit)


class AppealVote(StrEnum):
    REFUSED = "refused"  # not allowed, or took the original decision: nothing recorded
    CLOSED = "closed"
    RECORDED = "recorded"
    DECIDED = "decided"


class Appeals:
    def __init__(
        self,
        *,
        store: Store,
        removals: RemovalStore,
        appeals: AppealStore,
        notifier: Notifier,
        dms: DirectMessages,
        reviewers: Allowed,
        quorum: int,
        memory: ViolationMemory,
        view: AlertRender,
        retry: RetryPolicy,
        interval: float = 30.0,
        claims: Claims | None = None,
    ) -> None:
        self._store = store
        self._removals = removals
        self._appeals = appeals
        self._notifier = notifier
        self._dms = dms
        self._reviewers = reviewers
        self._quorum = quorum
        self._memory = memory
        self._view = view
        self._retry = retry
        self._interval = interval
        self._claims: Claims = claims or Unshared()
        self._wake = asyncio.Event()

    async def may_appeal(self, scan_id: str, user: str) -> AppealStart:
        removal = await self._removals.get(scan_id)
        if removal is None or removal.status != "removed":
            return AppealStart.NOTHING
        if removal.poster != user:
            return AppealStart.NOT_POSTER
        if await self._appeals.get(scan_id) is not None:
            return AppealStart.ALREADY
        return AppealStart.OPEN

    async def submit(self, scan_id: str, user: str, reason: str) -> AppealStart:
        """The modal's reason: recorded once per removal, then posted in the alert's thread."""
        allowed = await self.may_appeal(scan_id, user)
        if allowed is not AppealStart.OPEN:
            return allowed
        if not await self._appeals.open(scan_id, user, reason.strip()):
            return AppealStart.ALREADY
        self.wake()
        return AppealStart.OPEN

    async def vote(self, scan_id: str, user: str, upheld: bool) -> AppealVote:
        if not await self._reviewers.allows(user):
            return AppealVote.REFUSED
        if user in await self._appeals.original_deciders(scan_id):
            return AppealVote.REFUSED
        appeal = await self._appeals.get(scan_id)
        if appeal is not None and appeal.user == user:
            return AppealVote.REFUSED  # nobody judges their own appeal
        ballot = await self._appeals.vote(
            scan_id, user, upheld, self._quorum, await self._reviewers.current()
        )
        if not ballot.recorded:
            return AppealVote.CLOSED
        if ballot.decided:
            self.wake()
            return AppealVote.DECIDED
        return AppealVote.RECORDED

    # -- the outbox -------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failed_rounds = 0
        while True:
            self._wake.clear()
            failed_rounds = 0 if await self.work_pending() else failed_rounds + 1
            wait = self._retry.delay(failed_rounds) if failed_rounds else self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def work_pending(self) -> bool:
        done = True
        for appeal in [*await self._appeals.unposted(), *await self._appeals.unreported()]:
            claim = f"appeal:{appeal.scan_id}"
            if not await self._claims.take(claim):
                continue  # another replica is telling it right now
            try:
                if appeal.post_ts is None:
                    await self._post(appeal)
                else:
                    await self._report(appeal)
            except Exception as exc:  # Slack down: the outbox keeps it for the next round
                log.warning("appeal for %s not told yet: %r", appeal.scan_id, exc)
                done = False
            finally:
                await asyncio.shield(self._claims.release(claim))
        return done

    async def _post(self, appeal: Appeal) -> None:
        alert = await self._store.alert_for(appeal.scan_id)
        if alert is not None:
            tag = f"{appeal.scan_id}:appeal"
            tried_before = await self._appeals.begin_post(appeal.scan_id)
            if not tried_before or not await self._notifier.find_reply(alert, tag):
                message = texts.appeal_review(appeal.user, appeal.reason, appeal.scan_id)
                await self._notifier.reply(alert, message, scan_id=tag)
            await self._update(appeal.scan_id)
        await self._appeals.posted(appeal.scan_id, alert.ts if alert else "-")

    async def _report(self, appeal: Appeal) -> None:
        scan_id = appeal.scan_id
        upheld = appeal.status == "upheld"
        removal = await self._removals.get(scan_id)
        if not upheld and removal is not None and removal.sha256:
            await self._memory.forget(removal.sha256)
        alert = await self._store.alert_for(scan_id)
        tag = f"{scan_id}:appeal-verdict"
        tried_before = await self._appeals.begin_report(scan_id)
        if alert is not None:
            if not tried_before or not await self._notifier.find_reply(alert, tag):
                message = texts.appeal_verdict(upheld, appeal.reviewers)
                await self._notifier.reply(alert, message, scan_id=tag)
            await self._update(scan_id)
        if removal is not None:
            what = removal_texts.what_removed(
                removal.target.kind, removal.source, removal.target.channel, None
            )
            try:
                if not tried_before or not await self._dms.sent(appeal.user, tag):
                    await self._dms.send(
                        appeal.user, texts.appeal_verdict_dm(upheld, what), tag=tag
                    )
            except SlackUnavailable as exc:
                if exc.transient:
                    raise
                if alert is not None:
                    reason = f"Slack refused the direct message ({exc.error})"
                    await self._notifier.reply(alert, removal_texts.poster_not_told(reason))
        await self._appeals.mark_reported(scan_id)

    async def _update(self, scan_id: str) -> None:
        alert = await self._store.alert_for(scan_id)
        rendered = await self._view.render(scan_id)
        if alert is not None and rendered is not None:
            await self._notifier.update(alert, rendered)
