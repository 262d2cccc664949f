"""In-memory fakes of modbot's small ports, for unit tests of orchestration: the A2I client
(`HumanLoops`), the reviewer directory, the Rekognition call A2I makes, the Slack notifier, and
the scan side's work queue, records, detector, fetcher and Slack files. Each does what the real
adapter promises (errors as our own exceptions) and records what it was asked."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.adapters.a2i import LoopEvent, LoopStatus
from bot.adapters.fetch import Fetched
from bot.adapters.rekognition import HumanLoopRequest, S3Image
from bot.adapters.slack import SlackFile, SlackUnavailable
from bot.core.messages import SlackMessage
from bot.core.model import AlertRef, Decision, Detection, History, ScanRequest
from bot.core.work import WorkItem

FLOW_ARN = "arn:aws:sagemaker:us-east-1:111122223333:flow-definition/image-moderation-fd"


def loop_arn(name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:111122223333:human-loop/{name}"


class _Scripted:
    """Failures queued per method: the next call to `method` raises instead of answering."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[BaseException]] = defaultdict(deque)

    def fail_next(self, method: str, error: BaseException, count: int = 1) -> None:
        self._failures[method].extend([error] * count)

    def _maybe_fail(self, method: str) -> None:
        if self._failures[method]:
            raise self._failures[method].popleft()


class QueueDrained(Exception):
    """Raised by FakeHumanLoops.receive_events once no event is left: ends a consume loop."""


class FakeHumanLoops(_Scripted):
    """The `HumanLoops` port: loops by name, output.json by URI, an event queue whose events
    stay until deleted (so a kept event is delivered again)."""

    def __init__(self, bucket: str = "modbot-images") -> None:
        super().__init__()
        self.bucket = bucket
        self.loops: dict[str, LoopStatus] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.images: dict[str, tuple[bytes, str]] = {}
        self.queue: deque[LoopEvent] = deque()
        self.deleted: list[str] = []
        self.described: list[str] = []

    def finish(self, name: str, output: dict[str, Any], *, flow: str = FLOW_ARN) -> str:
        """The workers answered: the loop is Completed, its output where A2I writes it."""
        uri = (
            f"s3://a2i-out/reviews/{flow.rsplit('/', 1)[-1]}/2025/03/04/10/12/31/{name}/output.json"
        )
        self.outputs[uri] = output
        self.loops[name] = LoopStatus(name, "Completed", flow, output_uri=uri)
        return uri

    def end(
        self, name: str, status: str, code: str | None = None, reason: str | None = None
    ) -> None:
        self.loops[name] = LoopStatus(
            name, status, FLOW_ARN, failure_code=code, failure_reason=reason
        )

    def send_event(self, loop_name: str | None, body: str = "{}") -> str:
        handle = f"handle-{len(self.queue) + len(self.deleted)}"
        self.queue.append(LoopEvent(handle, loop_name, body))
        return handle

    async def put_image(self, key: str, data: bytes, fmt: str) -> S3Image:
        self._maybe_fail("put_image")
        self.images[key] = (data, fmt)
        return S3Image(self.bucket, key)

    async def describe(self, name: str) -> LoopStatus:
        self._maybe_fail("describe")
        self.described.append(name)
        return self.loops.get(name) or LoopStatus(name, "InProgress", FLOW_ARN)

    async def read_output(self, uri: str) -> dict[str, Any]:
        self._maybe_fail("read_output")
        return self.outputs[uri]

    async def receive_events(self) -> list[LoopEvent]:
        self._maybe_fail("receive_events")
        if not self.queue:
            raise QueueDrained
        return list(self.queue)

    async def delete_event(self, handle: str) -> None:
        self._maybe_fail("delete_event")
        self.queue = deque(e for e in self.queue if e.handle != handle)
        self.deleted.append(handle)


class FakeDirectory(_Scripted):
    """The `ReviewerDirectory` port: user groups and their members; counts look-ups."""

    def __init__(self, groups: dict[str, set[str]] | None = None) -> None:
        super().__init__()
        self.groups = {g: set(m) for g, m in (groups or {}).items()}
        self.lookups: list[str] = []

    async def group_members(self, group: str) -> frozenset[str]:
        self.lookups.append(group)
        self._maybe_fail("group_members")
        if group not in self.groups:
            raise SlackUnavailable("Slack usergroups.users.list failed: no_such_subteam")
        return frozenset(self.groups[group])


@dataclass
class DetectCall:
    image: bytes | S3Image
    min_confidence: float
    human_loop: HumanLoopRequest | None


class FakeRekognitionCall(_Scripted):
    """The Rekognition call A2I's triggers make (`RekognitionCall`): no labels; a human loop
    opened when asked for one."""

    def __init__(self, *, opens_loops: bool = True) -> None:
        super().__init__()
        self.opens_loops = opens_loops
        self.calls: list[DetectCall] = []

    async def call(
        self,
        image: bytes | S3Image,
        *,
        min_confidence: float,
        human_loop: HumanLoopRequest | None = None,
    ) -> Detection:
        self.calls.append(DetectCall(image, min_confidence, human_loop))
        self._maybe_fail("call")
        ref = loop_arn(human_loop.name) if human_loop and self.opens_loops else None
        return Detection(
            labels=(), model_version="7.0", min_confidence=min_confidence, review_ref=ref
        )


@dataclass
class Posted:
    alert: AlertRef
    message: SlackMessage
    scan_id: str | None = None


@dataclass
class FakeNotifier(_Scripted):
    """The `Notifier` port: what was said where. `lose_next_answer(method)`: the call reaches
    Slack but its answer is lost (as with a crash right after it)."""

    alert_channel: str = "CALERTS"
    replies: list[Posted] = field(default_factory=list)
    updates: list[Posted] = field(default_factory=list)
    alerts: list[Posted] = field(default_factory=list)
    notes: list[SlackMessage] = field(default_factory=list)
    _lost: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        _Scripted.__init__(self)

    def lose_next_answer(self, method: str) -> None:
        self._lost[method] += 1

    def _answer(self, method: str) -> None:
        if self._lost[method]:
            self._lost[method] -= 1
            raise SlackUnavailable(f"Slack {method} failed: connection lost", transient=True)

    async def post_alert(self, message: SlackMessage, *, scan_id: str) -> AlertRef:
        self._maybe_fail("post_alert")
        alert = AlertRef(self.alert_channel, f"1.{len(self.alerts) + 1:06d}")
        self.alerts.append(Posted(alert, message, scan_id))
        return alert

    async def find_alert(self, scan_id: str, *, since: float | None = None) -> AlertRef | None:
        return next((p.alert for p in self.alerts if p.scan_id == scan_id), None)

    async def reply(
        self, alert: AlertRef, message: SlackMessage, *, scan_id: str | None = None
    ) -> None:
        self._maybe_fail("reply")
        self.replies.append(Posted(alert, message, scan_id))
        self._answer("reply")

    async def find_reply(self, alert: AlertRef, scan_id: str) -> bool:
        self._maybe_fail("find_reply")
        return any(p.alert == alert and p.scan_id == scan_id for p in self.replies)

    async def update(self, alert: AlertRef, message: SlackMessage) -> None:
        self._maybe_fail("update")
        self.updates.append(Posted(alert, message))
        self._answer("update")

    async def note(self, message: SlackMessage) -> None:
        self._maybe_fail("note")
        self.notes.append(message)

    async def respond(self, response_url: str, message: SlackMessage) -> None:
        self._maybe_fail("respond")

    async def permalink(self, channel: str, ts: str) -> str | None:
        return None

    async def file_info(self, file_id: str) -> dict[str, Any]:
        raise SlackUnavailable("Slack files.info failed: file_not_found")

    def replies_to(self, alert: AlertRef) -> list[str]:
        return [p.message.text for p in self.replies if p.alert == alert]


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

    shared = False  # one process works it

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

    async def alert_for(self, scan_id: str) -> AlertRef | None:
        return self.alerts.get(scan_id)

    async def begin_alert(
        self,
        scan_id: str,
        sha256: str,
        channel: str,
        decision: Decision,
        message: dict[str, Any],
        *,
        causes: Sequence[str] = (),
    ) -> float | None:
        self.log.append(f"intent {scan_id}")
        if scan_id in self.intents:
            return self.intents[scan_id]
        self.intents[scan_id] = 1.0
        return None

    async def complete_alert(self, scan_id: str, alert: AlertRef) -> None:
        self.log.append(f"saved {scan_id}")
        self.alerts[scan_id] = alert


class FakeLedger:
    """The review ledger's `history`, for scan-step tests: only the earlier alerts that a
    FakeScanRecords was given (`records.earliest`)."""

    def __init__(self, records: FakeScanRecords) -> None:
        self._records = records

    async def history(self, sha256: str, scan_id: str) -> History:
        return History(earlier_alert=self._records.earliest.get(sha256))


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
