"""The state store: scans, detections, alerts, event ids, reviews and the audit log."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, event, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.codec import (
    detection_from_json,
    detection_to_json,
    request_from_json,
    request_to_json,
)
from bot.model import AlertRef, Decision, Detection, ScanRequest
from bot.schema import alerts, audit, detections, events, metadata, scans


def new_scan_id() -> str:
    """Short, unique, and valid inside an A2I HumanLoopName (lowercase hex)."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class PendingScan:
    scan_id: str
    request: ScanRequest
    attempts: int


class Store:
    """Async access to the database. One instance per process, shared by everything."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    def from_url(cls, url: str) -> Store:
        engine = create_async_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    async def create(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    # -- intake ---------------------------------------------------------------------------

    async def accept(
        self, requests: Iterable[ScanRequest], *, event_id: str | None = None
    ) -> list[str]:
        """Record new work in one transaction; return the ids of scans not seen before.

        A redelivered event (same event_id) or a request whose dedup key exists adds nothing.
        """
        now = time.time()
        accepted: list[str] = []
        async with self._engine.begin() as conn:
            insert_new = insert_ignoring_duplicates(conn.dialect.name)
            if event_id is not None:
                first = await conn.execute(
                    insert_new(events).values(event_id=event_id, received_at=now)
                )
                if first.rowcount == 0:
                    return []
            for request in requests:
                scan_id = new_scan_id()
                added = await conn.execute(
                    insert_new(scans).values(
                        id=scan_id,
                        dedup_key=request.dedup_key,
                        request=request_to_json(request),
                        status="pending",
                        attempts=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
                if added.rowcount:  # 0: this image in this message is already taken
                    accepted.append(scan_id)
        return accepted

    async def pending(self) -> list[PendingScan]:
        """Accepted work not finished yet, oldest first (resumed at start)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(scans.c.id, scans.c.request, scans.c.attempts)
                .where(scans.c.status == "pending")
                .order_by(scans.c.created_at)
            )
            return [PendingScan(r.id, request_from_json(r.request), r.attempts) for r in rows]

    async def load(self, scan_id: str) -> PendingScan | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(scans.c.id, scans.c.request, scans.c.attempts).where(
                        scans.c.id == scan_id
                    )
                )
            ).first()
        return PendingScan(row.id, request_from_json(row.request), row.attempts) if row else None

    async def count_attempt(self, scan_id: str) -> int:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(scans)
                .where(scans.c.id == scan_id)
                .values(attempts=scans.c.attempts + 1, updated_at=time.time())
            )
            row = (await conn.execute(select(scans.c.attempts).where(scans.c.id == scan_id))).one()
        return int(row.attempts)

    async def finish(
        self,
        scan_id: str,
        *,
        sha256: str | None = None,
        decision: Decision | None = None,
        mode: str | None = None,
        error: str | None = None,
        skipped: str | None = None,
    ) -> None:
        """Mark a scan ended: with a decision, an error a human has been shown, or skipped
        (content that never claimed to be an image, such as a link to a web page)."""
        status = "failed" if error else "skipped" if skipped else "done"
        async with self._engine.begin() as conn:
            await conn.execute(
                update(scans)
                .where(scans.c.id == scan_id)
                .values(
                    status=status,
                    sha256=sha256,
                    decision=decision.value if decision else None,
                    mode=mode,
                    error=error or skipped,
                    updated_at=time.time(),
                )
            )
            await write_audit(
                conn,
                scan_id,
                {"failed": "scan_failed", "skipped": "skipped", "done": "scanned"}[status],
                None,
                {"sha256": sha256, "decision": decision, "mode": mode, "error": error or skipped},
            )

    async def status_counts(self) -> dict[str, int]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(scans.c.status, func.count()).group_by(scans.c.status))
            return {str(row[0]): int(row[1]) for row in rows}

    # -- detections -----------------------------------------------------------------------

    async def detection(self, sha256: str) -> Detection | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(detections.c.result).where(detections.c.sha256 == sha256))
            ).first()
        return detection_from_json(row.result) if row else None

    async def save_detection(self, sha256: str, detection: Detection) -> None:
        async with self._engine.begin() as conn:
            values = {
                "result": detection_to_json(detection),
                "min_confidence": detection.min_confidence,
                "created_at": time.time(),
            }
            updated = await conn.execute(
                update(detections).where(detections.c.sha256 == sha256).values(**values)
            )
            if updated.rowcount == 0:
                await conn.execute(insert(detections).values(sha256=sha256, **values))

    # -- alerts ---------------------------------------------------------------------------

    async def begin_alert(
        self,
        scan_id: str,
        sha256: str,
        channel: str,
        decision: Decision,
        message: dict[str, Any],
    ) -> float | None:
        """Record the intent to post an alert. Returns when an earlier intent was recorded,
        if one exists (its post may or may not have reached Slack), else None."""
        now = time.time()
        async with self._engine.begin() as conn:
            insert_new = insert_ignoring_duplicates(conn.dialect.name)
            added = await conn.execute(
                insert_new(alerts).values(
                    scan_id=scan_id,
                    sha256=sha256,
                    channel=channel,
                    ts=None,
                    decision=decision.value,
                    message=message,
                    created_at=now,
                )
            )
            if added.rowcount:
                return None
            row = (
                await conn.execute(select(alerts.c.created_at).where(alerts.c.scan_id == scan_id))
            ).one()
            return float(row.created_at)

    async def complete_alert(self, scan_id: str, alert: AlertRef) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(alerts)
                .where(alerts.c.scan_id == scan_id)
                .values(channel=alert.channel, ts=alert.ts, permalink=alert.permalink)
            )
            await write_audit(
                conn, scan_id, "alerted", None, {"channel": alert.channel, "ts": alert.ts}
            )

    async def alert_for(self, scan_id: str) -> AlertRef | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(alerts).where(alerts.c.scan_id == scan_id, alerts.c.ts.is_not(None))
                )
            ).first()
        return AlertRef(row.channel, row.ts, row.permalink) if row else None

    async def alert_message(self, scan_id: str) -> dict[str, Any] | None:
        """The alert's text and blocks as posted."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(alerts.c.message).where(alerts.c.scan_id == scan_id))
            ).first()
        return dict(row.message) if row and row.message else None

    async def earliest_alert(self, sha256: str, *, excluding: str) -> AlertRef | None:
        """The first alert ever posted for these bytes (re-posts link to it)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(alerts)
                    .where(
                        alerts.c.sha256 == sha256,
                        alerts.c.scan_id != excluding,
                        alerts.c.ts.is_not(None),
                    )
                    .order_by(alerts.c.created_at)
                    .limit(1)
                )
            ).first()
        return AlertRef(row.channel, row.ts, row.permalink) if row else None

    async def record(
        self, scan_id: str | None, action: str, actor: str | None, detail: dict[str, Any]
    ) -> None:
        async with self._engine.begin() as conn:
            await write_audit(conn, scan_id, action, actor, detail)

    async def audit_log(self, scan_id: str | None = None) -> Sequence[dict[str, Any]]:
        query = select(audit).order_by(audit.c.id)
        if scan_id is not None:
            query = query.where(audit.c.scan_id == scan_id)
        async with self._engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    @property
    def engine(self) -> AsyncEngine:
        return self._engine


async def write_audit(
    conn: Any, scan_id: str | None, action: str, actor: str | None, detail: dict[str, Any]
) -> None:
    clean = {key: value for key, value in detail.items() if value is not None}
    await conn.execute(
        insert(audit).values(
            at=time.time(), scan_id=scan_id, action=action, actor=actor, detail=clean
        )
    )


def insert_ignoring_duplicates(dialect: str) -> Callable[[Table], Any]:
    """INSERT ... ON CONFLICT DO NOTHING, which both SQLite and PostgreSQL speak."""
    if dialect == "postgresql":
        return lambda table: postgresql_insert(table).on_conflict_do_nothing()
    return lambda table: sqlite_insert(table).on_conflict_do_nothing()


def _sqlite_pragmas(dbapi_conn: Connection, _record: object) -> None:
    # WAL lets readers (health checks, history look-ups) proceed while a writer commits;
    # the busy timeout makes concurrent writers wait instead of failing.
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
