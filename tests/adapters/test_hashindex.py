"""The multi-index hash index: exactly the hashes a full scan would find, also after adds,
merges and withdrawals."""

from __future__ import annotations

import numpy as np
import pytest

from bot.adapters.hashindex import HexHashIndex


def _hexes(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 256, (n, 32), dtype=np.uint8).tobytes().hex()
    return [raw[i * 64 : (i + 1) * 64] for i in range(n)]


def _flipped(value: str, bits: int, rng: np.random.Generator) -> str:
    number = int(value, 16)
    for bit in rng.choice(256, bits, replace=False):
        number ^= 1 << int(bit)
    return f"{number:064x}"


def _brute(bank: list[str], queries: list[str], radius: int) -> dict[int, int]:
    found: dict[int, int] = {}
    for entry, code in enumerate(bank):
        bits = min((int(code, 16) ^ int(q, 16)).bit_count() for q in queries)
        if bits <= radius:
            found[entry] = bits
    return found


@pytest.mark.parametrize("radius", [0, 15, 31, 40, 63])
def test_finds_exactly_what_a_full_scan_finds(radius: int) -> None:
    """Copies 0..radius+8 bits away: every one within the radius found, none beyond."""
    rng = np.random.default_rng(radius)
    bank = _hexes(rng, 600)
    index = HexHashIndex(merge_at=200)
    batch = index.batch()
    batch.add_hex(list(range(500)), bank[:500])
    batch.commit()
    index.add_hex(list(range(500, 600)), bank[500:])  # a tail below merge_at
    for trial in range(25):
        target = bank[int(rng.integers(len(bank)))]
        queries = [_flipped(target, trial % (radius + 9), rng), *_hexes(rng, 7)]
        assert dict(index.within_hex(queries, radius)) == _brute(bank, queries, radius)


def test_results_are_nearest_first_with_the_newest_first_on_ties() -> None:
    """The bank takes the first violation it meets: the nearest, then the most recent."""
    index = HexHashIndex()
    index.add_hex([1, 2, 3], ["0" * 64, "0" * 63 + "1", "0" * 64])
    assert index.within_hex(["0" * 64], 31) == [(3, 0), (1, 0), (2, 1)]


def test_withdrawn_ids_are_not_found_and_merges_keep_them_out() -> None:
    """A withdrawal masks every hash of that id, across a later merge."""
    index = HexHashIndex(merge_at=3)
    index.add_hex([1, 1], ["a" * 64, "b" * 64])  # one row, framed and unframed hashes
    index.withdraw([1])
    index.add_hex([2, 3], ["c" * 64, "d" * 64])  # merges
    assert index.within_hex(["a" * 64, "b" * 64], 31) == []
    assert index.within_hex(["c" * 64], 0) == [(2, 0)]


def test_an_empty_index_answers_nothing() -> None:
    assert HexHashIndex().within_hex(["a" * 64], 31) == []
