"""A unit of scan work as the work queue hands it out (pure values and rules)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot.core.model import ScanRequest


class Lane(Enum):
    """Which workers take an item. Links never hold up uploads; scans that were running when
    the process died last time run one at a time, so one that crashes the process does not
    take the crash counts of others up with it."""

    FILE = "file"
    LINK = "link"
    SUSPECT = "suspect"


@dataclass(frozen=True)
class WorkItem:
    """A pending scan with how it has fared so far, and who holds it until when."""

    scan_id: str
    request: ScanRequest
    attempts: int  # times started
    crashes: int = 0  # earlier starts that never ended (the process died during the work)
    failures: int = 0  # transient failures so far
    first_failure_at: float | None = None  # the retry limit counts from here
    bugs: int = 0  # unexpected exceptions so far
    holder: str | None = None  # the worker process holding the lease, if any
    lease_until: float | None = None  # an expired lease is claimable again
    not_before: float | None = None  # the retry clock: not to be run again before this
    accepted_at: float | None = None  # when intake recorded it (the event-to-alert clock)

    @property
    def lane(self) -> Lane:
        if self.crashes > 0:
            return Lane.SUSPECT
        return Lane.LINK if is_link(self.request) else Lane.FILE


def is_link(request: ScanRequest) -> bool:
    """A link (posted in chat or given to /moderate) rather than a file hosted by Slack."""
    return request.image.file_id is None
