"""Human review inside Slack: vote buttons on the alert, a quorum, an allow-list, reminders."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from bot.adapters.database.reviews import Review, ReviewStore, VoteRule
from bot.adapters.database.scans import Store
from bot.adapters.slack import Notifier, SlackUnavailable
from bot.core import messages
from bot.core.model import AlertRef, ScanReport
from bot.core.slack_ids import is_user_group
from bot.orchestration.claims import Claims, Unshared
from bot.orchestration.review import VoteResult
from bot.orchestration.verdicts import VerdictReporter

log = logging.getLogger(__name__)


class ReviewerDirectory(Protocol):
    """Who is in a user group now; SlackUnavailable when that cannot be learnt."""

    async def group_members(self, group: str) -> frozenset[str]: ...


class Reviewers:
    """MODBOT_REVIEWERS: user ids and user-group ids (whose members count). Empty: anyone.

    A group's members are kept for `ttl` seconds; while the directory cannot answer, the last
    members known count (none if never known)."""

    def __init__(
        self,
        directory: ReviewerDirectory,
        entries: Sequence[str],
        ttl: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._users = frozenset(e for e in entries if not is_user_group(e))
        self._groups = tuple(e for e in entries if is_user_group(e))
        self._ttl = ttl
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self.entries = tuple(entries)

    async def allows(self, user: str) -> bool:
        if not self.entries or user in self._users:
            return True
        for group in self._groups:
            if user in await self._group_members(group):
                return True
        return False

    async def current(self) -> frozenset[str] | None:
        """Everyone allowed right now (None: anyone), for counting votes at tally time."""
        if not self.entries:
            return None
        allowed = set(self._users)
        for group in self._groups:
            allowed |= await self._group_members(group)
        return frozenset(allowed)

    async def _group_members(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached and self._clock() - cached[0] < self._ttl:
            return cached[1]
        try:
            members = await self._directory.group_members(group)
        except SlackUnavailable as exc:
            log.warning("cannot read user group %s: %s", group, exc)
            return cached[1] if cached else frozenset()  # last known members, else nobody
        self._members[group] = (self._clock(), members)
        return members


class SlackVotes:
    """The `slack` review backend."""

    buttons = True
    name = "slack"

    def __init__(
        self,
        *,
        store: Store,
        reviews: ReviewStore,
        notifier: Notifier,
        reporter: VerdictReporter,
        reviewers: Reviewers,
        quorum: int,
        remind_after: float,
        claims: Claims | None = None,
    ) -> None:
        self._store = store
        self._claims: Claims = claims or Unshared()
        self._reviews = reviews
        self._notifier = notifier
        self._reporter = reporter
        self._reviewers = reviewers
        self._quorum = quorum
        self._remind_after = remind_after

    async def start(self, report: ScanReport, alert: AlertRef, image: bytes) -> None:
        del image  # reviewers look at the original message, not a copy
        rule = await self._rule()
        if await self._reviews.open(report.scan_id, report.sha256, self.name, rule=rule):
            started = messages.review_started(
                quorum=self._quorum, reviewers=self._reviewers.entries
            )
            await self._notifier.reply(alert, started)
            self._reporter.wake()  # votes cast on the fresh alert may already have decided

    async def vote(self, scan_id: str, user: str, violation: bool) -> VoteResult:
        if not await self._reviewers.allows(user):
            return VoteResult.REFUSED
        ballot = await self._reviews.vote(scan_id, user, violation, await self._rule())
        if not ballot.recorded:
            return VoteResult.CLOSED
        if ballot.verdict is None:
            return VoteResult.RECORDED
        self._reporter.wake()
        return VoteResult.DECIDED

    async def _rule(self) -> VoteRule:
        """The quorum, and who counts now: a reviewer removed since voting no longer does."""
        return VoteRule(self._quorum, await self._reviewers.current())

    async def remind(self) -> None:
        """Post a reminder under reviews left open longer than MODBOT_REVIEW_REMIND_MINUTES."""
        for review in await self._reviews.open_reviews(self.name):
            if self._due(review):
                await self._remind(review)

    def _due(self, review: Review) -> bool:
        return time.time() - (review.reminded_at or review.created_at) >= self._remind_after

    async def _remind(self, review: Review) -> None:
        """One reminder per due time across replicas: claimed, and due still once claimed."""
        claim = f"remind:{review.scan_id}"
        if not await self._claims.take(claim):
            return  # another replica is reminding
        try:
            current = await self._reviews.get(review.scan_id)
            if current is None or current.status != "open" or not self._due(current):
                return  # reminded (or decided) meanwhile
            alert = await self._store.alert_for(review.scan_id)
            if alert is None:
                return
            waited = time.time() - review.created_at
            try:
                await self._notifier.reply(alert, messages.review_reminder(waited))
            except Exception as exc:  # Slack down or unreachable: the next tick tries again
                log.warning("reminder for %s not posted: %r", review.scan_id, exc)
                return
            await self._reviews.mark_reminded(review.scan_id)
        finally:
            await asyncio.shield(self._claims.release(claim))

    async def run_reminders(self, tick: float) -> None:
        """Remind every `tick` seconds (run under the Supervisor, which restarts it on errors)."""
        while True:
            await asyncio.sleep(tick)
            await self.remind()
