"""Acting on the verdict (PRODUCT §10): remove the image from Slack, once, and say so.

Whoever asks (the policy at a scan or a verdict, a reviewer's Remove button) only records the
intent in the database; one outbox loop (`run`) then makes the delete call, posts `Removed:` or
`Could not remove:` in the alert's thread, updates the alert and tells the poster. Each step
records its own intent first, so after a crash it looks before acting again: a delete call is
checked against Slack (is the file still there?), a reply against the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from enum import StrEnum
from typing import Protocol

from bot.adapters.database.removals import Removal, RemovalStore
from bot.adapters.database.scans import Store
from bot.adapters.slack import Notifier, SlackUnavailable
from bot.core.messages import removal as texts
from bot.core.messages.common import SlackMessage
from bot.core.metrics import NO_METRICS, Metrics
from bot.core.model import AlertRef, ScanReport, ScanRequest
from bot.core.policy import Policy
from bot.core.removal import Target, Why, removal_at_scan, removal_at_verdict, target_of
from bot.core.retry import RetryPolicy
from bot.core.verdict import Verdict
from bot.orchestration.claims import Claims, Unshared

log = logging.getLogger(__name__)


class Remover(Protocol):
    """Deletes what shows an image in Slack (files.delete / chat.delete)."""

    async def delete(self, target: Target) -> None: ...

    async def exists(self, target: Target) -> bool: ...


class DirectMessages(Protocol):
    """A message to one user; `sent` finds one again by its tag (after a crash)."""

    async def send(self, user: str, message: SlackMessage, *, tag: str) -> None: ...

    async def sent(self, user: str, tag: str) -> bool: ...


class Allowed(Protocol):
    """Who may decide (MODBOT_REVIEWERS)."""

    async def allows(self, user: str) -> bool: ...

    async def current(self) -> frozenset[str] | None: ...


class AlertRender(Protocol):
    async def render(self, scan_id: str) -> SlackMessage | None: ...


class RemoveResult(StrEnum):
    REFUSED = "refused"  # not an allowed reviewer
    NOTHING = "nothing"  # no such alert, not this alert's button, or nothing removable
    ALREADY = "already"  # removed already, or under way
    ACCEPTED = "accepted"


def reply_tag(scan_id: str) -> str:
    return f"{scan_id}:removal"


class Removals:
    def __init__(
        self,
        *,
        store: Store,
        removals: RemovalStore,
        notifier: Notifier,
        remover: Remover,
        dms: DirectMessages,
        policy: Policy,
        reviewers: Allowed,
        view: AlertRender,
        retry: RetryPolicy,
        notify_poster: bool,
        interval: float = 30.0,
        metrics: Metrics = NO_METRICS,
        claims: Claims | None = None,
    ) -> None:
        self._store = store
        self._removals = removals
        self._notifier = notifier
        self._remover = remover
        self._dms = dms
        self._policy = policy
        self._reviewers = reviewers
        self._view = view
        self._retry = retry
        self._notify = notify_poster
        self._interval = interval
        self._metrics = metrics
        self._claims: Claims = claims or Unshared()
        self._wake = asyncio.Event()

    # -- who asks ---------------------------------------------------------------------------

    async def at_scan(self, report: ScanReport) -> None:
        """After the alert: a flag under `on_flag`, or a re-post of a confirmed violation.

        This is the one place a scan's outcome turns into a removal, so a near-duplicate match
        that comes back as a confirmed-violation history gets removed the same way."""
        channel = report.request.origin.channel
        why = removal_at_scan(self._policy, report.outcome, report.history, channel)
        if why is None:
            return
        prior = report.history.verdict
        labels = (
            prior.labels
            if why is Why.REPOST and prior is not None and prior.labels
            else tuple(label.name for label in report.outcome.causes)
        )
        await self._begin(
            report.scan_id,
            sha256=report.sha256,
            request=report.request,
            labels=labels,
            why=why,
            actor=None,
        )

    async def at_verdict(self, scan_id: str, verdict: Verdict) -> None:
        """A human verdict: a confirmed violation is removed under on_violation or on_flag."""
        if not verdict.violation:
            return
        scan = await self._store.scan_of(scan_id)
        if scan is None:
            return
        request, sha256 = scan
        labels = verdict.labels or await self._store.alert_causes(scan_id)
        if removal_at_verdict(self._policy, request.origin.channel, labels):
            await self._begin(
                scan_id,
                sha256=sha256 or "",
                request=request,
                labels=labels,
                why=Why.VERDICT,
                actor=None,
            )

    async def by_button(self, scan_id: str, user: str, message_ts: str | None) -> RemoveResult:
        """The Remove button. Only on the alert it belongs to, only by allowed reviewers."""
        if not await self._reviewers.allows(user):
            return RemoveResult.REFUSED
        alert = await self._store.alert_for(scan_id)
        original = await self._store.alert_message(scan_id)
        if alert is None or alert.ts != message_ts or texts.ACTION_REMOVE not in str(original):
            return RemoveResult.NOTHING  # forged, replayed on another message, or no button
        scan = await self._store.scan_of(scan_id)
        if scan is None:
            return RemoveResult.NOTHING
        request, sha256 = scan
        if target_of(request) is None:
            return RemoveResult.NOTHING
        labels = await self._store.alert_causes(scan_id)
        began = await self._begin(
            scan_id, sha256=sha256 or "", request=request, labels=labels, why=Why.BUTTON, actor=user
        )
        return RemoveResult.ACCEPTED if began else RemoveResult.ALREADY

    async def _begin(
        self,
        scan_id: str,
        *,
        sha256: str,
        request: ScanRequest,
        labels: tuple[str, ...],
        why: Why,
        actor: str | None,
    ) -> bool:
        target = target_of(request)
        if target is None:
            return False
        began = await self._removals.begin(
            scan_id,
            sha256,
            target,
            poster=request.origin.user,
            source=request.image.label,
            labels=labels,
            why=why,
            actor=actor,
            notify=self._notify,
        )
        if began:
            self.wake()
        return began

    # -- the outbox -------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Work the outbox now, whenever woken, and every `interval` (retries fall due)."""
        while True:
            self._wake.clear()
            wait = await self.work_pending()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def work_pending(self) -> float:
        """One round; returns how long until the next is worth doing."""
        wait = self._interval
        for removal in await self._removals.unfinished():
            try:
                due_in = await self._advance(removal)
            except Exception as exc:  # Slack down, or a bug in one: the others go on
                log.warning("removal for %s not finished yet: %r", removal.scan_id, exc)
                due_in = self._retry.delay(1)
            if due_in is not None:
                wait = min(wait, due_in)
        return max(0.05, wait)

    async def _advance(self, listed: Removal) -> float | None:
        """Take one removal as far as it goes; the seconds until it is worth another look.

        Claimed: of several replicas reading the same outbox, one works a removal at a time,
        and a dead one's claim expires (the intent recorded before the call covers the rest)."""
        claim = f"removal:{listed.scan_id}"
        if not await self._claims.take(claim):
            return None  # another replica has it in hand
        try:
            removal = await self._removals.get(listed.scan_id)  # as it is now, not as listed
            return None if removal is None else await self._advance_claimed(removal)
        finally:
            await asyncio.shield(self._claims.release(claim))

    async def _advance_claimed(self, removal: Removal) -> float | None:
        now = time.time()
        if removal.status == "pending":
            if removal.not_before is not None and removal.not_before > now:
                return removal.not_before - now
            later = await self._call(removal)
            if later is not None:
                return later
            removal = await self._removals.get(removal.scan_id) or removal
        if not removal.reported:
            await self._report(removal)
        if removal.status == "removed" and removal.notice == "due":
            return await self._tell_poster(removal)
        return None

    async def _call(self, removal: Removal) -> float | None:
        scan_id, target = removal.scan_id, removal.target
        maybe_done = await self._removals.begin_call(scan_id)
        if maybe_done and not await self._remover.exists(target):
            # An earlier call went through just before a crash: removed, not to be repeated.
            await self._removals.finish(scan_id, removed=True, detail="found deleted on restart")
            self._metrics.removal("removed")
            return None
        try:
            await self._remover.delete(target)
        except SlackUnavailable as exc:
            now = time.time()
            first = removal.first_failure_at or now
            if exc.transient and not self._retry.exhausted(first, now):
                wait = self._retry.delay(removal.failures + 1, retry_after=exc.retry_after)
                await self._removals.retry_later(scan_id, now + wait)
                log.info("removal of %s retried in %.1fs (%s)", scan_id, wait, exc.error)
                return wait
            if exc.transient:
                detail = (
                    f"Slack kept failing ({exc.error}) for too long. To fix: remove the image by "
                    "hand."
                )
            else:
                detail = texts.removal_failure(exc.error or str(exc))
            await self._removals.finish(scan_id, removed=False, detail=detail)
            self._metrics.removal("failed")
            return None
        await self._removals.finish(scan_id, removed=True)
        self._metrics.removal("removed")
        return None

    async def _report(self, removal: Removal) -> None:
        alert = await self._store.alert_for(removal.scan_id)
        if alert is not None:
            await self._reply_once(alert, removal)
            rendered = await self._view.render(removal.scan_id)
            if rendered is not None:
                await self._notifier.update(alert, rendered)
        await self._removals.mark_reported(removal.scan_id)

    async def _reply_once(self, alert: AlertRef, removal: Removal) -> None:
        what = texts.what_removed(
            removal.target.kind, removal.source, removal.target.channel, removal.poster
        )
        if removal.status == "removed":
            reply = texts.removed(what, removal.why, removal.actor)
        else:
            reply = texts.could_not_remove(what, removal.detail or "")
        tag = reply_tag(removal.scan_id)
        tried_before = await self._removals.begin_reply(removal.scan_id)
        if not tried_before or not await self._notifier.find_reply(alert, tag):
            await self._notifier.reply(alert, reply, scan_id=tag)

    async def _tell_poster(self, removal: Removal) -> float | None:
        assert removal.poster is not None  # notice is due only with a poster
        scan_id, poster = removal.scan_id, removal.poster
        tag = f"{scan_id}:notice"
        what = texts.what_removed(removal.target.kind, removal.source, removal.target.channel, None)
        notice = texts.poster_notice(scan_id, what, removal.labels, appeal=True)
        try:
            if await self._removals.begin_notice(scan_id) and await self._dms.sent(poster, tag):
                await self._removals.end_notice(scan_id, sent=True)
                return None
            await self._dms.send(poster, notice, tag=tag)
        except SlackUnavailable as exc:
            if exc.transient:
                return self._retry.delay(1, retry_after=exc.retry_after)
            reason = _dm_failure(exc.error or str(exc))
            alert = await self._store.alert_for(scan_id)
            # The note goes before the notice is closed, and is looked for first: after a
            # crash in between it is neither lost nor posted twice.
            note_tag = f"{scan_id}:notice-failed"
            if alert is not None and not await self._notifier.find_reply(alert, note_tag):
                await self._notifier.reply(alert, texts.poster_not_told(reason), scan_id=note_tag)
            await self._removals.end_notice(scan_id, sent=False, detail=reason)
            return None
        await self._removals.end_notice(scan_id, sent=True)
        return None


def _dm_failure(error: str) -> str:
    plain = {
        "user_not_found": "the poster is no longer in the workspace",
        "user_disabled": "the poster's account has been deactivated",
        "account_inactive": "the poster's account has been deactivated",
        "cannot_dm_bot": "the poster is a bot",
        "missing_scope": "the bot lacks the im:write scope (reinstall the app from the manifest)",
    }
    return plain.get(error, f"Slack refused the direct message ({error})")
