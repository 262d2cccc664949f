"""The claims port: work other than scans (a verdict to report, a reminder, an A2I loop's end,
a detector call for some bytes) taken by one replica at a time. The database implementation is
bot/adapters/database/leases.py (leases that expire, so a dead replica's claims pass on)."""

from __future__ import annotations

from typing import Protocol


class Claims(Protocol):
    async def take(self, name: str) -> bool:
        """Claim the work called `name`; False while another replica holds it."""

    async def release(self, name: str) -> None:
        """Done with it (or giving it back): another replica may take it now."""


class Unshared:
    """One process and no one else: every claim is granted (in-process guards do the rest)."""

    async def take(self, name: str) -> bool:
        del name
        return True

    async def release(self, name: str) -> None:
        del name
