"""The moderation pipeline: what is wanted is recorded durably, then scheduled and scanned.

Intake (this module) filters by channel and policy and puts the work in the work queue before
Slack's ack; the scheduler (scheduler.py) runs it; the scan steps (scan.py) carry each run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.adapters.database.scans import Store
from bot.adapters.fetch import Fetcher
from bot.adapters.slack import Notifier
from bot.core.metrics import NO_METRICS, Metrics
from bot.core.model import ChannelMode, ScanRequest, Trigger
from bot.core.policy import Policy
from bot.core.work import Lane, is_link
from bot.orchestration.claims import Claims, Unshared
from bot.orchestration.lanes import Lanes
from bot.orchestration.ledger import ReviewLedger
from bot.orchestration.neardup import NearDuplicates
from bot.orchestration.review import ReviewBackend
from bot.orchestration.scan import DetectorFor, ScanRemovals, ScanSteps
from bot.orchestration.scheduler import Scheduler, SchedulerConfig
from bot.orchestration.workqueue import WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    bot_token: str
    link_timeout: float = 15.0  # a whole link download (redirects, connect, body) within this
    watch_channels: frozenset[str] = frozenset()
    scheduling: SchedulerConfig = field(default_factory=SchedulerConfig)  # workers, retries


class Pipeline:
    """Accepts scans and carries each to exactly one recorded outcome."""

    def __init__(
        self,
        *,
        queue: WorkQueue,
        store: Store,
        fetcher: Fetcher,
        detector_for: DetectorFor,
        notifier: Notifier,
        policy: Policy,
        reviews: ReviewBackend | None,
        config: PipelineConfig,
        ledger: ReviewLedger | None = None,
        metrics: Metrics = NO_METRICS,
        removals: ScanRemovals | None = None,
        near: NearDuplicates | None = None,
        claims: Claims | None = None,
    ) -> None:
        self._queue = queue
        self._policy = policy
        self._config = config
        lanes = Lanes()
        self.steps = ScanSteps(
            records=store,
            fetcher=fetcher,
            detector_for=detector_for,
            notifier=notifier,
            files=notifier,
            policy=policy,
            reviews=reviews,
            ledger=ledger or ReviewLedger(store),
            claims=claims or Unshared(),
            alerts=lanes,
            bot_token=config.bot_token,
            link_timeout=config.link_timeout,
            metrics=metrics,
            removals=removals,
            near=near,
        )
        self.scheduler = Scheduler(
            queue=queue,
            run=self.steps.run,
            notifier=notifier,
            lanes=lanes,
            config=config.scheduling,
            metrics=metrics,
        )

    @property
    def accepting(self) -> bool:
        return self.scheduler.accepting

    @property
    def queued(self) -> int:
        return self.scheduler.queued

    def wanted(self, request: ScanRequest) -> bool:
        """Watched channel and not switched off by the policy. On-demand scans always run."""
        if request.origin.trigger in (Trigger.COMMAND, Trigger.SHORTCUT):
            return True
        channel = request.origin.channel
        watch = self._config.watch_channels
        if watch and channel not in watch:
            return False
        return self._policy.mode_for(channel) is not ChannelMode.OFF

    async def accept(self, requests: Iterable[ScanRequest], *, event_id: str | None = None) -> int:
        """Record new work durably, then schedule it. Returns how many scans were new."""
        if not self.accepting:
            raise RuntimeError("modbot is shutting down")
        wanted = [request for request in requests if self.wanted(request)]
        if not wanted and event_id is None:
            return 0
        scan_ids = await self._queue.put(wanted, event_id=event_id)
        kinds = {is_link(request) for request in wanted}
        # Mixed: unknown here; a file worker sends each link on to the link workers.
        lane = (Lane.LINK if kinds.pop() else Lane.FILE) if len(kinds) == 1 else None
        self.scheduler.put(scan_ids, lane)
        return len(scan_ids)

    async def start(self) -> None:
        await self.scheduler.start()

    async def stop(self, grace: float = 20.0) -> None:
        await self.scheduler.stop(grace)

    async def idle(self) -> None:
        await self.scheduler.idle()
