"""The store: durable, deduplicated intake and the cached detections."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model import (
    AlertRef,
    Decision,
    Detection,
    ImageRef,
    Label,
    Origin,
    ScanRequest,
    Trigger,
)
from bot.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/state.db")
    await store.create()
    yield store
    await store.close()


def _request(key: str) -> ScanRequest:
    return ScanRequest(
        ImageRef(url=f"https://x.example/{key}.png"), Origin(Trigger.LINK, "C1"), key
    )


async def test_redelivered_event_adds_nothing(store: Store) -> None:
    """The same event id twice records its scans once."""
    assert len(await store.accept([_request("a"), _request("b")], event_id="Ev1")) == 2
    assert await store.accept([_request("c")], event_id="Ev1") == []
    assert len(await store.pending()) == 2


async def test_same_dedup_key_is_one_scan(store: Store) -> None:
    """Two events naming the same image in the same message make one scan."""
    assert len(await store.accept([_request("a")], event_id="Ev1")) == 1
    assert await store.accept([_request("a")], event_id="Ev2") == []


async def test_pending_work_survives_a_reopen(tmp_path: Path) -> None:
    """Accepted but unfinished scans are found again by a new process."""
    url = f"sqlite+aiosqlite:///{tmp_path}/state.db"
    first = Store.from_url(url)
    await first.create()
    [scan_id] = await first.accept([_request("a")])
    await first.close()
    second = Store.from_url(url)
    await second.create()
    [pending] = await second.pending()
    assert pending.scan_id == scan_id
    assert pending.request == _request("a")
    await second.finish(scan_id, sha256="ab", decision=Decision.ALLOW, mode="enforce")
    assert await second.pending() == []
    assert await second.status_counts() == {"done": 1}
    await second.close()


async def test_detections_round_trip_by_hash(store: Store) -> None:
    """A saved detection comes back equal, keyed by the image hash."""
    detection = Detection(
        labels=(Label("Explicit", "", 1, 91.5), Label("Explicit Nudity", "Explicit", 2, 91.5)),
        model_version="7.0",
        min_confidence=40.0,
    )
    await store.save_detection("f" * 64, detection)
    assert await store.detection("f" * 64) == detection
    assert await store.detection("0" * 64) is None


async def test_earliest_alert_for_the_same_bytes(store: Store) -> None:
    """A re-post finds the first alert for its bytes, not its own."""
    [first, second] = await store.accept([_request("a"), _request("b")])
    assert await store.begin_alert(first, "h" * 64, "C0", Decision.REVIEW, {"text": "x"}) is None
    assert await store.earliest_alert("h" * 64, excluding=second) is None  # only an intent yet
    await store.complete_alert(first, AlertRef("C0", "1.1", "https://p/1"))
    assert await store.earliest_alert("h" * 64, excluding=second) == AlertRef(
        "C0", "1.1", "https://p/1"
    )
    assert await store.earliest_alert("h" * 64, excluding=first) is None
    actions = [row["action"] for row in await store.audit_log(first)]
    assert actions == ["alerted"]


async def test_alert_intent_is_reported_once_posted_or_not(store: Store) -> None:
    """A second begin_alert for the same scan says an earlier intent exists (crash recovery)."""
    [scan] = await store.accept([_request("a")])
    assert await store.begin_alert(scan, "h" * 64, "C0", Decision.FLAG, {"text": "x"}) is None
    earlier = await store.begin_alert(scan, "h" * 64, "C0", Decision.FLAG, {"text": "x"})
    assert earlier is not None
    assert await store.alert_for(scan) is None
    await store.complete_alert(scan, AlertRef("C0", "2.2"))
    assert await store.alert_for(scan) == AlertRef("C0", "2.2")
    assert await store.alert_message(scan) == {"text": "x"}


async def test_concurrent_intakes_in_one_batch_dedup_among_themselves(store: Store) -> None:
    """Intakes committed together still dedup by event id and by key, within the batch too."""
    import asyncio

    results = await asyncio.gather(
        store.accept([_request("a")], event_id="Ev1"),
        store.accept([_request("a")], event_id="Ev1"),  # the same delivery twice
        store.accept([_request("a")], event_id="Ev2"),  # same image via another event
        store.accept([_request("b"), _request("c")], event_id="Ev3"),
        store.accept([_request("d")]),
    )
    assert [len(ids) for ids in results] == [1, 0, 0, 2, 1]
    assert len({scan for ids in results for scan in ids}) == 4
    assert len(await store.pending()) == 4


async def test_starts_are_counted_before_the_work_and_ended_by_any_outcome(store: Store) -> None:
    """begin_run counts a start durably; starts that never ended show as crashes at the next
    begin_run and in pending(); a transient failure or end_run ends the run; finish forgets
    it, and a finished scan is not begun again."""
    [scan_id] = await store.accept([_request("a")])
    first = await store.begin_run(scan_id)
    assert first is not None
    assert (first.attempts, first.crashes, first.failures) == (1, 0, 0)
    [pending] = await store.pending()
    assert pending.crashes == 1  # the process "died" during the first run
    second = await store.begin_run(scan_id)
    assert second is not None
    assert second.crashes == 1
    failed = await store.record_failure(scan_id)
    assert failed is not None
    assert failed.failures == 1
    assert failed.first_failure_at is not None
    third = await store.begin_run(scan_id)
    assert third is not None
    assert (third.crashes, third.failures, third.first_failure_at) == (
        0,
        1,
        failed.first_failure_at,
    )
    await store.end_run(scan_id)
    [pending] = await store.pending()
    assert pending.crashes == 0
    await store.finish(scan_id, error="gone")
    assert await store.begin_run(scan_id) is None
