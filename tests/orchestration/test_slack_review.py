"""Slack votes without Slack: the quorum, the allow-list with user groups and their cache,
refusals, and reviewers removed since they voted (fakes of the directory and the notifier)."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from bot.adapters.database.leases import DatabaseLeases
from bot.adapters.database.reviews import ReviewStore
from bot.adapters.database.scans import Store
from bot.adapters.database.schema import reviews as reviews_table
from bot.adapters.slack import SlackUnavailable
from bot.core.messages.common import SlackMessage
from bot.core.model import (
    AlertRef,
    Decision,
    Detection,
    ImageRef,
    Origin,
    Outcome,
    ScanReport,
    ScanRequest,
    Trigger,
)
from bot.core.retry import RetryPolicy
from bot.orchestration.review import VoteResult
from bot.orchestration.slack_review import Reviewers, SlackVotes
from bot.orchestration.verdicts import VerdictReporter
from tests.fakes.ports import FakeDirectory, FakeNotifier
from tests.orchestration.conftest import alerted_scan

SHA = "b" * 64
ALERT = AlertRef("CALERTS", "1.000001")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _votes(
    store: Store,
    reviews: ReviewStore,
    reviewers: Reviewers,
    *,
    quorum: int = 2,
    notifier: FakeNotifier | None = None,
) -> SlackVotes:
    notifier = notifier or FakeNotifier()
    return SlackVotes(
        store=store,
        reviews=reviews,
        notifier=notifier,
        reporter=VerdictReporter(store, reviews, notifier, retry=RetryPolicy()),
        reviewers=reviewers,
        quorum=quorum,
        remind_after=3600,
    )


def _report(scan_id: str) -> ScanReport:
    request = ScanRequest(ImageRef(url="https://x.example/a.png"), Origin(Trigger.LINK, "C1"), "k")
    return ScanReport(scan_id, request, Detection((), "7.0"), Outcome(Decision.REVIEW), SHA)


async def test_start_opens_the_review_and_says_who_may_vote(
    store: Store, reviews: ReviewStore
) -> None:
    """The thread reply names the quorum and the reviewers (users, then groups)."""
    notifier = FakeNotifier()
    votes = _votes(
        store, reviews, Reviewers(FakeDirectory(), ["S0MODS", "U0MOD1"]), notifier=notifier
    )
    await votes.start(_report("s1"), ALERT, b"")
    review = await reviews.get("s1")
    assert review is not None
    assert review.status == "open"
    (text,) = notifier.replies_to(ALERT)
    assert text.startswith(":mag: Human review started: 2 agreeing votes needed from <@U0MOD1>")
    assert "<!subteam^S0MODS>" in text
    await votes.start(_report("s1"), ALERT, b"")  # a resumed scan starts it again: one reply
    assert len(notifier.replies_to(ALERT)) == 1


async def test_the_quorum_of_agreeing_votes_decides(store: Store, reviews: ReviewStore) -> None:
    """Anyone may vote with an empty list; the second agreeing vote decides, later ones close."""
    votes = _votes(store, reviews, Reviewers(FakeDirectory(), []))
    await votes.start(_report("s1"), ALERT, b"")
    assert await votes.vote("s1", "U1", True) is VoteResult.RECORDED
    assert await votes.vote("s1", "U2", False) is VoteResult.RECORDED
    assert await votes.vote("s1", "U2", True) is VoteResult.DECIDED  # a changed vote counts
    assert await votes.vote("s1", "U3", False) is VoteResult.CLOSED
    review = await reviews.get("s1")
    assert review is not None
    assert review.verdict is not None
    assert review.verdict.violation is True
    assert set(review.verdict.reviewers) == {"U1", "U2"}


async def test_unknown_review_is_closed(store: Store, reviews: ReviewStore) -> None:
    """A click on buttons of a scan with no open review records nothing."""
    votes = _votes(store, reviews, Reviewers(FakeDirectory(), []))
    assert await votes.vote("nope", "U1", True) is VoteResult.CLOSED


async def test_only_listed_users_and_group_members_may_vote(
    store: Store, reviews: ReviewStore
) -> None:
    """U0MOD1 directly, U0MOD2 through S0MODS; anyone else is refused and nothing is recorded."""
    directory = FakeDirectory({"S0MODS": {"U0MOD2"}})
    votes = _votes(store, reviews, Reviewers(directory, ["U0MOD1", "S0MODS"]), quorum=1)
    await votes.start(_report("s1"), ALERT, b"")
    assert await votes.vote("s1", "U0STRANGER", True) is VoteResult.REFUSED
    review = await reviews.get("s1")
    assert review is not None
    assert review.status == "open"
    assert await votes.vote("s1", "U0MOD2", False) is VoteResult.DECIDED
    review = await reviews.get("s1")
    assert review is not None
    assert review.verdict is not None
    assert review.verdict.reviewers == ("U0MOD2",)


async def test_group_members_are_cached_for_five_minutes() -> None:
    """One look-up per group per 5 minutes; a change in the group shows after that."""
    clock = Clock()
    directory = FakeDirectory({"S0MODS": {"U0MOD2"}})
    reviewers = Reviewers(directory, ["S0MODS"], clock=clock)
    assert await reviewers.allows("U0MOD2")
    directory.groups["S0MODS"] = {"U0MOD3"}
    clock.now += 299
    assert await reviewers.allows("U0MOD2")
    assert not await reviewers.allows("U0MOD3")
    assert directory.lookups == ["S0MODS"]
    clock.now += 2
    assert await reviewers.allows("U0MOD3")
    assert not await reviewers.allows("U0MOD2")
    assert directory.lookups == ["S0MODS", "S0MODS"]


async def test_while_slack_cannot_say_the_last_known_members_count() -> None:
    """A failed look-up keeps the members known before; never known means nobody."""
    clock = Clock()
    directory = FakeDirectory({"S0MODS": {"U0MOD2"}})
    reviewers = Reviewers(directory, ["U0MOD1", "S0MODS"], clock=clock)
    assert await reviewers.current() == frozenset({"U0MOD1", "U0MOD2"})
    clock.now += 600
    directory.fail_next("group_members", SlackUnavailable("down", transient=True))
    assert await reviewers.allows("U0MOD2")

    fresh = Reviewers(directory, ["U0MOD1", "S0MODS"], clock=clock)
    directory.fail_next("group_members", SlackUnavailable("down", transient=True))
    assert await fresh.current() == frozenset({"U0MOD1"})


async def test_a_reviewer_removed_since_voting_no_longer_counts(
    store: Store, reviews: ReviewStore
) -> None:
    """U0MOD1 votes, leaves the group; U0MOD2's agreeing vote alone does not reach 2."""
    directory = FakeDirectory({"S0MODS": {"U0MOD1", "U0MOD2", "U0MOD3"}})
    votes = _votes(store, reviews, Reviewers(directory, ["S0MODS"]))
    await votes.start(_report("s1"), ALERT, b"")
    assert await votes.vote("s1", "U0MOD1", True) is VoteResult.RECORDED

    directory.groups["S0MODS"] = {"U0MOD2", "U0MOD3"}
    votes = _votes(store, reviews, Reviewers(directory, ["S0MODS"]))  # a fresh cache
    assert await votes.vote("s1", "U0MOD1", True) is VoteResult.REFUSED
    assert await votes.vote("s1", "U0MOD2", True) is VoteResult.RECORDED
    assert await votes.vote("s1", "U0MOD3", True) is VoteResult.DECIDED
    review = await reviews.get("s1")
    assert review is not None
    assert review.verdict is not None
    assert set(review.verdict.reviewers) == {"U0MOD2", "U0MOD3"}


class _SlowReplies(FakeNotifier):
    """Slack answering a thread reply only when let go: a reminder stays in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.replying = asyncio.Event()

    async def reply(
        self, alert: AlertRef, message: SlackMessage, *, scan_id: str | None = None
    ) -> None:
        self.replying.set()
        await self.go.wait()
        await super().reply(alert, message, scan_id=scan_id)


async def test_replicas_post_one_reminder_per_due_time(store: Store, reviews: ReviewStore) -> None:
    """Two replicas' reminder loops on one overdue review: the one holding its lease posts;
    the other skips it while that runs, and finds it no longer due afterwards."""
    scan_id = await alerted_scan(store, "k", SHA, ts=ALERT.ts)
    await reviews.open(scan_id, SHA, "slack")
    async with store.write() as conn:  # opened ten seconds ago: due with a 5 s reminder
        await conn.execute(update(reviews_table).values(created_at=reviews_table.c.created_at - 10))
    slack = _SlowReplies()
    one, two = (
        SlackVotes(
            store=store,
            reviews=reviews,
            notifier=slack,
            reporter=VerdictReporter(store, reviews, slack, retry=RetryPolicy()),
            reviewers=Reviewers(FakeDirectory(), []),
            quorum=1,
            remind_after=5,
            claims=DatabaseLeases(store, holder=holder),
        )
        for holder in ("one", "two")
    )
    first = asyncio.create_task(one.remind())
    await asyncio.wait_for(slack.replying.wait(), 5)
    await two.remind()  # leased to one: skipped
    slack.go.set()
    await first
    await two.remind()  # reminded just now: not due
    [reminder] = slack.replies_to(ALERT)
    assert reminder.startswith(":alarm_clock: Reminder: this review has been open for")
