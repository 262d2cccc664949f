"""PDQ values, the circuit breaker and the bank CSV: plain tables, no I/O."""

from __future__ import annotations

import pytest

from bot.core import bank_csv
from bot.core.breaker import CircuitBreaker
from bot.core.pdq import BankEntry, ImageHashes, distance, is_pdq_hex


def test_distance_counts_differing_bits() -> None:
    """XOR popcount over the 256 bits."""
    assert distance("0" * 64, "0" * 64) == 0
    assert distance("0" * 64, "f" * 64) == 256
    assert distance("0" * 63 + "3", "0" * 64) == 2


@pytest.mark.parametrize(
    ("value", "ok"),
    [("a" * 64, True), ("A" * 64, False), ("a" * 63, False), ("g" * 64, False), ("", False)],
)
def test_hex_form_is_64_lowercase_digits(value: str, ok: bool) -> None:
    """HMA refuses other spellings, so the bot never sends them."""
    assert is_pdq_hex(value) is ok


def test_quality_gate_and_queries() -> None:
    """Below 50 an image is never matched; queries cover framed and unframed orientations."""
    hashes = ImageHashes("a" * 64, 49, ("a" * 64,) * 8, ("b" * 64,) * 8)
    assert not hashes.matchable
    assert len(hashes.queries) == 16
    assert ImageHashes("a" * 64, 50, ()).matchable


def test_breaker_opens_after_failures_and_tries_once_after_the_cooldown() -> None:
    """3 failures open it; during the cooldown every call is skipped; then one trial."""
    breaker = CircuitBreaker(threshold=3, cooldown=30)
    for now in (0.0, 1.0, 2.0):
        assert breaker.allow(now)
        breaker.failed(now)
    assert breaker.open
    assert not breaker.allow(10.0)
    assert breaker.allow(33.0)  # the trial
    assert not breaker.allow(33.1)  # only one at a time
    breaker.failed(33.2)
    assert not breaker.allow(40.0)
    assert breaker.allow(64.0)
    breaker.succeeded()
    assert not breaker.open
    assert breaker.allow(64.1)


def test_bank_csv_rows_parse_back() -> None:
    """What export writes, import reads: labels, verdicts and dates included."""
    entries = [
        BankEntry("a" * 64, 100, True, ("Weapons", "Drugs"), 1_767_225_600.0),
        BankEntry("b" * 64, 55, False, (), 1_767_225_601.0),
    ]
    lines = [",".join(row) + "\n" for row in bank_csv.rows(entries)]
    assert lines[0] == "pdq,quality,verdict,labels,first_seen\n"
    assert bank_csv.parse(lines) == entries


def test_bank_csv_takes_uppercase_hex_offsets_and_blank_lines() -> None:
    """Hex in either case (stored lowercase); any explicit time zone; a trailing blank line."""
    lines = [
        "pdq,quality,verdict,labels,first_seen\n",
        "A" * 64 + ",70,violation, Weapons ; ,2026-01-01T02:00:00+02:00\n",
        "\n",
    ]
    [entry] = bank_csv.parse(lines)
    assert entry.pdq == "a" * 64
    assert entry.labels == ("Weapons",)
    assert entry.first_seen == 1_767_225_600.0


def test_bank_csv_names_the_line_of_a_broken_quote() -> None:
    """CSV-level damage is named like a bad value."""
    lines = ["pdq,quality,verdict,labels,first_seen\n", '"' + "a" * 64 + '"x,1,violation,,\n']
    with pytest.raises(bank_csv.BadBankFile) as raised:
        bank_csv.parse(lines)
    assert raised.value.line == 2
