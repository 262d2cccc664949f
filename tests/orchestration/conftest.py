"""Orchestration's unit tests run over the real stores on SQLite (a file per test, no server):
the store contract is proven on both databases elsewhere (tests/test_store.py,
tests/test_review_store.py); what is tested here is the logic above them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.database.engine import async_url
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.core.model import AlertRef, Decision, ImageRef, Origin, ScanRequest, Trigger


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store.from_url(async_url(f"sqlite:///{tmp_path}/state.db"))
    await store.upgrade()
    yield store
    await store.close()


@pytest.fixture
def reviews(store: Store) -> ReviewStore:
    return ReviewStore(store)


async def alerted_scan(store: Store, key: str, sha256: str, *, ts: str = "1.000100") -> str:
    """A scan of `sha256` whose alert is in the alerts channel at `ts`; its scan id."""
    request = ScanRequest(
        ImageRef(url=f"https://x.example/{key}.png"), Origin(Trigger.LINK, "C1"), key
    )
    (scan_id,) = await store.accept([request])
    await store.begin_alert(
        scan_id, sha256, "CALERTS", Decision.REVIEW, {"text": "alert"}, causes=("Violence",)
    )
    await store.complete_alert(scan_id, AlertRef("CALERTS", ts))
    return scan_id
