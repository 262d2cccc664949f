"""`modbot audit export`: both formats, --since, bad input, and reading in batches (streamed)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert

from bot.__main__ import main
from bot.adapters.database.schema import audit, metadata
from bot.ops.audit_export import BATCH_ROWS, records, write_jsonl

ROWS = 3000
START = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
ACTIONS = ("scanned", "alerted", "review_started", "vote", "verdict", "review_failed")


def _detail(i: int, action: str) -> dict[str, Any]:
    return {
        "scanned": {"sha256": f"{i:064x}", "decision": "review", "mode": "enforce"},
        "alerted": {"channel": "C0ALERTS", "ts": f"1700000000.{i:06d}"},
        "review_started": {"backend": "a2i", "loop": f"modbot-{i:016x}"},
        "vote": {"violation": i % 2 == 0},
        "verdict": {"violation": True, "labels": ["Exposed Female Nipple"], "note": "ünï, «x»"},
        "review_failed": {"detail": "loop expired"},
    }[action]


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database with the bot's schema and ROWS audit records, one a minute from START.

    They are inserted newest first, so "oldest first" has to come from the query, not from
    the insertion order.
    """
    path = tmp_path / "modbot.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    rows = []
    for i in reversed(range(ROWS)):
        action = ACTIONS[i % len(ACTIONS)]
        rows.append(
            {
                "at": START + 60 * i,
                "scan_id": f"{i:016x}",
                "action": action,
                "actor": "U0MOD" if action == "vote" else None,
                "detail": _detail(i, action),
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(audit), rows)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", "export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_has_a_header_and_every_record_oldest_first(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CSV: header row, then all records in time order, ISO 8601 UTC, detail as compact JSON."""
    code, out, err = _run(capsys, "--format", "csv")
    assert (code, err) == (0, "")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["at", "scan_id", "action", "actor", "detail"]
    body = rows[1:]
    assert len(body) == ROWS
    assert body[0][:4] == ["2026-03-01T00:00:00.000000Z", f"{0:016x}", "scanned", ""]
    assert [row[1] for row in body] == [f"{i:016x}" for i in range(ROWS)]
    vote = body[3]
    assert vote[2:] == ["vote", "U0MOD", '{"violation":false}']
    verdict = body[4]
    assert json.loads(verdict[4]) == _detail(4, "verdict")
    assert " " not in verdict[4].replace("Exposed Female Nipple", "").replace("ünï, «x»", "")
    assert {row[2] for row in body} == set(ACTIONS)


def test_jsonl_is_one_object_per_line(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """JSONL: one JSON object per line with the same five fields, detail as an object."""
    code, out, _ = _run(capsys, "--format", "jsonl")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == ROWS
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert first == {
        "at": "2026-03-01T00:00:00.000000Z",
        "scan_id": f"{0:016x}",
        "action": "scanned",
        "actor": None,
        "detail": _detail(0, "scanned"),
    }
    assert last["scan_id"] == f"{ROWS - 1:016x}"
    assert datetime.fromisoformat(last["at"]) == datetime.fromtimestamp(
        START + 60 * (ROWS - 1), UTC
    )


def test_since_keeps_records_from_that_utc_day_on(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since 2026-03-02 starts exactly at that day's 00:00 UTC (record 1440), inclusive."""
    code, out, _ = _run(capsys, "--since", "2026-03-02", "--format", "jsonl")
    assert code == 0
    exported = [json.loads(line) for line in out.splitlines()]
    assert len(exported) == ROWS - 1440
    assert exported[0]["scan_id"] == f"{1440:016x}"
    assert exported[0]["at"] == "2026-03-02T00:00:00.000000Z"
    code, out, _ = _run(capsys, "--since", "2027-01-01")
    assert (code, out) == (0, "at,scan_id,action,actor,detail\n")


@pytest.mark.parametrize("since", ["02/03/2026", "2026-3-2x", "2026-02-30", "yesterday", ""])
def test_bad_since_exits_2_naming_the_format(
    database: Path, capsys: pytest.CaptureFixture[str], since: str
) -> None:
    """A --since that is not a real YYYY-MM-DD date: exit 2, the expected format, no output."""
    code, out, err = _run(capsys, "--since", since)
    assert code == 2
    assert out == ""
    assert "YYYY-MM-DD" in err


def test_missing_database_is_a_clear_error_and_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No database file: exit 1 naming DATABASE_URL; the export does not create an empty one."""
    path = tmp_path / "nowhere.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    code, out, err = _run(capsys)
    assert code == 1
    assert out == ""
    assert "DATABASE_URL" in err
    assert not path.exists()


def test_database_without_audit_table_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not modbot's database: exit 1 with one line, not a traceback."""
    path = tmp_path / "other.db"
    sqlite3.connect(path).close()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    code, _, err = _run(capsys)
    assert code == 1
    assert err.startswith("modbot: could not read the audit table")
    assert "no such table: audit" in err
    assert err.count("\n") == 1


class _CountingCursor:
    """A DB-API cursor that counts the rows handed out and how (fetchmany vs fetchall)."""

    def __init__(self, cursor: sqlite3.Cursor, log: dict[str, Any]) -> None:
        self._cursor = cursor
        self._log = log

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany()
        self._log["fetchmany"].append(size)
        self._log["fetched"] += len(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows = self._cursor.fetchall()
        self._log["fetchall"] += 1
        self._log["fetched"] += len(rows)
        return rows

    def fetchone(self) -> Any:
        row = self._cursor.fetchone()
        self._log["fetched"] += row is not None
        return row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _CountingConnection:
    def __init__(self, path: Path, log: dict[str, Any]) -> None:
        self._conn = sqlite3.connect(path)
        self._log = log

    def cursor(self, *args: Any) -> _CountingCursor:
        return _CountingCursor(self._conn.cursor(*args), self._log)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_rows_are_fetched_in_batches_while_they_are_written(database: Path) -> None:
    """Streaming: the driver hands rows over BATCH_ROWS at a time (never fetchall), and when
    the first record is written only the first batch has been read from the database."""
    log: dict[str, Any] = {"fetchmany": [], "fetchall": 0, "fetched": 0}
    engine = create_engine("sqlite://", creator=lambda: _CountingConnection(database, log))
    fetched_when_written: list[int] = []

    class Out(io.StringIO):
        def write(self, text: str) -> int:
            fetched_when_written.append(log["fetched"])
            return super().write(text)

    with engine.connect() as conn:
        log.update(fetchmany=[], fetchall=0, fetched=0)  # forget the dialect's start-up queries
        written = write_jsonl(records(conn), Out())
    engine.dispose()
    assert written == ROWS
    assert log["fetchall"] == 0
    assert log["fetched"] == ROWS
    assert fetched_when_written[0] == BATCH_ROWS
    assert max(fetched_when_written[:BATCH_ROWS]) == BATCH_ROWS
    # SQLAlchemy reads one row first, then fills the batch; never more than BATCH_ROWS a call.
    assert max(log["fetchmany"]) == BATCH_ROWS
    assert len(log["fetchmany"]) <= ROWS // BATCH_ROWS + 2


def test_database_url_is_checked_like_the_bot_and_no_slack_setting_is_needed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only DATABASE_URL is read (no SLACK_* set here), with the bot's own check: exit 2."""
    monkeypatch.setenv("DATABASE_URL", "mysql://db/modbot")
    code, out, err = _run(capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("modbot: DATABASE_URL: must be sqlite:///path.db, postgresql://")


@pytest.mark.postgres
def test_records_are_exported_from_postgresql(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The export reads a PostgreSQL DATABASE_URL (Heroku's postgres:// spelling) the same way."""
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(audit),
            [
                {
                    "at": START + i,
                    "scan_id": f"s{i}",
                    "action": "vote",
                    "actor": "U1",
                    "detail": {"n": i},
                }
                for i in range(3)
            ],
        )
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", postgres_url.replace("postgresql://", "postgres://", 1))
    code, out, err = _run(capsys, "--format", "jsonl")
    assert (code, err) == (0, "")
    assert [json.loads(line)["scan_id"] for line in out.splitlines()] == ["s0", "s1", "s2"]
