"""The steps of one scan, at the ports (no HTTP stack): reuse of stored detections per
detector, one detector call for concurrent scans of the same bytes, the alert intent recorded
before the post, and a re-post's history applied."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.adapters.slack import SlackFile
from bot.core.model import (
    AlertRef,
    Decision,
    Detection,
    ImageRef,
    Label,
    Origin,
    ScanRequest,
    Trigger,
)
from bot.core.policy import DEFAULT_POLICY
from bot.core.work import WorkItem
from bot.orchestration.scan import ScanSteps, one_detector
from tests.fakes.ports import (
    FakeAlertWatch,
    FakeDetector,
    FakeFetcher,
    FakeLedger,
    FakeScanNotifier,
    FakeScanRecords,
)

URL = "https://files.slack.com/files-pri/T1-F1/download/a.png"
IMAGE = b"\x89PNG not really"
FLAGGED = Detection(
    labels=(Label("Explicit", "", 1, 97.0), Label("Explicit Nudity", "Explicit", 2, 97.0)),
    model_version="7.0",
)
CLEAN = Detection(labels=(), model_version="7.0")


def _item(scan_id: str = "s1", *, file_id: str = "F1", url: str | None = URL) -> WorkItem:
    request = ScanRequest(
        ImageRef(url=url, file_id=file_id, name="a.png" if url else None),
        Origin(Trigger.UPLOAD, "C1", user="U1", message_ts="1.1"),
        f"file:{file_id}:{scan_id}",
    )
    return WorkItem(scan_id, request, 1)


def _steps(detector: FakeDetector, **parts: Any) -> tuple[ScanSteps, dict[str, Any]]:
    log: list[str] = []
    parts.setdefault("records", FakeScanRecords(log))
    parts.setdefault("notifier", FakeScanNotifier(log))
    parts.setdefault("fetcher", FakeFetcher({URL: IMAGE}))
    parts.setdefault("alerts", FakeAlertWatch())
    steps = ScanSteps(
        records=parts["records"],
        fetcher=parts["fetcher"],
        detector_for=one_detector(detector),
        notifier=parts["notifier"],
        files=parts["notifier"],
        policy=DEFAULT_POLICY,
        reviews=None,
        ledger=FakeLedger(parts["records"]),
        alerts=parts["alerts"],
        bot_token="xoxb-test",
        link_timeout=5.0,
    )
    return steps, {**parts, "log": log}


async def test_a_stored_detection_of_the_same_detector_is_reused_and_another_is_not() -> None:
    detector = FakeDetector(CLEAN, name="fake")
    steps, parts = _steps(detector)
    records: FakeScanRecords = parts["records"]
    first = await steps.run(_item("s1"))
    assert len(detector.calls) == 1
    assert (first.decision, first.sha256) == (Decision.ALLOW, first.sha256)
    await steps.run(_item("s2"))
    assert len(detector.calls) == 1  # reused
    other = FakeDetector(CLEAN, name="other")
    steps_other, _ = _steps(other, records=records)
    await steps_other.run(_item("s3"))
    assert len(other.calls) == 1  # another detector never reuses the first one's result
    assert {key[1] for key in records.detections} == {"fake", "other"}


async def test_concurrent_scans_of_the_same_bytes_share_one_detector_call() -> None:
    gate = asyncio.Event()
    detector = FakeDetector(CLEAN, gate=gate)
    steps, parts = _steps(detector)
    runs = [asyncio.create_task(steps.run(_item(f"s{n}"))) for n in range(4)]
    await parts["records"].looked_up(4)  # all four past the store, none has a result yet
    gate.set()
    outcomes = await asyncio.gather(*runs)
    assert len(detector.calls) == 1
    assert len({outcome.sha256 for outcome in outcomes}) == 1


async def test_the_alert_intent_is_recorded_before_the_post_and_a_retry_posts_nothing_new() -> None:
    steps, parts = _steps(FakeDetector(FLAGGED))
    records: FakeScanRecords = parts["records"]
    notifier: FakeScanNotifier = parts["notifier"]
    outcome = await steps.run(_item("s1"))
    assert outcome.decision is Decision.FLAG
    assert parts["log"] == ["intent s1", "post s1", "saved s1"]
    assert not parts["alerts"].due
    # A crash after posting, before saving: the next run finds the alert in Slack's history.
    records.alerts.clear()
    await steps.run(_item("s1"))
    assert parts["log"][3:] == ["intent s1", "find s1", "saved s1"]
    assert len(notifier.posted) == 1


async def test_a_repost_links_the_first_alert() -> None:
    records = FakeScanRecords()
    steps, parts = _steps(FakeDetector(FLAGGED), records=records)
    first = await steps.run(_item("s1"))
    records.earliest[first.sha256] = AlertRef("CALERTS", "1.0")
    await steps.run(_item("s2"))
    notifier: FakeScanNotifier = parts["notifier"]
    [(_, original), (_, repost)] = notifier.posted
    link = "https://slack.example/CALERTS/p10"
    assert link not in str(original.as_kwargs())
    assert link in str(repost.as_kwargs())


async def test_a_file_known_only_by_id_is_resolved_through_the_slack_files_port() -> None:
    notifier = FakeScanNotifier(
        files={
            "F9": SlackFile(
                id="F9",
                name="cat.png",
                mimetype="image/png",
                filetype="png",
                download_url=URL,
                shares={"C1": "7.7"},
            ),
            "F8": SlackFile(id="F8", name="notes.txt", mimetype="text/plain", filetype="text"),
        }
    )
    fetcher = FakeFetcher({URL: IMAGE})
    steps, _ = _steps(FakeDetector(CLEAN), notifier=notifier, fetcher=fetcher)
    await steps.run(_item("s1", file_id="F9", url=None))
    assert fetcher.fetched == [URL]
