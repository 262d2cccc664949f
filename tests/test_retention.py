"""Retention: old event ids, finished scans and detections go in batches; the record stays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.database.engine import async_url
from bot.adapters.database.retention import Retention
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.database.schema import (
    alerts,
    audit,
    detections,
    events,
    reviews,
    scan_runs,
    scans,
    votes,
)
from bot.core.model import AlertRef
from bot.orchestration.retention import DAY_SECONDS, keep_pruning
from tests.harness import Stack, http_bot, until

NOW = time.time()
OLD = NOW - 100 * DAY_SECONDS  # older than the default 90 days
RECENT = NOW - 10 * DAY_SECONDS
CUTOFF = NOW - 90 * DAY_SECONDS
DETECTION = {"detector": "rekognition", "model_version": "7.0", "result": {}, "min_confidence": 40}


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store.from_url(async_url(database_url))
    await store.upgrade()
    yield store
    await store.close()


def _scan(scan_id: str, status: str, at: float) -> dict[str, Any]:
    return {
        "id": scan_id,
        "dedup_key": f"key-{scan_id}",
        "request": {},
        "status": status,
        "attempts": 1,
        "created_at": at,
        "updated_at": at,
    }


async def _seed(engine: AsyncEngine, old_events: int = 5, old_scans: int = 5) -> None:
    """Old and recent rows of every kind, and the record of two reviewed images (old too)."""
    async with engine.begin() as conn:
        await conn.execute(
            insert(events),
            [{"event_id": f"Ev{i}", "received_at": OLD} for i in range(old_events)]
            + [{"event_id": "EvRecent", "received_at": RECENT}],
        )
        statuses = ["done", "failed", "skipped"]
        await conn.execute(
            insert(scans),
            [_scan(f"old{i}", statuses[i % 3], OLD) for i in range(old_scans)]
            + [
                _scan("oldpending", "pending", OLD),  # unfinished work is never pruned
                _scan("recent", "done", RECENT),
                _scan("reviewed", "done", OLD),
                _scan("decided", "done", OLD),
            ],
        )
        await conn.execute(
            insert(scan_runs),
            [
                {"scan_id": "old0", "unfinished": 0, "failures": 1, "bugs": 0},
                {"scan_id": "oldpending", "unfinished": 1, "failures": 0, "bugs": 0},
            ],
        )
        await conn.execute(
            insert(detections),
            [
                {**DETECTION, "sha256": "a" * 64, "created_at": OLD},
                {**DETECTION, "sha256": "b" * 64, "created_at": RECENT},
            ],
        )
        for scan_id, status in (("reviewed", "open"), ("decided", "decided")):
            await conn.execute(
                insert(alerts).values(
                    scan_id=scan_id,
                    sha256="a" * 64,
                    channel="C0ALERTS",
                    ts=f"{OLD:.6f}",
                    permalink=None,
                    decision="review",
                    message={"text": "alert", "causes": ["Explicit"]},
                    created_at=OLD,
                )
            )
            await conn.execute(
                insert(reviews).values(
                    scan_id=scan_id,
                    sha256="a" * 64,
                    backend="slack",
                    status=status,
                    violation=True if status == "decided" else None,
                    reported=False,
                    created_at=OLD,
                )
            )
            await conn.execute(
                insert(votes).values(scan_id=scan_id, user="U0MOD1", violation=True, at=OLD)
            )
            await conn.execute(insert(audit).values(at=OLD, scan_id=scan_id, action="verdict"))


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _keys(engine: AsyncEngine, column: Any) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(column))).scalars())


async def test_old_rows_go_in_bounded_batches_and_the_record_stays(store: Store) -> None:
    """Events, finished scans (with their runs) and detections older than the cutoff are
    deleted, at most `batch` rows per statement; pending work, recent rows, alerts, reviews,
    votes and the audit log stay, and a reviewed image's alert still reads back."""
    engine = store.engine
    await _seed(engine)
    deletes: list[int] = []

    def count_deletes(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(cursor.rowcount)

    event.listen(engine.sync_engine, "after_cursor_execute", count_deletes)
    pruned = await Retention(store, batch=2, pause=0).prune(CUTOFF)

    assert pruned == {"events": 5, "scans": 7, "detections": 1}
    assert max(deletes) <= 2
    assert await _keys(engine, events.c.event_id) == {"EvRecent"}
    assert await _keys(engine, scans.c.id) == {"oldpending", "recent"}
    assert await _keys(engine, scan_runs.c.scan_id) == {"oldpending"}
    assert await _keys(engine, detections.c.sha256) == {"b" * 64}
    assert await _keys(engine, alerts.c.scan_id) == {"reviewed", "decided"}
    assert await _count(engine, reviews) == 2
    assert await _count(engine, votes) == 2
    assert await _count(engine, audit) == 2
    # What the verdict reporter and the vote handler read about a reviewed image still works.
    assert await store.alert_for("reviewed") == AlertRef("C0ALERTS", f"{OLD:.6f}", None)
    assert await store.alert_message("decided") == {"text": "alert", "causes": ["Explicit"]}
    review = await ReviewStore(store).get("decided")
    assert review is not None
    assert review.verdict is not None
    assert review.verdict.violation
    assert await Retention(store, batch=2, pause=0).prune(CUTOFF) == {
        "events": 0,
        "scans": 0,
        "detections": 0,
    }


@pytest.mark.postgres
async def test_two_replicas_pruning_at_once_delete_each_row_once(postgres_url: str) -> None:
    """Two runs on two engines at once: no errors, every old row deleted exactly once (one run
    holds the job's lock; the other is skipped, or finds nothing left)."""
    first, second = Store.from_url(async_url(postgres_url)), Store.from_url(async_url(postgres_url))
    try:
        await first.upgrade()
        await _seed(first.engine, old_events=40, old_scans=40)
        results = await asyncio.gather(
            Retention(first, batch=5, pause=0.01).prune(CUTOFF),
            Retention(second, batch=5, pause=0.01).prune(CUTOFF),
        )
        ran = [result for result in results if result is not None]
        assert ran
        assert sum(result["events"] for result in ran) == 40
        assert sum(result["scans"] for result in ran) == 42
        assert await _keys(first.engine, scans.c.id) == {"oldpending", "recent"}
        # The lock was let go: the next run takes it.
        assert await Retention(second).prune(CUTOFF) == {"events": 0, "scans": 0, "detections": 0}
    finally:
        await first.close()
        await second.close()


class FakePruner:
    def __init__(self, runs: int) -> None:
        self.cutoffs: list[float] = []
        self.done = asyncio.Event()
        self._runs = runs

    async def prune(self, cutoff: float) -> dict[str, int] | None:
        self.cutoffs.append(cutoff)
        if len(self.cutoffs) >= self._runs:
            self.done.set()
        return {"events": 1} if len(self.cutoffs) % 2 else None


async def test_pruning_runs_at_start_and_then_again_and_again() -> None:
    """The background loop prunes at once, then every interval, with the cutoff `days` back."""
    pruner = FakePruner(runs=3)
    task = asyncio.create_task(keep_pruning(pruner, 30, every=0.01, clock=lambda: 1e9))
    try:
        await asyncio.wait_for(pruner.done.wait(), 5)
    finally:
        task.cancel()
    assert pruner.cutoffs[:3] == [1e9 - 30 * DAY_SECONDS] * 3


async def test_modbot_serve_prunes_in_the_background(stack: Stack, tmp_path: Path) -> None:
    """Wired into the app under the supervisor: an old event id is gone soon after start."""
    seeded = Store.from_url(async_url(stack.env["DATABASE_URL"]))
    await seeded.upgrade()
    async with seeded.engine.begin() as conn:
        await conn.execute(insert(events).values(event_id="EvOld", received_at=OLD))
    try:
        async with http_bot(stack) as bot:
            assert "retention" in bot.runtime.supervisor.tasks

            async def pruned() -> bool:
                return not await _keys(seeded.engine, events.c.event_id)

            await until(pruned, "the old event id to be pruned")
    finally:
        await seeded.close()
