"""The verdict reporter over its outbox: the reply and the alert update, failures, Slack
errors retried, and no second reply after a crash between posting and marking it reported."""

from __future__ import annotations

import asyncio

from bot.adapters.database.leases import DatabaseLeases
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.slack import SlackUnavailable
from bot.core.messages.common import SlackMessage
from bot.core.model import AlertRef
from bot.core.retry import RetryPolicy
from bot.core.verdict import Verdict
from bot.orchestration.verdicts import VerdictReporter
from tests.fakes.ports import FakeNotifier
from tests.orchestration.conftest import alerted_scan

SHA = "c" * 64
ALERT = AlertRef("CALERTS", "1.000100")
VIOLATION = Verdict(violation=True, labels=("Explicit",), reviewers=("U1", "U2"), seconds=90)


def _reporter(store: Store, reviews: ReviewStore, notifier: FakeNotifier) -> VerdictReporter:
    return VerdictReporter(store, reviews, notifier, retry=RetryPolicy())


async def _decided(store: Store, reviews: ReviewStore) -> str:
    scan = await alerted_scan(store, "k", SHA, ts=ALERT.ts)
    await reviews.open(scan, SHA, "a2i", loop_name="modbot-x")
    assert await reviews.decide(scan, VIOLATION, "U2")
    return scan


async def test_a_verdict_is_replied_and_the_alert_updated_once(
    store: Store, reviews: ReviewStore
) -> None:
    """Thread reply 'Verdict: …', the alert resolved without buttons, then nothing pending."""
    notifier = FakeNotifier()
    scan = await _decided(store, reviews)
    assert await _reporter(store, reviews, notifier).report_pending()
    (text,) = notifier.replies_to(ALERT)
    assert text.startswith("Verdict: violation (Explicit) — decided by <@U1>, <@U2>")
    (update,) = notifier.updates
    assert update.alert == ALERT
    assert update.message.text == "alert (verdict: violation)"
    assert notifier.replies[0].scan_id == scan
    assert await reviews.unreported() == []
    assert await _reporter(store, reviews, notifier).report_pending()
    assert len(notifier.replies) == 1


async def test_a_failed_review_gets_a_failure_reply(store: Store, reviews: ReviewStore) -> None:
    """No verdict: ':warning: Human review did not finish' with the loop and the reason."""
    notifier = FakeNotifier()
    scan = await alerted_scan(store, "k", SHA, ts=ALERT.ts)
    await reviews.open(scan, SHA, "a2i", loop_name="modbot-x")
    assert await reviews.fail(scan, "the human loop was stopped")
    assert await _reporter(store, reviews, notifier).report_pending()
    assert notifier.replies_to(ALERT) == [
        ":warning: Human review did not finish (human loop `modbot-x`): the human loop was stopped."
    ]
    assert notifier.updates == []


async def test_a_slack_error_leaves_the_verdict_for_the_next_round(
    store: Store, reviews: ReviewStore
) -> None:
    """Slack down: the round reports failure, the outbox keeps the verdict, the next round posts."""
    notifier = FakeNotifier()
    await _decided(store, reviews)
    notifier.fail_next("update", SlackUnavailable("Slack chat.update failed: 503", transient=True))
    reporter = _reporter(store, reviews, notifier)
    assert await reporter.report_pending() is False
    assert notifier.replies == []
    assert len(await reviews.unreported()) == 1
    assert await reporter.report_pending() is True
    assert len(notifier.replies_to(ALERT)) == 1


async def test_no_second_reply_after_a_crash_between_post_and_mark(
    store: Store, reviews: ReviewStore
) -> None:
    """The reply reached Slack but its answer was lost (or the bot died) before it was marked:
    a restarted reporter finds it in the thread and only marks it reported."""
    notifier = FakeNotifier()
    await _decided(store, reviews)
    notifier.lose_next_answer("reply")
    assert await _reporter(store, reviews, notifier).report_pending() is False
    assert len(notifier.replies_to(ALERT)) == 1

    assert await _reporter(store, reviews, notifier).report_pending() is True  # a restart
    assert len(notifier.replies_to(ALERT)) == 1
    assert await reviews.unreported() == []


class _SlowSlack(FakeNotifier):
    """Slack answering the alert update only when let go: a report stays in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.updating = asyncio.Event()

    async def update(self, alert: AlertRef, message: SlackMessage) -> None:
        self.updating.set()
        await self.go.wait()
        await super().update(alert, message)


async def test_replicas_reading_one_outbox_tell_a_verdict_once(
    store: Store, reviews: ReviewStore
) -> None:
    """Two replicas' reporters at once: the one holding the report's lease tells it; the other
    leaves it, and finds it told on its next round."""
    slack = _SlowSlack()
    scan = await _decided(store, reviews)
    one, two = (
        VerdictReporter(
            store,
            reviews,
            slack,
            retry=RetryPolicy(),
            claims=DatabaseLeases(store, holder=holder, seconds=60),
        )
        for holder in ("one", "two")
    )
    first = asyncio.create_task(one.report_pending())
    await asyncio.wait_for(slack.updating.wait(), 5)  # one is telling it now
    assert await two.report_pending()  # nothing for two to do
    slack.go.set()
    assert await first
    assert await two.report_pending()
    assert [p.scan_id for p in slack.replies] == [scan]
    assert len(slack.updates) == 1


async def test_a_report_left_by_a_dead_replica_is_told_once_its_lease_ends(
    store: Store, reviews: ReviewStore
) -> None:
    """The replica telling it died holding the lease: another replica tells it after expiry."""
    clock = [1_000_000.0]
    scan = await _decided(store, reviews)
    dead = DatabaseLeases(store, holder="dead", seconds=60, clock=lambda: clock[0])
    assert await dead.take(f"report:{scan}")
    notifier = FakeNotifier()
    alive = VerdictReporter(
        store,
        reviews,
        notifier,
        retry=RetryPolicy(),
        claims=DatabaseLeases(store, holder="alive", seconds=60, clock=lambda: clock[0]),
    )
    assert await alive.report_pending()
    assert notifier.replies == []
    clock[0] += 61
    assert await alive.report_pending()
    assert [p.scan_id for p in notifier.replies] == [scan]
