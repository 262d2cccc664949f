"""The human-review ports: a review backend as the pipeline sees it, and votes as the vote
buttons' handler sees them. Backends: Slack votes (`slack_review`), Amazon A2I (`a2i_review`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from bot.core.model import AlertRef, ScanReport


class ReviewBackend(Protocol):
    """Starts human reviews; verdicts come back in the alert's thread (VerdictReporter), and
    what reviews settled is read from the ReviewLedger, not from the backend."""

    buttons: bool  # the alert itself carries vote buttons
    name: str

    async def start(self, report: ScanReport, alert: AlertRef, image: bytes) -> None: ...


class VoteResult(StrEnum):
    REFUSED = "refused"  # not an allowed reviewer: nothing recorded
    CLOSED = "closed"  # a verdict already exists (or there is no such review)
    RECORDED = "recorded"  # counted; the quorum is not reached yet
    DECIDED = "decided"  # this vote produced the verdict


class Votes(Protocol):
    """A click on a review button: who voted which way on which scan's review."""

    async def vote(self, scan_id: str, user: str, violation: bool) -> VoteResult: ...
