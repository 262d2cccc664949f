"""The hash bank's CSV (PRODUCT §11): `pdq,quality,verdict,labels,first_seen`, read strictly.

A bank moves between deployments as this file. Import refuses a whole file for one bad row and
names its line, so a half-imported bank never silently matches less than its operator thinks.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from bot.core.errors import ModbotError
from bot.core.pdq import BankEntry, is_pdq_hex

HEADER = ("pdq", "quality", "verdict", "labels", "first_seen")
VERDICTS = {"violation": True, "no_violation": False}


class BadBankFile(ModbotError):
    """A bank CSV that cannot be imported; `line` is 1-based, the header being line 1."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def iso_utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rows(entries: Iterable[BankEntry]) -> Iterator[list[str]]:
    """The header, then one CSV row per entry."""
    yield list(HEADER)
    for entry in entries:
        yield [
            entry.pdq,
            str(entry.quality),
            "violation" if entry.violation else "no_violation",
            ";".join(entry.labels),
            iso_utc(entry.first_seen),
        ]


def parse(lines: Iterable[str]) -> list[BankEntry]:
    """Every entry of a bank CSV, or BadBankFile naming the first bad line."""
    reader = csv.reader(lines, strict=True)
    entries: list[BankEntry] = []
    try:
        header = next(reader, None)
        if header is None or tuple(cell.strip() for cell in header) != HEADER:
            raise BadBankFile(1, f"the header must be {','.join(HEADER)}")
        for row in reader:
            if not row:  # a blank line, as editors leave at the end
                continue
            entries.append(_entry(reader.line_num, row))
    except csv.Error as exc:
        raise BadBankFile(reader.line_num, f"not CSV ({exc})") from None
    return entries


def _entry(line: int, row: list[str]) -> BankEntry:
    if len(row) != len(HEADER):
        raise BadBankFile(line, f"{len(row)} fields where {len(HEADER)} are expected")
    pdq, quality_text, verdict, labels, first_seen = (cell.strip() for cell in row)
    pdq = pdq.lower()
    if not is_pdq_hex(pdq):
        raise BadBankFile(line, f"pdq {pdq[:70]!r} is not 64 hex digits")
    if not quality_text.isdecimal() or not 0 <= int(quality_text) <= 100:
        raise BadBankFile(line, f"quality {quality_text[:20]!r} is not a whole number 0..100")
    if verdict not in VERDICTS:
        raise BadBankFile(line, f"verdict {verdict[:30]!r} is not violation or no_violation")
    try:
        seen = datetime.fromisoformat(first_seen)
    except ValueError:
        seen = None
    if seen is None or seen.tzinfo is None:
        raise BadBankFile(
            line,
            f"first_seen {first_seen[:40]!r} is not a date and time such as 2026-01-31T12:00:00Z",
        )
    return BankEntry(
        pdq=pdq,
        quality=int(quality_text),
        violation=VERDICTS[verdict],
        labels=tuple(label.strip() for label in labels.split(";") if label.strip()),
        first_seen=seen.timestamp(),
    )
