"""`modbot bank export [FILE]` and `modbot bank import FILE`: the hash bank as CSV (PRODUCT §11).

Export streams every row, oldest first, to FILE or standard output. Import reads the whole file
first and validates every row (bot/core/bank_csv.py); one bad row refuses the file, naming its
line, and nothing is written. Valid files go in in one transaction; rows whose hash and verdict
are already in the bank are skipped, so importing the same file twice adds nothing. Running
replicas pick imported rows up at their next bank refresh.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

from bot.adapters.database.bank import BankStore
from bot.adapters.database.engine import async_url
from bot.adapters.database.scans import Store
from bot.core import bank_csv
from bot.core.errors import ModbotError


class BankCommandFailed(ModbotError):
    """Said to the operator in one line; exit 1."""


def _existing_database(database_url: str) -> None:
    url = make_url(async_url(database_url))
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise BankCommandFailed(f"no database file at {path or '(none)'}: check DATABASE_URL")


async def export_bank(database_url: str, out: TextIO) -> int:
    """Write the bank as CSV to `out`; returns how many rows."""
    _existing_database(database_url)
    store = Store.from_url(async_url(database_url))
    try:
        await store.upgrade()  # an older schema gets the bank's tables (empty) first
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(bank_csv.HEADER)
        count = 0
        async for entry in BankStore(store).export():
            [row] = list(bank_csv.rows([entry]))[1:]
            writer.writerow(row)
            count += 1
        return count
    finally:
        await store.close()


async def import_bank(database_url: str, path: Path) -> tuple[int, int]:
    """Validate the whole file, then add its rows; returns (rows read, rows added)."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            entries = bank_csv.parse(file)
    except (OSError, UnicodeDecodeError) as exc:
        raise BankCommandFailed(f"cannot read {path}: {exc}") from None
    store = Store.from_url(async_url(database_url))
    try:
        await store.upgrade()  # a fresh deployment's database is created and migrated
        added = await BankStore(store).import_entries(entries)
    finally:
        await store.close()
    return len(entries), added


def say(message: str) -> None:
    print(f"modbot: {message}", file=sys.stderr)
