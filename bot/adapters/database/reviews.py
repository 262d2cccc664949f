"""Reviews, votes and the verdict outbox, kept in the database so they survive restarts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.adapters.database.bank import bank_verdict
from bot.adapters.database.engine import insert_ignoring_duplicates, upsert, write_audit
from bot.adapters.database.scans import Store, without_nul
from bot.adapters.database.schema import alerts, review_replies, reviews, votes
from bot.core.messages import ACTION_VIOLATION
from bot.core.verdict import Verdict, quorum_outcome


@dataclass(frozen=True)
class Review:
    scan_id: str
    sha256: str
    backend: str
    status: str  # open | decided | failed | overturned (by an appeal)
    loop_name: str | None
    created_at: float
    verdict: Verdict | None
    detail: str | None
    reminded_at: float | None
    reported: bool = False  # its outcome has been told in Slack


@dataclass(frozen=True)
class VoteRule:
    """How Slack votes decide: `quorum` agreeing votes of reviewers still `allowed`."""

    quorum: int
    allowed: frozenset[str] | None  # None: anyone may vote


@dataclass(frozen=True)
class Ballot:
    """What one vote did."""

    recorded: bool  # False: no open review (unknown scan, or already decided)
    verdict: Verdict | None = None  # set when this vote decided the review


class ReviewStore:
    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._write = store.write
        self._read = store.read  # on SQLite, on the loop's thread (the ledger asks every scan)

    async def open(
        self,
        scan_id: str,
        sha256: str,
        backend: str,
        *,
        loop_name: str | None = None,
        rule: VoteRule | None = None,
    ) -> bool:
        """Record a review as started; False if this scan already has one.

        With a vote `rule`, votes cast on the alert before the review was stored count at once
        (they may already make the quorum).
        """
        async with self._write() as conn:
            insert_new = insert_ignoring_duplicates(conn.dialect.name)
            added = (
                await conn.execute(
                    insert_new(reviews)
                    .values(
                        scan_id=scan_id,
                        sha256=sha256,
                        backend=backend,
                        status="open",
                        loop_name=loop_name,
                        reported=False,
                        created_at=time.time(),
                    )
                    .returning(reviews.c.scan_id)
                )
            ).first() is not None
            if added:
                await write_audit(
                    conn, scan_id, "review_started", None, {"backend": backend, "loop": loop_name}
                )
                if rule is not None:
                    await self._decide_by_votes(conn, scan_id, rule, actor=None)
            return added

    async def get(self, scan_id: str) -> Review | None:
        return await self._one(reviews.c.scan_id == scan_id)

    async def by_loop(self, loop_name: str) -> Review | None:
        return await self._one(reviews.c.loop_name == loop_name)

    async def vote(self, scan_id: str, user: str, violation: bool, rule: VoteRule) -> Ballot:
        """Record (or change) a reviewer's vote, then tally and decide, in one transaction, so
        the verdict is exactly the votes at decision time.

        A vote on an alert whose review is not stored yet (the alert with its buttons is being
        posted) is recorded too; it counts once the review opens.
        """
        async with self._write() as conn:
            # FOR UPDATE (PostgreSQL; SQLite has one writer anyway): votes on one review take
            # turns, so the last of two concurrent votes sees both and can reach the quorum.
            status = (
                await conn.execute(
                    select(reviews.c.status).where(reviews.c.scan_id == scan_id).with_for_update()
                )
            ).first()
            if status is None:
                if not await _alert_has_buttons(conn, scan_id):
                    return Ballot(recorded=False)
            elif status.status != "open":
                return Ballot(recorded=False)
            await conn.execute(
                upsert(
                    conn.dialect.name,
                    votes,
                    ["scan_id", "user"],
                    {"scan_id": scan_id, "user": user, "violation": violation, "at": time.time()},
                )
            )
            await write_audit(conn, scan_id, "vote", user, {"violation": violation})
            if status is None:
                return Ballot(recorded=True)
            return Ballot(True, await self._decide_by_votes(conn, scan_id, rule, actor=user))

    async def _decide_by_votes(
        self, conn: AsyncConnection, scan_id: str, rule: VoteRule, actor: str | None
    ) -> Verdict | None:
        rows = await conn.execute(
            select(votes.c.user, votes.c.violation)
            .where(votes.c.scan_id == scan_id)
            .order_by(votes.c.at)
        )
        current = {row.user: bool(row.violation) for row in rows}
        decided = quorum_outcome(current, rule.quorum, rule.allowed)
        if decided is None:
            return None
        outcome, reviewers = decided
        created_at = (
            await conn.execute(select(reviews.c.created_at).where(reviews.c.scan_id == scan_id))
        ).scalar_one()
        verdict = Verdict(
            violation=outcome,
            # Votes confirm the labels that caused the alert (reviewers judge the whole image).
            labels=await _alert_causes(conn, scan_id) if outcome else (),
            reviewers=reviewers,
            seconds=time.time() - created_at,
        )
        return verdict if await self._close_decided(conn, scan_id, verdict, actor) else None

    async def decide(self, scan_id: str, verdict: Verdict, actor: str | None) -> bool:
        """Close an open review with a verdict. Exactly one caller ever gets True."""
        async with self._write() as conn:
            return await self._close_decided(conn, scan_id, verdict, actor)

    async def _close_decided(
        self, conn: AsyncConnection, scan_id: str, verdict: Verdict, actor: str | None
    ) -> bool:
        changed = await conn.execute(
            update(reviews)
            .where(and_(reviews.c.scan_id == scan_id, reviews.c.status == "open"))
            .values(
                status="decided",
                violation=verdict.violation,
                labels=list(verdict.labels),
                decided_by={
                    "reviewers": list(verdict.reviewers),
                    "workers": verdict.workers,
                    "seconds": verdict.seconds,
                },
                decided_at=time.time(),
            )
        )
        if changed.rowcount:
            await bank_verdict(conn, scan_id, verdict)  # the hash bank follows the verdicts
            await write_audit(
                conn,
                scan_id,
                "verdict",
                actor,
                {"violation": verdict.violation, "labels": list(verdict.labels)},
            )
        return bool(changed.rowcount)

    async def fail(self, scan_id: str, detail: str) -> bool:
        """Close an open review without a verdict (loop failed, stopped or expired)."""
        async with self._write() as conn:
            changed = await conn.execute(
                update(reviews)
                .where(and_(reviews.c.scan_id == scan_id, reviews.c.status == "open"))
                .values(status="failed", detail=without_nul(detail), decided_at=time.time())
            )
            if changed.rowcount:
                await write_audit(conn, scan_id, "review_failed", None, {"detail": detail})
            return bool(changed.rowcount)

    async def open_reviews(self, backend: str) -> Sequence[Review]:
        return await self._many(and_(reviews.c.status == "open", reviews.c.backend == backend))

    async def unreported(self) -> Sequence[Review]:
        return await self._many(and_(reviews.c.status != "open", reviews.c.reported.is_(False)))

    async def begin_reply(self, scan_id: str) -> bool:
        """Record that the outcome reply is about to be posted; True if that was recorded
        before (an earlier attempt may have reached Slack: look before posting again)."""
        async with self._write() as conn:
            insert_new = insert_ignoring_duplicates(conn.dialect.name)
            added = await conn.execute(
                insert_new(review_replies).values(scan_id=scan_id, begun_at=time.time())
            )
            return not added.rowcount

    async def mark_reported(self, scan_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(reviews).where(reviews.c.scan_id == scan_id).values(reported=True)
            )

    async def mark_reminded(self, scan_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(reviews).where(reviews.c.scan_id == scan_id).values(reminded_at=time.time())
            )

    async def forget_violation(self, sha256: str) -> int:
        """Confirmed violations of these bytes no longer count (an appeal overturned them):
        they stay on record as `overturned`, and re-posts are judged afresh. Returns how many."""
        async with self._write() as conn:
            changed = await conn.execute(
                update(reviews)
                .where(
                    reviews.c.sha256 == sha256,
                    reviews.c.status == "decided",
                    reviews.c.violation.is_(True),
                )
                .values(status="overturned")
            )
            if changed.rowcount:
                await write_audit(conn, None, "violation_forgotten", None, {"sha256": sha256})
            return int(changed.rowcount)

    async def latest_verdict(self, sha256: str) -> Review | None:
        """The most recent human verdict for these bytes."""
        rows = await self._many(
            and_(reviews.c.sha256 == sha256, reviews.c.status == "decided"), newest_first=True
        )
        return rows[0] if rows else None

    async def open_for(self, sha256: str, *, excluding: str) -> Review | None:
        rows = await self._many(
            and_(
                reviews.c.sha256 == sha256,
                reviews.c.status == "open",
                reviews.c.scan_id != excluding,
            )
        )
        return rows[0] if rows else None

    async def _one(self, condition: Any) -> Review | None:
        rows = await self._many(condition)
        return rows[0] if rows else None

    async def _many(self, condition: Any, *, newest_first: bool = False) -> Sequence[Review]:
        order = reviews.c.created_at.desc() if newest_first else reviews.c.created_at
        async with self._read() as conn:
            rows = await conn.execute(select(reviews).where(condition).order_by(order))
            return [_review(row._mapping) for row in rows]


async def _alert_has_buttons(conn: AsyncConnection, scan_id: str) -> bool:
    """Whether this scan's alert (posted, or being posted) carries vote buttons."""
    message = (
        await conn.execute(select(alerts.c.message).where(alerts.c.scan_id == scan_id))
    ).scalar_one_or_none()
    return isinstance(message, dict) and ACTION_VIOLATION in str(message.get("blocks"))


async def _alert_causes(conn: AsyncConnection, scan_id: str) -> tuple[str, ...]:
    causes = (
        await conn.execute(select(alerts.c.causes).where(alerts.c.scan_id == scan_id))
    ).scalar_one_or_none()
    return tuple(str(cause) for cause in causes or ())


def _review(row: Any) -> Review:
    verdict = None
    if row["status"] in ("decided", "overturned"):
        decided_by = row["decided_by"] or {}
        verdict = Verdict(
            violation=bool(row["violation"]),
            labels=tuple(row["labels"] or ()),
            reviewers=tuple(decided_by.get("reviewers", ())),
            workers=int(decided_by.get("workers", 0)),
            loop_name=row["loop_name"],
            seconds=float(decided_by.get("seconds", 0.0)),
        )
    return Review(
        scan_id=row["scan_id"],
        sha256=row["sha256"],
        backend=row["backend"],
        status=row["status"],
        loop_name=row["loop_name"],
        created_at=row["created_at"],
        verdict=verdict,
        detail=row["detail"],
        reminded_at=row["reminded_at"],
        reported=bool(row["reported"]),
    )
