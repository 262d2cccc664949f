"""The state store: scans, detections, alerts, event ids, reviews and the audit log."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.adapters.database import migrate
from bot.adapters.database.engine import (
    WriteGate,
    gate_for,
    inline_reading,
    inline_writing,
    insert_ignoring_duplicates,
    make_engine,
    masked,
    sync_intake_engine,
    upsert_statement,
    write_audit,
    writing,
)
from bot.adapters.database.schema import alerts, audit, detections, events, scan_runs, scans
from bot.core.codec import (
    detection_from_json,
    detection_to_json,
    request_from_json,
    request_to_json,
)
from bot.core.errors import ConfigError
from bot.core.model import AlertRef, Decision, Detection, ScanRequest
from bot.core.work import WorkItem


def new_scan_id() -> str:
    """Short, unique, and valid inside an A2I HumanLoopName (lowercase hex)."""
    return uuid.uuid4().hex[:16]


# The work item under its older name (the store's own tests and tools use it).
PendingScan = WorkItem


class Store:
    """Async access to the database. One instance per process, shared by everything."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.gate: WriteGate = gate_for(engine)
        self._sync_engine = sync_intake_engine(engine)
        self._intake: list[_Intake] = []
        self._intake_flush: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(make_engine(url))

    @asynccontextmanager
    async def write(self, *, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction; SQLite writers take turns (see
        bot.adapters.database.engine.WriteGate), on the loop's thread (InlineConnection)."""
        if self._sync_engine is not None:
            async with inline_writing(self._sync_engine, self.gate, urgent=urgent) as conn:
                yield conn
        else:
            async with writing(self._engine, self.gate, urgent=urgent) as conn:
                yield conn

    @asynccontextmanager
    async def bulk_write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction for bulk work (retention's batches of deletes): on SQLite it runs
        on the database driver's thread, too long to hold up the event loop."""
        async with writing(self._engine, self.gate) as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a few reads (on SQLite, on the loop's thread)."""
        if self._sync_engine is not None:
            async with inline_reading(self._sync_engine) as conn:
                yield conn
        else:
            async with self._engine.connect() as conn:
                yield conn

    async def upgrade(self) -> None:
        """Apply pending migrations (see bot.adapters.database.migrate); at start, before any other
        use.

        A database that cannot be reached stops the start with one line naming DATABASE_URL.
        """
        where = masked(self._engine.url)
        try:
            in_memory = self._engine.url.database in (None, "", ":memory:")
            await migrate.upgrade(self._engine if in_memory else self._engine.url)
        except (OperationalError, InterfaceError, OSError, TimeoutError) as exc:
            raise ConfigError(
                [f"DATABASE_URL: cannot use the database at {where} ({_first_line(exc)})"]
            ) from None
        except DBAPIError as exc:
            raise ConfigError(
                [
                    f"DATABASE_URL: migrating the database at {where} failed, schema unchanged"
                    f" ({_first_line(exc)})"
                ]
            ) from None
        except migrate.SchemaMismatch as exc:
            raise ConfigError([f"DATABASE_URL: {where}: {exc}"]) from None

    async def close(self) -> None:
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        await self._engine.dispose()

    async def ping(self) -> bool:
        """Whether the database answers, within PING_TIMEOUT_SECONDS (for /healthz)."""
        if self._sync_engine is not None:
            # A local file, answered at once on the loop's thread. Through aiosqlite the ping
            # queued behind a busy loop for each of its hand-offs and timed out under load.
            try:
                with self._sync_engine.connect() as sync_conn:
                    sync_conn.execute(text("SELECT 1"))
            except Exception:
                return False
            return True
        try:
            async with asyncio.timeout(PING_TIMEOUT_SECONDS), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    # -- intake ---------------------------------------------------------------------------

    async def accept(
        self, requests: Iterable[ScanRequest], *, event_id: str | None = None
    ) -> list[str]:
        """Record new work; return the ids of scans not seen before.

        A redelivered event (same event_id) or a request whose dedup key exists adds nothing.
        Slack is waiting for this (the ack follows it), so concurrent intakes are committed
        together in one transaction, ahead of the workers' writes.
        """
        done: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._intake.append(_Intake(list(requests), event_id, done))
        if self._intake_flush is None or self._intake_flush.done():
            self._intake_flush = asyncio.create_task(self._flush_intake())
        return await done

    async def _flush_intake(self) -> None:
        while self._intake:
            batch, self._intake = self._intake, []
            try:
                if self._sync_engine is not None:
                    async with self.gate.hold(urgent=True):
                        with self._sync_engine.begin() as sync_conn:
                            results = accept_batch(sync_conn, batch)
                else:
                    async with self.write(urgent=True) as conn:
                        results = await conn.run_sync(accept_batch, batch)
            except Exception as exc:
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            for item, scan_ids in zip(batch, results, strict=True):
                if not item.done.done():
                    item.done.set_result(scan_ids)

    async def pending(self) -> list[WorkItem]:
        """Accepted work not finished yet, oldest first, with how each has fared (starts that
        never ended, failures), its lease and its retry clock."""
        async with self.read() as conn:
            rows = await conn.execute(
                select(scans.c.id, scans.c.request, scans.c.attempts, scan_runs)
                .outerjoin(scan_runs, scan_runs.c.scan_id == scans.c.id)
                .where(scans.c.status == "pending")
                .order_by(scans.c.created_at)
            )
            return [_item(r.id, r.request, r.attempts, r) for r in rows]

    async def begin_run(
        self,
        scan_id: str,
        *,
        holder: str | None = None,
        lease_until: float | None = None,
        now: float | None = None,
    ) -> WorkItem | None:
        """Count a start before the work (durably) and take the scan's lease for `holder`.

        None if the scan is no longer pending, or another holder's lease on it has not
        expired. The start stays counted as unfinished until end_run, record_failure or
        finish: starts that never ended mean the work itself took the process down.
        """
        now = time.time() if now is None else now
        async with self.write() as conn:
            row = (
                await conn.execute(
                    select(scans.c.request, scans.c.attempts, scans.c.created_at)
                    .where(scans.c.id == scan_id, scans.c.status == "pending")
                    # PostgreSQL: claims of one scan take turns on its row; a row another
                    # replica is claiming or finishing right now is skipped, not waited for
                    # (SQLite has one writer, and no FOR UPDATE).
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return None  # not pending, or another replica has its row in hand
            insert_new = insert_ignoring_duplicates(conn.dialect.name)
            await conn.execute(
                insert_new(scan_runs).values(scan_id=scan_id, unfinished=0, failures=0, bugs=0)
            )
            free = or_(
                scan_runs.c.holder.is_(None),
                scan_runs.c.lease_until.is_(None),
                scan_runs.c.lease_until <= now,
                scan_runs.c.holder == holder,
            )
            run = (
                await conn.execute(
                    update(scan_runs)
                    .where(scan_runs.c.scan_id == scan_id, free)
                    .values(
                        unfinished=scan_runs.c.unfinished + 1,
                        holder=holder,
                        lease_until=lease_until,
                        not_before=None,
                    )
                    .returning(scan_runs)
                )
            ).first()
            if run is None:
                return None  # leased to another holder
            await conn.execute(
                update(scans)
                .where(scans.c.id == scan_id)
                .values(attempts=scans.c.attempts + 1, updated_at=now)
            )
        return replace(
            _item(scan_id, row.request, int(row.attempts) + 1, run),
            crashes=int(run.unfinished) - 1,
            accepted_at=row.created_at,
        )

    async def end_run(self, scan_id: str, *, keep_lease: bool = False) -> None:
        """The run stopped without crashing the process (interrupted by a shutdown, or waiting
        for its note: then `keep_lease`)."""
        values: dict[str, Any] = {"unfinished": 0}
        if not keep_lease:
            values.update(holder=None, lease_until=None)
        async with self.write() as conn:
            await conn.execute(
                update(scan_runs).where(scan_runs.c.scan_id == scan_id).values(**values)
            )

    async def drop_leases(self, *, keep: str) -> None:
        """Void every lease not held by `keep` (a process that is the only one working this
        database: leases from its earlier lives are void)."""
        async with self.write() as conn:
            await conn.execute(
                update(scan_runs)
                .where(scan_runs.c.holder.is_not(None), scan_runs.c.holder != keep)
                .values(holder=None, lease_until=None)
            )

    async def record_failure(
        self, scan_id: str, *, bug: bool = False, not_before: float | None = None
    ) -> WorkItem | None:
        """A transient failure (or, with `bug`, an unexpected exception) ended this run; the
        scan will be retried, not before `not_before`. The lease is given up. Returns the
        updated counts."""
        now = time.time()
        async with self.write() as conn:
            values: dict[str, Any] = {
                "unfinished": 0,
                "failures": scan_runs.c.failures + 1,
                "first_failure_at": func.coalesce(scan_runs.c.first_failure_at, now),
                "holder": None,
                "lease_until": None,
                "not_before": not_before,
            }
            if bug:
                values["bugs"] = scan_runs.c.bugs + 1
            await conn.execute(
                update(scan_runs).where(scan_runs.c.scan_id == scan_id).values(**values)
            )
            row = (
                await conn.execute(
                    select(scans.c.request, scans.c.attempts, scan_runs)
                    .join(scan_runs, scan_runs.c.scan_id == scans.c.id)
                    .where(scans.c.id == scan_id)
                )
            ).first()
        if row is None:
            return None
        return replace(_item(scan_id, row.request, int(row.attempts), row), crashes=0)

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
        async with self.write() as conn:
            await conn.execute(scan_runs.delete().where(scan_runs.c.scan_id == scan_id))
            await conn.execute(
                update(scans)
                .where(scans.c.id == scan_id)
                .values(
                    status=status,
                    sha256=sha256,
                    decision=decision.value if decision else None,
                    mode=mode,
                    error=without_nul(error or skipped),
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
        async with self.read() as conn:
            rows = await conn.execute(select(scans.c.status, func.count()).group_by(scans.c.status))
            return {str(row[0]): int(row[1]) for row in rows}

    # -- detections -----------------------------------------------------------------------

    async def detection(self, sha256: str, detector: str) -> Detection | None:
        """What `detector` found in these bytes, if it has looked at them."""
        async with self.read() as conn:
            params = {"b_sha256": sha256, "b_detector": detector}
            row = (await conn.execute(_DETECTION, params)).first()
        return detection_from_json(row.result) if row else None

    async def save_detection(self, sha256: str, detector: str, detection: Detection) -> None:
        async with self.write() as conn:
            values = {
                "model_version": detection.model_version[:64],
                "result": detection_to_json(detection),
                "min_confidence": detection.min_confidence,
                "created_at": time.time(),
            }
            key = {"sha256": sha256, "detector": detector}
            statement = upsert_statement(
                conn.dialect.name, detections, ("sha256", "detector"), tuple(values)
            )
            await conn.execute(statement, {**key, **values})

    # -- alerts ---------------------------------------------------------------------------

    async def begin_alert(
        self,
        scan_id: str,
        sha256: str,
        channel: str,
        decision: Decision,
        message: dict[str, Any],
        *,
        causes: Sequence[str],
    ) -> float | None:
        """Record the intent to post an alert: the Slack message as it will be posted, and the
        names of the labels that caused it. Returns when an earlier intent was recorded, if one
        exists (its post may or may not have reached Slack), else None."""
        now = time.time()
        async with self.write() as conn:
            insert_new = insert_ignoring_duplicates(conn.dialect.name)
            added = await conn.execute(
                insert_new(alerts)
                .values(
                    scan_id=scan_id,
                    sha256=sha256,
                    channel=channel,
                    ts=None,
                    decision=decision.value,
                    message=message,
                    causes=list(causes),
                    created_at=now,
                )
                .returning(alerts.c.scan_id)
            )
            if added.first() is not None:
                return None
            row = (await conn.execute(_ALERT_CREATED, {"b_scan_id": scan_id})).one()
            return float(row.created_at)

    async def complete_alert(self, scan_id: str, alert: AlertRef) -> None:
        async with self.write() as conn:
            values = {"channel": alert.channel, "ts": alert.ts, "permalink": alert.permalink}
            await conn.execute(_ALERT_POSTED, {"b_scan_id": scan_id, **values})
            await write_audit(
                conn, scan_id, "alerted", None, {"channel": alert.channel, "ts": alert.ts}
            )

    async def alert_for(self, scan_id: str) -> AlertRef | None:
        async with self.read() as conn:
            row = (await conn.execute(_ALERT_FOR, {"b_scan_id": scan_id})).first()
        return AlertRef(row.channel, row.ts, row.permalink) if row else None

    async def alert_message(self, scan_id: str) -> dict[str, Any] | None:
        """The alert's text and blocks as posted."""
        async with self.read() as conn:
            row = (
                await conn.execute(select(alerts.c.message).where(alerts.c.scan_id == scan_id))
            ).first()
        return dict(row.message) if row and row.message else None

    async def alert_causes(self, scan_id: str) -> tuple[str, ...]:
        """The names of the labels that made the alert's decision."""
        async with self._engine.connect() as conn:
            causes = (
                await conn.execute(select(alerts.c.causes).where(alerts.c.scan_id == scan_id))
            ).scalar_one_or_none()
        return tuple(str(cause) for cause in causes or ())

    async def scan_of(self, scan_id: str) -> tuple[ScanRequest, str | None] | None:
        """A scan's request as accepted, and the hash of its bytes once known."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(scans.c.request, scans.c.sha256).where(scans.c.id == scan_id)
                )
            ).first()
        return (request_from_json(row.request), row.sha256) if row else None

    async def earliest_alert(self, sha256: str, *, excluding: str) -> AlertRef | None:
        """The first alert ever posted for these bytes (re-posts link to it)."""
        async with self.read() as conn:
            params = {"b_sha256": sha256, "b_excluding": excluding}
            row = (await conn.execute(_EARLIEST_ALERT, params)).first()
        return AlertRef(row.channel, row.ts, row.permalink) if row else None

    async def audit_log(self, scan_id: str | None = None) -> Sequence[dict[str, Any]]:
        query = select(audit).order_by(audit.c.id)
        if scan_id is not None:
            query = query.where(audit.c.scan_id == scan_id)
        async with self.read() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    @property
    def engine(self) -> AsyncEngine:
        return self._engine


# The statements of every scan, built once: building one (coercing its parts, making its bound
# parameters, computing its cache key) cost more CPU than SQLite's running it. Parameters
# named b_* so that they cannot clash with the column names UPDATE reserves.
_DETECTION = select(detections.c.result).where(
    detections.c.sha256 == bindparam("b_sha256"), detections.c.detector == bindparam("b_detector")
)
_ALERT_CREATED = select(alerts.c.created_at).where(alerts.c.scan_id == bindparam("b_scan_id"))
_ALERT_POSTED = (
    update(alerts)
    .where(alerts.c.scan_id == bindparam("b_scan_id"))
    .values(channel=bindparam("channel"), ts=bindparam("ts"), permalink=bindparam("permalink"))
)
_ALERT_FOR = select(alerts).where(
    alerts.c.scan_id == bindparam("b_scan_id"), alerts.c.ts.is_not(None)
)
_EARLIEST_ALERT = (
    select(alerts)
    .where(
        alerts.c.sha256 == bindparam("b_sha256"),
        alerts.c.scan_id != bindparam("b_excluding"),
        alerts.c.ts.is_not(None),
    )
    .order_by(alerts.c.created_at)
    .limit(1)
)


@dataclass
class _Intake:
    requests: list[ScanRequest]
    event_id: str | None
    done: asyncio.Future[list[str]]


ROWS_PER_INSERT = 500  # well inside SQLite's limit on bound variables per statement
PING_TIMEOUT_SECONDS = 5.0
# The dedup key column's length: PostgreSQL enforces it, SQLite never did.
DEDUP_KEY_LENGTH: int = getattr(scans.c.dedup_key.type, "length", None) or 512


def accept_batch(conn: Connection, batch: list[_Intake]) -> list[list[str]]:
    """Record a batch of intakes with a couple of multi-row statements, whatever its size.

    Statement count, not row count, is what costs here: each one is a round trip to the
    database thread that has to wait for its turn on a busy event loop.
    """
    now = time.time()
    insert_new = insert_ignoring_duplicates(conn.dialect.name)
    event_ids = list(dict.fromkeys(item.event_id for item in batch if item.event_id))
    fresh: set[str] = set()
    for chunk in _chunks([{"event_id": e, "received_at": now} for e in event_ids]):
        rows = conn.execute(insert_new(events).values(chunk).returning(events.c.event_id))
        fresh.update(row.event_id for row in rows)
    new_rows: list[dict[str, Any]] = []
    owners: list[int] = []
    for index, item in enumerate(batch):
        if item.event_id is not None:
            if item.event_id not in fresh:
                continue  # a redelivery (or the same event twice in this batch)
            fresh.discard(item.event_id)
        for request in item.requests:
            new_rows.append(_scan_row(request, now))
            owners.append(index)
    inserted: set[str] = set()
    for chunk in _chunks(new_rows):
        rows = conn.execute(insert_new(scans).values(chunk).returning(scans.c.id))
        inserted.update(row.id for row in rows)  # a dedup key already taken is left out
    results: list[list[str]] = [[] for _ in batch]
    for index, row in zip(owners, new_rows, strict=True):
        if row["id"] in inserted:
            results[index].append(row["id"])
    return results


def _scan_row(request: ScanRequest, now: float) -> dict[str, Any]:
    return {
        "id": new_scan_id(),
        "dedup_key": fitted_key(request.dedup_key),
        "request": request_to_json(request),
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _item(scan_id: str, request: Any, attempts: int, run: Any) -> WorkItem:
    """A work item from a scans row's request and attempts and its scan_runs row (or None
    columns when the scan has never been started)."""
    return WorkItem(
        scan_id,
        request_from_json(request),
        int(attempts),
        crashes=int(run.unfinished or 0),
        failures=int(run.failures or 0),
        first_failure_at=run.first_failure_at,
        bugs=int(run.bugs or 0),
        holder=run.holder,
        lease_until=run.lease_until,
        not_before=run.not_before,
    )


def _first_line(exc: BaseException) -> str:
    """The driver's own message, first line only (libpq adds hints on the next ones)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def fitted_key(key: str) -> str:
    """The dedup key as stored: a key longer than its column (a link's URL can be any length)
    keeps its start and ends in a hash of the whole, so it stays unique and fits."""
    if len(key) <= DEDUP_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: DEDUP_KEY_LENGTH - len(digest) - 1]}#{digest}"


def without_nul(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters (SQLite can): an error or a detail that
    quotes hostile input must not make the write fail."""
    return value.replace("\x00", "\ufffd") if value is not None else None


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i : i + ROWS_PER_INSERT] for i in range(0, len(rows), ROWS_PER_INSERT)]
