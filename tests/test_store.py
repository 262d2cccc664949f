"""The store: durable, deduplicated intake and the cached detections.

A contract: every test runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event

from bot.adapters.database.engine import async_url
from bot.adapters.database.scans import DEDUP_KEY_LENGTH, Store
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


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store.from_url(async_url(database_url))
    await store.upgrade()
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


async def test_pending_work_survives_a_reopen(database_url: str) -> None:
    """Accepted but unfinished scans are found again by a new process."""
    url = async_url(database_url)
    first = Store.from_url(url)
    await first.upgrade()
    [scan_id] = await first.accept([_request("a")])
    await first.close()
    second = Store.from_url(url)
    await second.upgrade()
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
    await store.save_detection("f" * 64, "rekognition", detection)
    assert await store.detection("f" * 64, "rekognition") == detection
    assert await store.detection("0" * 64, "rekognition") is None


async def test_earliest_alert_for_the_same_bytes(store: Store) -> None:
    """A re-post finds the first alert for its bytes, not its own."""
    [first, second] = await store.accept([_request("a"), _request("b")])
    assert (
        await store.begin_alert(
            first, "h" * 64, "C0", Decision.REVIEW, {"text": "x"}, causes=["Weapons"]
        )
        is None
    )
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
    assert (
        await store.begin_alert(scan, "h" * 64, "C0", Decision.FLAG, {"text": "x"}, causes=[])
        is None
    )
    earlier = await store.begin_alert(scan, "h" * 64, "C0", Decision.FLAG, {"text": "x"}, causes=[])
    assert earlier is not None
    assert await store.alert_for(scan) is None
    await store.complete_alert(scan, AlertRef("C0", "2.2"))
    assert await store.alert_for(scan) == AlertRef("C0", "2.2")
    assert await store.alert_message(scan) == {"text": "x"}


async def test_concurrent_intakes_in_one_batch_dedup_among_themselves(store: Store) -> None:
    """Intakes committed together still dedup by event id and by key, within the batch too."""
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


async def test_a_scan_runs_its_course_with_attempts_outcomes_and_audit(store: Store) -> None:
    """Starts count up, begin_run finds the request, and each ending is counted and audited."""
    [done, failed, skipped] = await store.accept([_request("a"), _request("b"), _request("c")])
    assert await store.begin_run(done) is not None
    await store.end_run(done)
    started = await store.begin_run(done)
    assert started is not None
    assert (started.request, started.attempts) == (_request("a"), 2)
    assert await store.begin_run("0" * 16) is None
    await store.finish(done, sha256="a" * 64, decision=Decision.FLAG, mode="enforce")
    await store.finish(failed, error="not an image")
    await store.finish(skipped, skipped="not an image link")
    assert await store.status_counts() == {"done": 1, "failed": 1, "skipped": 1}
    assert [row["action"] for row in await store.audit_log(done)] == ["scanned"]
    [row] = await store.audit_log(failed)
    assert (row["action"], row["detail"]) == ("scan_failed", {"error": "not an image"})
    assert len(await store.audit_log()) == 3


async def test_detection_saved_again_and_at_once_keeps_one_row(store: Store) -> None:
    """Saving a hash's detection again replaces it, also when several saves race."""
    first = Detection(labels=(), model_version="7.0", min_confidence=40.0)
    second = Detection(
        labels=(Label("Violence", "", 1, 80.0),), model_version="7.0", min_confidence=30.0
    )
    await store.save_detection("e" * 64, "rekognition", first)
    await store.save_detection("e" * 64, "rekognition", second)
    assert await store.detection("e" * 64, "rekognition") == second
    await asyncio.gather(*(store.ping() for _ in range(8)))  # connections ready: a real race
    await asyncio.gather(*(store.save_detection("d" * 64, "rekognition", first) for _ in range(8)))
    assert await store.detection("d" * 64, "rekognition") == first


async def test_concurrent_alert_intents_for_one_scan_let_one_post(store: Store) -> None:
    """Of several begin_alert calls for one scan at once, exactly one is told to post."""
    [scan] = await store.accept([_request("a")])
    earlier = await asyncio.gather(
        *(
            store.begin_alert(scan, "h" * 64, "C0", Decision.FLAG, {"n": n}, causes=[])
            for n in range(6)
        )
    )
    assert sum(1 for when in earlier if when is None) == 1


async def test_a_link_longer_than_the_key_column_is_taken_in_once(store: Store) -> None:
    """A dedup key longer than its column (a long link) is stored, deduplicated, and told
    apart from another long key with the same start (PostgreSQL enforces the length)."""
    long_key = "link:C1:1.2:https://x.example/" + "a" * 3000
    assert len(long_key) > DEDUP_KEY_LENGTH
    assert len(await store.accept([_request(long_key)], event_id="Ev1")) == 1
    assert await store.accept([_request(long_key)], event_id="Ev2") == []
    assert len(await store.accept([_request(long_key + "b")], event_id="Ev3")) == 1
    requests = {pending.request.dedup_key for pending in await store.pending()}
    assert requests == {long_key, long_key + "b"}  # the request itself is kept whole


async def test_an_error_quoting_a_nul_character_is_stored(store: Store) -> None:
    """A NUL in an error text (hostile input quoted back) does not fail the write."""
    [scan] = await store.accept([_request("a")])
    await store.finish(scan, error="cannot read name\x00.png")
    assert await store.status_counts() == {"failed": 1}
    assert await store.pending() == []


async def test_ping_answers_while_the_database_is_there(store: Store) -> None:
    """ping() is True on a reachable database (what /healthz reports)."""
    assert await store.ping() is True


async def test_an_in_memory_sqlite_database_is_migrated_in_place() -> None:
    """sqlite:///:memory: lives in the store's one connection: the upgrade happens there."""
    store = Store.from_url(async_url("sqlite:///:memory:"))
    try:
        await store.upgrade()
        assert len(await store.accept([_request("a")])) == 1
    finally:
        await store.close()


async def test_the_sqlite_write_gate_and_sync_intake_stay_on_sqlite(
    store: Store, database_url: str
) -> None:
    """PostgreSQL takes concurrent writers: no WriteGate queue and no SQLite-only sync intake."""
    from bot.adapters.database.engine import NoGate, WriteGate

    if database_url.startswith("sqlite"):
        assert type(store.gate) is WriteGate
        assert store._sync_engine is not None
    else:
        assert type(store.gate) is NoGate
        assert store._sync_engine is None


async def test_sqlite_scan_statements_run_on_the_loop_thread_not_aiosqlite(tmp_path: Path) -> None:
    """On SQLite a scan's reads and writes go straight to the file on the event loop's thread:
    none of them is handed to aiosqlite's thread (each hand-off cost more than the statement)."""
    store = Store.from_url(async_url(f"sqlite:///{tmp_path}/inline.db"))
    await store.upgrade()
    assert store._sync_engine is not None
    threads: list[int] = []
    via_aiosqlite: list[str] = []

    def inline(*_args: object) -> None:
        threads.append(threading.get_ident())

    def handed_off(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        via_aiosqlite.append(statement)

    event.listen(store._sync_engine, "before_cursor_execute", inline)
    event.listen(store.engine.sync_engine, "before_cursor_execute", handed_off)
    sha = "ab" * 32
    try:
        (scan_id,) = await store.accept([_request("inline")])
        assert await store.begin_run(scan_id) is not None
        assert await store.detection(sha, "rekognition") is None
        await store.save_detection(sha, "rekognition", Detection(labels=(), model_version="m"))
        assert await store.detection(sha, "rekognition") is not None
        assert await store.ping()
        await store.finish(scan_id, sha256=sha, decision=Decision.FLAG, mode="alert")
        assert await store.status_counts() == {"done": 1}
    finally:
        event.remove(store._sync_engine, "before_cursor_execute", inline)
        event.remove(store.engine.sync_engine, "before_cursor_execute", handed_off)
        await store.close()
    assert via_aiosqlite == []
    assert len(threads) >= 8  # the calls above make at least this many
    assert set(threads) == {threading.get_ident()}
