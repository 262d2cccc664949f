"""In-memory fakes of modbot's small ports, for unit tests of orchestration: the A2I client
(`HumanLoops`), the reviewer directory, the detector and the Slack notifier. Each does what
the real adapter promises (errors as our own exceptions) and records what it was asked."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.a2i import LoopEvent, LoopStatus
from bot.adapters.rekognition import HumanLoopRequest, S3Image
from bot.adapters.slack import SlackUnavailable
from bot.core.messages import SlackMessage
from bot.core.model import AlertRef, Detection

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


class FakeDetector(_Scripted):
    """The `Detector` port: no labels; a human loop opened when asked for one."""

    def __init__(self, *, opens_loops: bool = True) -> None:
        super().__init__()
        self.opens_loops = opens_loops
        self.calls: list[DetectCall] = []

    async def detect(
        self,
        image: bytes | S3Image,
        *,
        min_confidence: float,
        human_loop: HumanLoopRequest | None = None,
    ) -> Detection:
        self.calls.append(DetectCall(image, min_confidence, human_loop))
        self._maybe_fail("detect")
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
