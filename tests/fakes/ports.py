"""Fakes of the ports, defined once and shared by the unit tests.

Scan side (issue 9): the work queue, the scan records, a detector, Slack files, a fetcher, the
Slack notifier and the alert watch. Each fake is its own class, named for the port it fakes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.adapters.fetch import Fetched
from bot.adapters.slack import SlackFile
from bot.core.messages import SlackMessage
from bot.core.model import AlertRef, Decision, Detection, ScanRequest
from bot.core.work import WorkItem


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class _Row:
    item: WorkItem
    running: int = 0  # starts with no recorded end
    status: str = "pending"
    outcome: dict[str, Any] = field(default_factory=dict)


class FakeWorkQueue:
    """The WorkQueue port in memory, with leases, crash counts and the retry clock."""

    def __init__(
        self, *, holder: str = "me", lease_seconds: float = 600.0, clock: FakeClock | None = None
    ) -> None:
        self.holder = holder
        self.lease_seconds = lease_seconds
        self.clock = clock or FakeClock()
        self.rows: dict[str, _Row] = {}
        self.claims: list[str] = []
        self.changed = asyncio.Event()  # set on every finish
        self._ids = itertools.count(1)

    async def open(self) -> None:
        return None

    async def put(
        self, requests: Iterable[ScanRequest], *, event_id: str | None = None
    ) -> list[str]:
        ids = []
        for request in requests:
            scan_id = f"s{next(self._ids)}"
            self.rows[scan_id] = _Row(WorkItem(scan_id, request, 0))
            ids.append(scan_id)
        return ids

    def leased(self, scan_id: str, holder: str, until: float) -> None:
        """Someone else claimed it (and may have died holding it)."""
        row = self.rows[scan_id]
        row.running += 1
        row.item = replace(
            row.item, holder=holder, lease_until=until, attempts=row.item.attempts + 1
        )

    async def waiting(self) -> list[WorkItem]:
        now = self.clock()
        return [
            replace(row.item, crashes=row.running)
            for row in self.rows.values()
            if row.status == "pending" and self._free(row.item, now)
        ]

    async def claim(self, scan_id: str) -> WorkItem | None:
        row = self.rows.get(scan_id)
        now = self.clock()
        if row is None or row.status != "pending" or not self._free(row.item, now):
            return None
        crashes = row.running
        row.running += 1
        row.item = replace(
            row.item,
            attempts=row.item.attempts + 1,
            holder=self.holder,
            lease_until=now + self.lease_seconds,
            not_before=None,
        )
        self.claims.append(scan_id)
        return replace(row.item, crashes=crashes)

    async def release(self, scan_id: str, *, keep_lease: bool = False) -> None:
        row = self.rows[scan_id]
        row.running = 0
        if not keep_lease:
            row.item = replace(row.item, holder=None, lease_until=None)

    async def retry_later(self, scan_id: str, *, delay: float, bug: bool) -> WorkItem | None:
        row = self.rows[scan_id]
        row.running = 0
        item = row.item
        row.item = replace(
            item,
            failures=item.failures + 1,
            bugs=item.bugs + int(bug),
            first_failure_at=item.first_failure_at or self.clock(),
            holder=None,
            lease_until=None,
            not_before=self.clock() + delay,
        )
        return row.item

    async def finish(self, scan_id: str, **outcome: Any) -> None:
        row = self.rows[scan_id]
        row.status = (
            "failed" if outcome.get("error") else "skipped" if outcome.get("skipped") else "done"
        )
        row.outcome = outcome
        row.running = 0
        self.changed.set()

    async def settled(self, *scan_ids: str, within: float = 5.0) -> None:
        """Wait until every one of these scans has its outcome."""
        async with asyncio.timeout(within):
            while any(self.rows[s].status == "pending" for s in scan_ids):
                self.changed.clear()
                await self.changed.wait()

    def _free(self, item: WorkItem, now: float) -> bool:
        return (
            item.holder in (None, self.holder)
            or item.lease_until is None
            or item.lease_until <= now
        )


class FakeScanRecords:
    """The ScanRecords port (detections and alerts) in memory; `log` keeps the order of
    alert writes, shared with FakeScanNotifier's."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.detections: dict[tuple[str, str], Detection] = {}
        self.alerts: dict[str, AlertRef | None] = {}
        self.intents: dict[str, float] = {}
        self.earliest: dict[str, AlertRef] = {}  # sha256 -> an alert posted by an earlier scan
        self.log = log if log is not None else []
        self.lookups = 0
        self._looked_up = asyncio.Event()

    async def detection(self, sha256: str, detector: str) -> Detection | None:
        self.lookups += 1
        self._looked_up.set()
        return self.detections.get((sha256, detector))

    async def looked_up(self, count: int, within: float = 5.0) -> None:
        """Wait until `count` detection look-ups have been made."""
        async with asyncio.timeout(within):
            while self.lookups < count:
                self._looked_up.clear()
                await self._looked_up.wait()

    async def save_detection(self, sha256: str, detector: str, detection: Detection) -> None:
        self.detections[(sha256, detector)] = detection

    async def earliest_alert(self, sha256: str, *, excluding: str) -> AlertRef | None:
        return self.earliest.get(sha256)

    async def alert_for(self, scan_id: str) -> AlertRef | None:
        return self.alerts.get(scan_id)

    async def begin_alert(
        self, scan_id: str, sha256: str, channel: str, decision: Decision, message: dict[str, Any]
    ) -> float | None:
        self.log.append(f"intent {scan_id}")
        if scan_id in self.intents:
            return self.intents[scan_id]
        self.intents[scan_id] = 1.0
        return None

    async def complete_alert(self, scan_id: str, alert: AlertRef) -> None:
        self.log.append(f"saved {scan_id}")
        self.alerts[scan_id] = alert


class FakeDetector:
    """The Detector port: returns `result`; with `gate`, each call waits for it first."""

    def __init__(self, result: Detection, *, name: str = "fake", gate: asyncio.Event | None = None):
        self.name = name
        self.result = result
        self.gate = gate
        self.calls: list[tuple[bytes, float]] = []
        self.called = asyncio.Event()

    async def detect(self, image: bytes, min_confidence: float) -> Detection:
        self.calls.append((image, min_confidence))
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        return replace(self.result, min_confidence=min_confidence)


class FakeFetcher:
    """Serves bytes by URL."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.fetched: list[str] = []

    async def fetch(
        self, url: str, *, token: str | None = None, deadline: float | None = None
    ) -> Fetched:
        self.fetched.append(url)
        return Fetched(self.files[url], "image/png", url)


class FakeScanNotifier:
    """The Notifier port as the scan steps and the scheduler use it (also the SlackFiles
    port); every post is logged in order."""

    alert_channel = "CALERTS"

    def __init__(self, log: list[str] | None = None, files: dict[str, SlackFile] | None = None):
        self.log = log if log is not None else []
        self.files = files or {}
        self.posted: list[tuple[str, SlackMessage]] = []
        self.notes: list[SlackMessage] = []
        self.responses: list[tuple[str, SlackMessage]] = []
        self.in_history: dict[str, AlertRef] = {}  # alerts Slack has, by scan id
        self.noted = asyncio.Event()
        self._ts = itertools.count(1)

    async def post_alert(self, message: SlackMessage, *, scan_id: str) -> AlertRef:
        self.log.append(f"post {scan_id}")
        self.posted.append((scan_id, message))
        alert = AlertRef(self.alert_channel, f"{next(self._ts)}.0")
        self.in_history[scan_id] = alert
        return alert

    async def find_alert(self, scan_id: str, *, since: float | None = None) -> AlertRef | None:
        self.log.append(f"find {scan_id}")
        return self.in_history.get(scan_id)

    async def reply(
        self, alert: AlertRef, message: SlackMessage, *, scan_id: str | None = None
    ) -> None:
        return None

    async def find_reply(self, alert: AlertRef, scan_id: str) -> bool:
        return False

    async def update(self, alert: AlertRef, message: SlackMessage) -> None:
        return None

    async def note(self, message: SlackMessage) -> None:
        self.notes.append(message)
        self.noted.set()

    async def respond(self, response_url: str, message: SlackMessage) -> None:
        self.responses.append((response_url, message))

    async def permalink(self, channel: str, ts: str) -> str | None:
        return f"https://slack.example/{channel}/p{ts.replace('.', '')}"

    async def file_info(self, file_id: str) -> SlackFile:
        return self.files[file_id]


class FakeAlertWatch:
    def __init__(self) -> None:
        self.due: set[str] = set()

    def alert_due(self, scan_id: str) -> None:
        self.due.add(scan_id)

    def alert_settled(self, scan_id: str) -> None:
        self.due.discard(scan_id)
