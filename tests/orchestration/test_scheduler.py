"""The scheduler over the WorkQueue port (no HTTP stack, no database): lanes, retry-later,
lease expiry and reclaim, crash counting and the sweep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bot.core.errors import DetectionFailed, ScanFailed
from bot.core.model import Decision, ImageRef, Origin, ScanRequest, Trigger
from bot.core.retry import RetryPolicy
from bot.core.work import Lane, WorkItem
from bot.orchestration.lanes import Lanes
from bot.orchestration.scan import Outcome
from bot.orchestration.scheduler import Scheduler, SchedulerConfig
from tests.fakes.ports import FakeClock, FakeScanNotifier, FakeWorkQueue

DONE = Outcome("0" * 64, Decision.ALLOW, "enforce")


def _upload(key: str) -> ScanRequest:
    return ScanRequest(
        ImageRef(url=f"https://files.slack.com/{key}.png", file_id=f"F{key}", name=f"{key}.png"),
        Origin(Trigger.UPLOAD, "C1", user="U1", message_ts="1.1"),
        key,
    )


def _link(key: str) -> ScanRequest:
    return ScanRequest(
        ImageRef(url=f"https://x.example/{key}.png"), Origin(Trigger.LINK, "C1"), key
    )


@dataclass
class Runs:
    """The scan steps, scripted: links hang until `links_go`, `failures` raise first."""

    links_go: asyncio.Event = field(default_factory=asyncio.Event)
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    async def __call__(self, item: WorkItem) -> Outcome:
        self.ran.append(item.scan_id)
        if item.request.image.file_id is None:
            await self.links_go.wait()
        pending = self.failures.get(item.scan_id)
        if pending:
            raise pending.pop(0)
        return DONE


@dataclass
class Rig:
    queue: FakeWorkQueue
    runs: Runs
    notifier: FakeScanNotifier
    scheduler: Scheduler
    clock: FakeClock


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock()
    queue = FakeWorkQueue(clock=clock, lease_seconds=60)
    runs = Runs()
    notifier = FakeScanNotifier()
    scheduler = Scheduler(
        queue=queue,
        run=runs,
        notifier=notifier,
        lanes=Lanes(),
        config=SchedulerConfig(
            workers=1,
            link_workers=1,
            retry=RetryPolicy(limit=60.0, base=0.01, cap=0.02),
            note_interval=0.0,
            sweep_interval=3600.0,
        ),
        clock=clock,
    )
    yield Rig(queue, runs, notifier, scheduler, clock)
    await scheduler.stop(grace=0)


async def test_a_hanging_link_never_holds_up_an_upload(rig: Rig) -> None:
    await rig.scheduler.start()
    [link] = await rig.queue.put([_link("l")])
    rig.scheduler.put([link], Lane.LINK)
    [upload] = await rig.queue.put([_upload("u")])
    rig.scheduler.put([upload], Lane.FILE)
    await rig.queue.settled(upload)
    assert rig.queue.rows[link].status == "pending"  # still on its own worker
    rig.runs.links_go.set()
    await rig.queue.settled(link)


async def test_a_link_of_unknown_lane_is_sent_on_to_the_link_workers(rig: Rig) -> None:
    await rig.scheduler.start()
    [link] = await rig.queue.put([_link("l")])
    rig.scheduler.put([link], None)  # mixed intake: the file worker sorts it
    [upload] = await rig.queue.put([_upload("u")])
    rig.scheduler.put([upload], None)
    await rig.queue.settled(upload)
    rig.runs.links_go.set()
    await rig.queue.settled(link)
    assert rig.queue.rows[link].running == 0


async def test_a_transient_failure_is_retried_later_and_then_decided(rig: Rig) -> None:
    await rig.scheduler.start()
    [scan] = await rig.queue.put([_upload("u")])
    rig.runs.failures[scan] = [DetectionFailed("ServiceUnavailable", "down", transient=True)]
    rig.scheduler.put([scan], Lane.FILE)
    await rig.queue.settled(scan)
    row = rig.queue.rows[scan]
    assert (row.status, row.item.failures, row.item.first_failure_at) == ("done", 1, rig.clock.now)
    assert rig.queue.claims == [scan, scan]


async def test_a_permanent_failure_is_reported_in_a_note_once(rig: Rig) -> None:
    await rig.scheduler.start()
    [scan] = await rig.queue.put([_upload("u")])
    rig.runs.failures[scan] = [ScanFailed("access denied")]
    rig.scheduler.put([scan], Lane.FILE)
    await rig.queue.settled(scan)
    assert rig.queue.rows[scan].outcome == {"error": "access denied"}
    [note] = rig.notifier.notes
    assert "access denied" in note.text


async def test_a_live_lease_is_left_alone_and_an_expired_one_is_reclaimed(rig: Rig) -> None:
    await rig.scheduler.start()
    [scan] = await rig.queue.put([_upload("u")])
    rig.queue.leased(scan, "other", until=rig.clock.now + 60)  # another replica is on it
    await rig.scheduler.sweep_once()
    assert rig.queue.claims == []
    rig.clock.now += 61  # it died holding the lease
    await rig.scheduler.sweep_once()
    await rig.queue.settled(scan)
    assert rig.queue.claims == [scan]
    assert rig.queue.rows[scan].status == "done"


async def test_a_scan_whose_starts_never_ended_three_times_is_reported_not_run(rig: Rig) -> None:
    [scan, other] = await rig.queue.put([_upload("crasher"), _upload("fine")])
    for _ in range(3):
        rig.queue.leased(scan, "earlier-life", until=rig.clock.now - 1)
    rig.queue.leased(other, "earlier-life", until=rig.clock.now - 1)
    await rig.scheduler.start()
    await rig.queue.settled(scan, other)
    assert rig.runs.ran == [other]  # the suspect that crashed once is run again, alone
    assert rig.queue.rows[scan].outcome == {"error": "modbot stopped 3 times while scanning it"}
    [note] = rig.notifier.notes
    assert "modbot stopped 3 times while scanning it" in note.text


async def test_the_sweep_takes_up_a_pending_scan_nothing_works_on(rig: Rig) -> None:
    await rig.scheduler.start()
    [scan] = await rig.queue.put([_upload("lost")])  # recorded, never scheduled
    await rig.scheduler.sweep_once()
    await rig.queue.settled(scan)
    assert rig.queue.rows[scan].status == "done"


async def test_a_retry_clock_still_running_at_start_is_waited_for(rig: Rig) -> None:
    [scan] = await rig.queue.put([_upload("later")])
    await rig.queue.retry_later(scan, delay=0.05, bug=False)
    await rig.scheduler.start()
    assert rig.queue.claims == []  # held, waiting for its retry clock
    await rig.queue.settled(scan)
    assert rig.queue.claims == [scan]
