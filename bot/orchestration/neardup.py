"""Near-duplicates (PRODUCT §11): before detection, is this image one humans already judged, or
one a partner's hash bank (HMA) knows?

Every image is hashed (PDQ) and its hash kept with the scan, so its verdict can enter the bank.
A near-duplicate of a confirmed violation then takes the same path as a re-post of the same
bytes (§5, bot/core/verdict.py apply_history): no detection, no new review, the alert gives the
distance and links the earlier alert. A near-duplicate of a confirmed "no violation" is only
mentioned. A match in a named HMA bank flags the image without detection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from bot.core.model import AlertRef, History, PriorVerdict
from bot.core.pdq import BankMatch, ImageHashes, PartnerMatch
from bot.orchestration.bank import BankLookup, HashBank

log = logging.getLogger(__name__)

Hasher = Callable[[bytes], Awaitable[ImageHashes | None]]


class HashRecords(Protocol):
    """Where a scan's hash is kept, and the alerts earlier verdicts were given on."""

    async def save_hashes(self, scan_id: str, hashes: ImageHashes) -> None: ...


class Alerts(Protocol):
    async def alert_for(self, scan_id: str) -> AlertRef | None: ...


class PartnerBanks(Protocol):
    """A partner system's hash banks (HMA). Never raises for the partner's failures."""

    async def lookup(self, pdq: str) -> PartnerMatch | None: ...

    async def push(self, pdq: str) -> bool: ...


@dataclass(frozen=True)
class Recognised:
    """What the hashes said about one image before detection."""

    hashes: ImageHashes | None = None
    near_violation: PriorVerdict | None = None  # with its distance
    near_violation_sha256: str | None = None  # whose stored detection the alert may show
    near_fine: PriorVerdict | None = None
    partner: PartnerMatch | None = None

    @property
    def skips_detection(self) -> bool:
        return self.near_violation is not None or self.partner is not None

    def applied_to(self, history: History) -> History:
        """The history of the same bytes, with the near-duplicates added: a verdict on these
        very bytes, if there is one, decides (it is exact)."""
        if history.verdict is not None:
            return history
        if self.near_violation is not None:
            return replace(history, verdict=self.near_violation)
        if self.near_fine is not None:
            return replace(history, similar=self.near_fine)
        return history


class NearDuplicates:
    def __init__(
        self,
        *,
        hasher: Hasher,
        records: HashRecords,
        alerts: Alerts,
        bank: HashBank | None,
        partner: PartnerBanks | None = None,
    ) -> None:
        self._hasher = hasher
        self._records = records
        self._alerts = alerts
        self._bank = bank
        self._partner = partner

    @property
    def bank(self) -> HashBank | None:
        """The bank, for withdrawals (an overturned appeal calls bank.forget(sha256))."""
        return self._bank

    @property
    def partner(self) -> PartnerBanks | None:
        return self._partner

    async def recognise(self, scan_id: str, data: bytes) -> Recognised:
        hashes = await self._hasher(data)
        if hashes is None:
            return Recognised()
        await self._records.save_hashes(scan_id, hashes)
        if not hashes.matchable:  # flat or tiny images: never matched, scanned normally
            return Recognised(hashes)
        found = await self._bank.lookup(hashes) if self._bank is not None else BankLookup()
        near_violation = await self._prior(found.violation)
        partner = None
        if near_violation is None and self._partner is not None:
            partner = await self._partner.lookup(hashes.pdq)
        return Recognised(
            hashes,
            near_violation=near_violation,
            near_violation_sha256=found.violation_sha256,
            near_fine=await self._prior(found.fine),
            partner=partner,
        )

    async def _prior(self, match: BankMatch | None) -> PriorVerdict | None:
        if match is None:
            return None
        entry = match.entry
        alert = await self._alerts.alert_for(entry.scan_id) if entry.scan_id else None
        return PriorVerdict(entry.violation, entry.labels, alert, distance=match.distance)


class PushSource(Protocol):
    """Violations decided here that a partner has not been given yet (the bank store)."""

    async def unpushed(self, limit: int = 50) -> Sequence[tuple[int, str]]: ...

    async def claim_push(self, entry_id: int) -> bool: ...

    async def release_push(self, entry_id: int) -> None: ...


async def keep_pushing(source: PushSource, partner: PartnerBanks, interval: float) -> None:
    """Give every confirmed violation's hash to the partner's push bank (MODBOT_HMA_PUSH_BANK),
    once across replicas; an unreachable partner is tried again at the next round."""
    while True:
        for entry_id, pdq in await source.unpushed():
            if not await source.claim_push(entry_id):
                continue  # another replica has it
            if not await partner.push(pdq):
                await source.release_push(entry_id)
                break  # the partner is unwell: wait for the next round
        await asyncio.sleep(interval)
