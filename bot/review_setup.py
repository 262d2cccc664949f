"""The human-review port and the choice of backend (MODBOT_REVIEW_BACKEND), with its tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import boto3
from botocore.config import Config
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.a2i import A2IConfig, A2IReviews
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.rekognition import RekognitionCall
from bot.adapters.slack import Notifier
from bot.core.model import AlertRef, History, ScanReport
from bot.orchestration.slack_review import Reviewers, SlackVotes
from bot.orchestration.supervisor import Supervisor
from bot.orchestration.verdicts import VerdictReporter
from bot.settings import ReviewBackendName, Settings


class ReviewBackend(Protocol):
    """Starts human reviews and knows their state; verdicts come back in the alert's thread."""

    buttons: bool  # the alert carries vote buttons
    name: str

    async def start(self, report: ScanReport, alert: AlertRef, image: bytes) -> None: ...

    async def history(self, sha256: str, scan_id: str) -> History: ...


@dataclass
class ReviewSetup:
    backend: ReviewBackend | None
    votes: SlackVotes | None = None  # the vote handler's entry point (slack backend)
    a2i: A2IReviews | None = None  # owns the scan call for the `flow` trigger (detector_for)


@asynccontextmanager
async def build_review_backend(
    settings: Settings,
    *,
    store: Store,
    notifier: Notifier,
    client: AsyncWebClient,
    detector: RekognitionCall,
    supervisor: Supervisor,
    reminder_tick: float = 60.0,
) -> AsyncIterator[ReviewSetup]:
    """Build the configured backend and run its background work under `supervisor`.

    The caller closes the supervisor (stopping the tasks) before this context exits.
    """
    if settings.review_backend is ReviewBackendName.NONE:
        yield ReviewSetup(None)
        return
    reviews = ReviewStore(store)
    reporter = VerdictReporter(store, reviews, notifier, retry=settings.retry)
    supervisor.start("verdict-reporter", reporter.run)
    setup: ReviewSetup
    if settings.review_backend is ReviewBackendName.SLACK:
        votes = SlackVotes(
            store=store,
            reviews=reviews,
            notifier=notifier,
            reporter=reporter,
            reviewers=Reviewers(client, settings.reviewers),
            quorum=settings.review_quorum,
            remind_after=settings.review_remind_minutes * 60,
        )
        tick = min(reminder_tick, settings.review_remind_minutes * 60)
        supervisor.start("review-reminders", lambda: votes.run_reminders(tick))
        setup = ReviewSetup(votes, votes=votes)
    else:
        a2i = _a2i_backend(
            settings,
            store=store,
            reviews=reviews,
            notifier=notifier,
            reporter=reporter,
            detector=detector,
        )
        supervisor.start("a2i-poller", a2i.run_poller)
        if settings.a2i_events_queue_url:
            supervisor.start("a2i-events", a2i.consume_events)
        setup = ReviewSetup(a2i, a2i=a2i)
    try:
        yield setup
    finally:
        if setup.a2i is not None:
            setup.a2i.close()


def _a2i_backend(
    settings: Settings,
    *,
    store: Store,
    reviews: ReviewStore,
    notifier: Notifier,
    reporter: VerdictReporter,
    detector: RekognitionCall,
) -> A2IReviews:
    assert settings.a2i_flow_definition_arn  # both checked by Settings for the a2i backend
    assert settings.s3_bucket
    session = boto3.session.Session()
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    region = settings.region
    return A2IReviews(
        config=A2IConfig(
            flow_definition_arn=settings.a2i_flow_definition_arn,
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            trigger=settings.a2i_trigger.value,
            queue_url=settings.a2i_events_queue_url,
            poll_seconds=settings.a2i_poll_seconds,
        ),
        retry=settings.retry,
        store=store,
        reviews=reviews,
        notifier=notifier,
        reporter=reporter,
        detector=detector,
        s3=session.client("s3", region_name=region, config=config),
        a2i=session.client("sagemaker-a2i-runtime", region_name=region, config=config),
        sqs=(
            session.client("sqs", region_name=region, config=config)
            if settings.a2i_events_queue_url
            else None
        ),
    )
