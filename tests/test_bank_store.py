"""The hash bank in the database, and the in-memory bank every replica keeps from it.

A contract: every test runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.adapters.database.bank import BankStore
from bot.adapters.database.engine import async_url
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.core.model import Decision, ImageRef, Origin, ScanRequest, Trigger
from bot.core.pdq import BankEntry, ImageHashes
from bot.core.verdict import Verdict
from bot.orchestration.bank import HashBank

A = "0f" * 32
B = "f0" * 32


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store.from_url(async_url(database_url))
    await store.upgrade()
    yield store
    await store.close()


def _hashes(pdq: str, quality: int = 100, inner: str | None = None) -> ImageHashes:
    return ImageHashes(pdq, quality, (pdq,) * 8, (inner,) * 8 if inner else ())


async def _reviewed(store: Store, key: str, hashes: ImageHashes, verdict: Verdict) -> str:
    """A hashed scan whose review got `verdict`; its scan id."""
    request = ScanRequest(ImageRef(url=f"https://x.example/{key}.png"), Origin(Trigger.LINK), key)
    (scan_id,) = await store.accept([request])
    await store.finish(scan_id, sha256=key * 4, decision=Decision.REVIEW, mode="enforce")
    await BankStore(store).save_hashes(scan_id, hashes)
    reviews = ReviewStore(store)
    assert await reviews.open(scan_id, key * 4, "slack")
    assert await reviews.decide(scan_id, verdict, "U1")
    return scan_id


async def test_a_verdict_enters_the_bank_with_its_hash_and_labels(store: Store) -> None:
    """Decided in the review store: the row is there, matchable, with sha256 and scan."""
    scan_id = await _reviewed(store, "a", _hashes(A), Verdict(True, ("Violence",)))
    bank = HashBank(BankStore(store), distance=31)
    assert await bank.refresh() == 1
    found = await bank.lookup(_hashes(A))
    assert found.violation is not None
    assert found.violation.distance == 0
    assert found.violation.entry.labels == ("Violence",)
    assert found.violation.entry.scan_id == scan_id
    assert found.violation_sha256 == "a" * 4
    assert found.fine is None


async def test_a_near_violation_wins_over_a_nearer_no_violation(store: Store) -> None:
    """Both are reported: the violation decides, the fine one is only mentioned."""
    near = f"{int(A, 16) ^ 0b111:064x}"  # 3 bits from A
    await _reviewed(store, "a", _hashes(A), Verdict(False))
    await _reviewed(store, "b", _hashes(near), Verdict(True, ("Drugs",)))
    bank = HashBank(BankStore(store), distance=31)
    await bank.refresh()
    found = await bank.lookup(_hashes(A))
    assert found.violation is not None
    assert found.violation.distance == 3
    assert found.fine is not None
    assert found.fine.distance == 0


async def test_low_quality_hashes_are_kept_but_never_matched(store: Store) -> None:
    """Quality below 50 on either side: no match."""
    await _reviewed(store, "a", _hashes(A, quality=40), Verdict(True))
    await _reviewed(store, "b", _hashes(B), Verdict(True))
    bank = HashBank(BankStore(store), distance=31)
    assert await bank.refresh() == 1
    assert (await bank.lookup(_hashes(A))).violation is None
    assert (await bank.lookup(_hashes(B, quality=49))).violation is None
    assert (await bank.lookup(_hashes(B))).violation is not None


async def test_the_picture_inside_borders_is_matched_too(store: Store) -> None:
    """A framed original is found by a copy without the frame, and the other way round."""
    await _reviewed(store, "a", _hashes(A, inner=B), Verdict(True))
    bank = HashBank(BankStore(store), distance=31)
    await bank.refresh()
    assert (await bank.lookup(_hashes(B))).violation is not None


async def test_replicas_see_new_verdicts_and_withdrawals_at_their_next_refresh(
    store: Store, database_url: str
) -> None:
    """Two banks over one database: a verdict and a withdrawal made through one are seen by
    the other after one refresh (the poll by id)."""
    other_store = Store.from_url(async_url(database_url))
    try:
        here = HashBank(BankStore(store), distance=31)
        there = HashBank(BankStore(other_store), distance=31)
        await asyncio.gather(here.refresh(), there.refresh())
        await _reviewed(store, "a", _hashes(A), Verdict(True))
        assert (await there.lookup(_hashes(A))).violation is None  # not polled yet
        assert await there.refresh() == 1
        assert (await there.lookup(_hashes(A))).violation is not None

        assert await here.forget("a" * 4) == 1  # an overturned appeal
        assert (await here.lookup(_hashes(A))).violation is None
        await there.refresh()
        assert (await there.lookup(_hashes(A))).violation is None
    finally:
        await other_store.close()


async def test_withdrawing_by_scan_and_no_violation_rows_stay(store: Store) -> None:
    """forget_scan names the image by its scan; a no_violation verdict is never withdrawn."""
    scan_id = await _reviewed(store, "a", _hashes(A), Verdict(True))
    await _reviewed(store, "b", _hashes(B), Verdict(False))
    bank = HashBank(BankStore(store), distance=31)
    await bank.refresh()
    assert await bank.forget_scan(scan_id) == 1
    assert await bank.forget("b" * 4) == 0
    assert (await bank.lookup(_hashes(B))).fine is not None
    audit = [row["action"] for row in await store.audit_log()]
    assert "bank_withdrawn" in audit


async def test_import_export_and_pushing_once(store: Store) -> None:
    """Imported rows export back; a confirmed violation's push is claimed by one replica only;
    imported rows are never pushed (they are somebody else's)."""
    bank_store = BankStore(store)
    entries = [BankEntry(A, 90, True, ("Weapons",), 1_700_000_000.0)]
    assert await bank_store.import_entries(entries) == 1
    assert await bank_store.import_entries(entries) == 0
    assert [e async for e in bank_store.export()] == entries
    assert await bank_store.unpushed() == []

    await _reviewed(store, "b", _hashes(B), Verdict(True))
    [(entry_id, pdq)] = await bank_store.unpushed()
    assert pdq == B
    claims = await asyncio.gather(*(bank_store.claim_push(entry_id) for _ in range(3)))
    assert sorted(claims) == [False, False, True]
    assert await bank_store.unpushed() == []
    await bank_store.release_push(entry_id)
    assert await bank_store.unpushed() == [(entry_id, B)]
