"""The human-review port and the choice of backend (MODBOT_REVIEW_BACKEND), with its tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import boto3
from botocore.config import Config
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.a2i import A2IClient
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.rekognition import RekognitionCall
from bot.adapters.slack import Notifier
from bot.adapters.slack_directory import SlackDirectory
from bot.core.metrics import NO_METRICS, Metrics
from bot.orchestration.a2i_review import A2IConfig, A2IReviews
from bot.orchestration.claims import Claims
from bot.orchestration.ledger import ReviewLedger
from bot.orchestration.review import ReviewBackend
from bot.orchestration.slack_review import Reviewers, SlackVotes
from bot.orchestration.supervisor import Supervisor
from bot.orchestration.verdicts import AlertRender, VerdictFollowUp, VerdictReporter
from bot.settings import ReviewBackendName, Settings


@dataclass
class ReviewSetup:
    backend: ReviewBackend | None
    ledger: ReviewLedger
    votes: SlackVotes | None = None  # the vote handler's entry point (slack backend)
    a2i: A2IReviews | None = None  # owns the scan call for the `flow` trigger (detector_for)
    a2i_client: A2IClient | None = None


@asynccontextmanager
async def build_review_backend(
    settings: Settings,
    *,
    store: Store,
    notifier: Notifier,
    client: AsyncWebClient,
    detector: RekognitionCall | None,
    supervisor: Supervisor,
    reminder_tick: float = 60.0,
    metrics: Metrics = NO_METRICS,
    view: AlertRender | None = None,
    follow_up: VerdictFollowUp | None = None,
    claims: Claims | None = None,
) -> AsyncIterator[ReviewSetup]:
    """Build the configured backend and run its background work under `supervisor`.

    The caller closes the supervisor (stopping the tasks) before this context exits.
    """
    if settings.review_backend is ReviewBackendName.NONE:
        yield ReviewSetup(None, ReviewLedger(store))
        return
    reviews = ReviewStore(store)
    ledger = ReviewLedger(store, reviews)
    reporter = VerdictReporter(
        store,
        reviews,
        notifier,
        retry=settings.retry,
        metrics=metrics,
        view=view,
        follow_up=follow_up,
        claims=claims,
    )
    supervisor.start("verdict-reporter", reporter.run)
    setup: ReviewSetup
    if settings.review_backend is ReviewBackendName.SLACK:
        votes = SlackVotes(
            store=store,
            reviews=reviews,
            notifier=notifier,
            reporter=reporter,
            reviewers=Reviewers(SlackDirectory(client), settings.reviewers),
            quorum=settings.review_quorum,
            remind_after=settings.review_remind_minutes * 60,
            claims=claims,
        )
        tick = min(reminder_tick, settings.review_remind_minutes * 60)
        supervisor.start("review-reminders", lambda: votes.run_reminders(tick))
        setup = ReviewSetup(votes, ledger, votes=votes)
    else:
        # Settings refuse a2i with another detector: A2I opens loops through Rekognition's call.
        assert detector is not None
        client_a2i = _a2i_client(settings)
        a2i = _a2i_backend(
            settings,
            loops=client_a2i,
            reviews=reviews,
            notifier=notifier,
            reporter=reporter,
            detector=detector,
            claims=claims,
        )
        supervisor.start("a2i-poller", a2i.run_poller)
        if settings.a2i_events_queue_url:
            supervisor.start("a2i-events", a2i.consume_events)
        setup = ReviewSetup(a2i, ledger, a2i=a2i, a2i_client=client_a2i)
    try:
        yield setup
    finally:
        if setup.a2i_client is not None:
            setup.a2i_client.close()


def _a2i_client(settings: Settings) -> A2IClient:
    assert settings.s3_bucket  # checked by Settings for the a2i backend
    session = boto3.session.Session()
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    region = settings.region
    return A2IClient(
        bucket=settings.s3_bucket,
        s3=session.client("s3", region_name=region, config=config),
        a2i=session.client("sagemaker-a2i-runtime", region_name=region, config=config),
        sqs=(
            session.client("sqs", region_name=region, config=config)
            if settings.a2i_events_queue_url
            else None
        ),
        queue_url=settings.a2i_events_queue_url,
    )


def _a2i_backend(
    settings: Settings,
    *,
    loops: A2IClient,
    reviews: ReviewStore,
    notifier: Notifier,
    reporter: VerdictReporter,
    detector: RekognitionCall,
    claims: Claims | None,
) -> A2IReviews:
    assert settings.a2i_flow_definition_arn  # checked by Settings for the a2i backend
    return A2IReviews(
        config=A2IConfig(
            flow_definition_arn=settings.a2i_flow_definition_arn,
            prefix=settings.s3_prefix,
            trigger=settings.a2i_trigger.value,
            poll_seconds=settings.a2i_poll_seconds,
        ),
        retry=settings.retry,
        reviews=reviews,
        notifier=notifier,
        reporter=reporter,
        detector=detector,
        loops=loops,
        claims=claims,
    )
