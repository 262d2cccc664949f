"""`modbot audit export`: the audit trail as CSV or JSON Lines, streamed, oldest first.

The audit table grows with every scan, so rows are read in batches through a streaming result
(`yield_per`: a server-side cursor where the driver has one, `fetchmany` batches on SQLite) and
written as they come; the table is never loaded whole. A one-off command has no event loop to
share, so it uses a plain synchronous engine on the same DATABASE_URL.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.adapters.database.engine import async_url
from bot.adapters.database.schema import audit
from bot.core.errors import ModbotError

BATCH_ROWS = 500
COLUMNS = ("at", "scan_id", "action", "actor", "detail")
FORMATS = ("csv", "jsonl")


class ExportFailed(ModbotError):
    """The database could not be read; the message says what to check."""


@dataclass(frozen=True)
class AuditRecord:
    at: float
    scan_id: str | None
    action: str
    actor: str | None
    detail: dict[str, Any]

    def row(self) -> dict[str, Any]:
        """The exported form: `at` in ISO 8601 UTC, `detail` as an object."""
        return {
            "at": iso_utc(self.at),
            "scan_id": self.scan_id,
            "action": self.action,
            "actor": self.actor,
            "detail": self.detail,
        }


def parse_since(text: str) -> float:
    """YYYY-MM-DD -> that day's 00:00 UTC as a Unix time; ValueError naming the format."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a date as YYYY-MM-DD (e.g. 2026-01-31)"
        ) from None
    return day.timestamp()


def iso_utc(moment: float) -> str:
    """2026-01-31T09:10:12.345678Z."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compact(detail: Any) -> str:
    return json.dumps(detail, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def records(
    conn: Connection, since: float | None = None, *, batch: int = BATCH_ROWS
) -> Iterator[AuditRecord]:
    """Audit records at or after `since`, oldest first, fetched `batch` rows at a time."""
    query = select(audit.c.at, audit.c.scan_id, audit.c.action, audit.c.actor, audit.c.detail)
    if since is not None:
        query = query.where(audit.c.at >= since)
    query = query.order_by(audit.c.at, audit.c.id)
    result = conn.execution_options(yield_per=batch).execute(query)
    for partition in result.partitions():
        for row in partition:
            yield AuditRecord(
                float(row.at), row.scan_id, str(row.action), row.actor, dict(row.detail or {})
            )


def write_csv(rows: Iterable[AuditRecord], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for record in rows:
        fields = record.row()
        fields["detail"] = compact(record.detail)
        writer.writerow([fields[column] for column in COLUMNS])
        count += 1
    return count


def write_jsonl(rows: Iterable[AuditRecord], out: TextIO) -> int:
    count = 0
    for record in rows:
        out.write(compact(record.row()) + "\n")
        count += 1
    return count


def export_engine(database_url: str) -> Engine:
    """A synchronous engine for DATABASE_URL; a missing SQLite file is an error, not created."""
    url = make_url(async_url(database_url))  # psycopg 3 speaks both; SQLite gets pysqlite
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise ExportFailed(f"no database file at {path or '(none)'}: check DATABASE_URL")
        url = url.set(drivername="sqlite")
    return create_engine(url)


def export(engine: Engine, out: TextIO, *, since: float | None, fmt: str) -> int:
    """Write every record to `out` in `fmt`; returns how many were written."""
    write = write_csv if fmt == "csv" else write_jsonl
    try:
        with engine.connect() as conn:
            return write(records(conn, since), out)
    except SQLAlchemyError as exc:  # say what went wrong in one line, not with a traceback
        reason = getattr(exc, "orig", None) or exc
        raise ExportFailed(f"could not read the audit table: {reason}") from None
