"""The A2I review backend over a fake `HumanLoops`: a completed loop's majority verdict,
loops that end without answers, events that are forged or malformed, transient retries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.core.errors import DetectionFailed, ReviewFailed
from bot.core.model import (
    AlertRef,
    Decision,
    Detection,
    ImageRef,
    Origin,
    Outcome,
    ScanReport,
    ScanRequest,
    Trigger,
)
from bot.core.retry import RetryPolicy
from bot.orchestration.a2i_review import A2IConfig, A2IReviews, loop_name
from bot.orchestration.verdicts import VerdictReporter
from tests.fakes.images import make_image
from tests.fakes.ports import (
    FLOW_ARN,
    FakeHumanLoops,
    FakeNotifier,
    FakeRekognitionCall,
    QueueDrained,
    loop_arn,
)

SHA = "d" * 64
ALERT = AlertRef("CALERTS", "1.000001")
RECORDED = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "a2i_output.json").read_text()
)
FAST = RetryPolicy(limit=5.0, base=0.001, cap=0.001)


def _output(*answers: list[str]) -> dict[str, Any]:
    """output.json with one answer per worker, shaped like the recorded one."""
    source = next(iter(RECORDED["humanAnswers"][0]["answerContent"]))
    return {
        **RECORDED,
        "humanAnswers": [
            {"answerContent": {source: {"moderationLabels": [{"name": n} for n in labels]}}}
            for labels in answers
        ],
    }


class Backend:
    def __init__(self, reviews: ReviewStore, store: Store, trigger: str = "policy") -> None:
        self.loops = FakeHumanLoops()
        self.detector = FakeRekognitionCall()
        self.notifier = FakeNotifier()
        self.reviews = reviews
        self.a2i = A2IReviews(
            config=A2IConfig(
                flow_definition_arn=FLOW_ARN, prefix="scans/", trigger=trigger, poll_seconds=60
            ),
            reviews=reviews,
            notifier=self.notifier,
            reporter=VerdictReporter(store, reviews, self.notifier, retry=FAST),
            detector=self.detector,
            loops=self.loops,
            retry=FAST,
        )

    async def open(self, scan_id: str) -> str:
        name = loop_name(scan_id)
        assert await self.reviews.open(scan_id, SHA, "a2i", loop_name=name)
        return name


@pytest.fixture
def backend(reviews: ReviewStore, store: Store) -> Backend:
    return Backend(reviews, store)


def _report(scan_id: str, review_ref: str | None = None) -> ScanReport:
    request = ScanRequest(ImageRef(url="https://x.example/a.png"), Origin(Trigger.LINK, "C1"), "k")
    detection = Detection((), "7.0", min_confidence=50.0, review_ref=review_ref)
    return ScanReport(scan_id, request, detection, Outcome(Decision.REVIEW), SHA)


async def test_the_recorded_output_decides_by_majority(backend: Backend) -> None:
    """Both workers of the recorded output.json chose swimwear labels: a violation."""
    name = await backend.open("s1")
    backend.loops.finish(name, RECORDED)
    await backend.a2i.check(name, "poll")
    review = await backend.reviews.get("s1")
    assert review is not None
    assert review.verdict is not None
    assert review.verdict.violation is True
    assert review.verdict.labels == ("Swimwear or Underwear", "Female Swimwear or Underwear")
    assert (review.verdict.workers, review.verdict.loop_name) == (2, name)


@pytest.mark.parametrize(
    ("answers", "violation", "labels"),
    [
        ((["Violence"], ["Violence"], []), True, ("Violence",)),
        ((["Violence"], [], []), False, ()),
        (([], []), False, ()),
        ((["Violence"], ["Drugs"]), True, ("Violence", "Drugs")),
    ],
)
async def test_a_completed_loop_is_decided_by_the_workers_majority(
    backend: Backend, answers: tuple[list[str], ...], violation: bool, labels: tuple[str, ...]
) -> None:
    """At least half the workers selecting something is a violation, with labels half chose."""
    name = await backend.open("s1")
    backend.loops.finish(name, _output(*answers))
    await backend.a2i.poll()
    review = await backend.reviews.get("s1")
    assert review is not None
    assert review.verdict is not None
    assert (review.verdict.violation, review.verdict.labels) == (violation, labels)


@pytest.mark.parametrize(
    ("status", "code", "reason", "detail"),
    [
        ("Stopped", None, None, "the human loop was stopped"),
        ("Failed", "Expired", None, "the human loop expired before the workers answered"),
        ("Failed", "ValidationError", "no workteam", "the human loop failed: no workteam"),
    ],
)
async def test_a_loop_ending_without_answers_fails_the_review(
    backend: Backend, status: str, code: str | None, reason: str | None, detail: str
) -> None:
    """Stopped, expired or failed loops close the review as failed, saying why."""
    name = await backend.open("s1")
    backend.loops.end(name, status, code, reason)
    await backend.a2i.check(name, "poll")
    review = await backend.reviews.get("s1")
    assert review is not None
    assert (review.status, review.detail) == ("failed", detail)


async def _consume(backend: Backend) -> None:
    """Run the event consumer until every event on the fake queue is handled."""
    with pytest.raises(QueueDrained):
        await backend.a2i.consume_events()


async def test_a_loop_still_in_progress_stays_open(backend: Backend) -> None:
    """An event may arrive before DescribeHumanLoop shows the end: nothing is decided."""
    name = await backend.open("s1")
    handle = backend.loops.send_event(name)
    await _consume(backend)
    review = await backend.reviews.get("s1")
    assert review is not None
    assert review.status == "open"
    assert backend.loops.deleted == [handle]


async def test_forged_and_malformed_events_change_nothing(backend: Backend) -> None:
    """An event names a loop only: one of another flow, an unknown one or junk decides nothing,
    and each is deleted (the poller asks about every open loop anyway)."""
    name = await backend.open("s1")
    backend.loops.finish(name, RECORDED, flow=FLOW_ARN.replace("image-moderation-fd", "other"))
    backend.loops.send_event(name)
    backend.loops.send_event("modbot-unknown")
    backend.loops.send_event(None, "not json")
    await _consume(backend)
    review = await backend.reviews.get("s1")
    assert review is not None
    assert review.status == "open"
    assert len(backend.loops.deleted) == 3
    assert backend.loops.described == [name]  # the unknown loop is not even asked about
    assert backend.notifier.replies == []


async def test_a_transient_error_keeps_the_event_for_another_delivery(backend: Backend) -> None:
    """DescribeHumanLoop throttled: the event stays; delivered again, it decides and goes."""
    name = await backend.open("s1")
    backend.loops.finish(name, RECORDED)
    handle = backend.loops.send_event(name)
    backend.loops.fail_next("describe", ReviewFailed("throttled", transient=True))
    await _consume(backend)
    assert backend.loops.described == [name]  # the failed call is not recorded
    assert backend.loops.deleted == [handle]
    review = await backend.reviews.get("s1")
    assert review is not None
    assert review.status == "decided"


async def test_an_unreadable_output_fails_the_review_but_a_transient_one_retries(
    backend: Backend,
) -> None:
    """S3 throttled: raised for a later try; output.json not A2I's shape: the review fails."""
    name = await backend.open("s1")
    backend.loops.finish(name, {"humanAnswers": "junk"})
    backend.loops.fail_next("read_output", ReviewFailed("slow down", transient=True))
    with pytest.raises(ReviewFailed):
        await backend.a2i.check(name, "poll")
    review = await backend.reviews.get("s1")
    assert review is not None
    assert review.status == "open"
    await backend.a2i.check(name, "poll")
    review = await backend.reviews.get("s1")
    assert review is not None
    assert review.status == "failed"
    assert review.detail is not None
    assert "humanAnswers is not a list" in review.detail


async def test_start_retries_a_transient_failure_then_opens_the_loop(backend: Backend) -> None:
    """`policy` trigger: Rekognition throttles once; the retry opens the loop, named per scan."""
    backend.detector.fail_next(
        "call", DetectionFailed("ThrottlingException", "Rate exceeded", transient=True)
    )
    await backend.a2i.start(_report("s1"), ALERT, make_image())
    review = await backend.reviews.get("s1")
    assert review is not None
    assert (review.status, review.loop_name) == ("open", loop_name("s1"))
    assert len(backend.detector.calls) == 2
    request = backend.detector.calls[-1].human_loop
    assert request is not None
    assert (request.name, request.flow_definition_arn) == (loop_name("s1"), FLOW_ARN)
    assert list(backend.loops.images) == ["scans/s1.png"]
    (text,) = backend.notifier.replies_to(ALERT)
    assert text.startswith(":mag: Human review started in Amazon A2I")


async def test_start_that_cannot_succeed_fails_the_review_with_the_reason(
    backend: Backend,
) -> None:
    """The loop quota is not transient: the review is failed at once with plain words."""
    backend.detector.fail_next(
        "call", DetectionFailed("HumanLoopQuotaExceededException", "Too many")
    )
    await backend.a2i.start(_report("s1"), ALERT, make_image())
    review = await backend.reviews.get("s1")
    assert review is not None
    assert review.status == "failed"
    assert review.detail == (
        "could not start: A2I human loop quota exceeded (too many reviews in progress)"
    )
    assert len(backend.detector.calls) == 1


async def test_flow_trigger_opens_a_review_only_when_the_scan_call_opened_a_loop(
    reviews: ReviewStore, store: Store
) -> None:
    """`flow` trigger: the detection's review_ref is the loop; without one, no review."""
    backend = Backend(reviews, store, trigger="flow")
    await backend.a2i.start(_report("s1"), ALERT, b"")
    assert await reviews.get("s1") is None
    await backend.a2i.start(_report("s2", loop_arn(loop_name("s2"))), ALERT, b"")
    review = await reviews.get("s2")
    assert review is not None
    assert review.status == "open"
    assert backend.detector.calls == []
