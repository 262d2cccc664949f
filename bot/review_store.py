"""Reviews, votes and the verdict outbox, kept in the database so they survive restarts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update

from bot.db import insert_ignoring_duplicates, upsert, write_audit
from bot.schema import reviews, votes
from bot.store import Store, without_nul
from bot.verdict import Verdict


@dataclass(frozen=True)
class Review:
    scan_id: str
    sha256: str
    backend: str
    status: str  # open | decided | failed
    loop_name: str | None
    created_at: float
    verdict: Verdict | None
    detail: str | None
    reminded_at: float | None


class ReviewStore:
    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._write = store.write

    async def open(
        self, scan_id: str, sha256: str, backend: str, *, loop_name: str | None = None
    ) -> bool:
        """Record a review as started; False if this scan already has one."""
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
            return added

    async def get(self, scan_id: str) -> Review | None:
        return await self._one(reviews.c.scan_id == scan_id)

    async def by_loop(self, loop_name: str) -> Review | None:
        return await self._one(reviews.c.loop_name == loop_name)

    async def vote(self, scan_id: str, user: str, violation: bool) -> dict[str, bool] | None:
        """Record (or change) a reviewer's vote while the review is open; return all votes.

        None when there is no open review for the scan (unknown, or already decided).
        """
        async with self._write() as conn:
            # FOR UPDATE (PostgreSQL; SQLite has one writer anyway): votes on one review take
            # turns, so the last of two concurrent votes sees both and can reach the quorum.
            status = (
                await conn.execute(
                    select(reviews.c.status).where(reviews.c.scan_id == scan_id).with_for_update()
                )
            ).first()
            if status is None or status.status != "open":
                return None
            await conn.execute(
                upsert(
                    conn.dialect.name,
                    votes,
                    ["scan_id", "user"],
                    {"scan_id": scan_id, "user": user, "violation": violation, "at": time.time()},
                )
            )
            await write_audit(conn, scan_id, "vote", user, {"violation": violation})
            rows = await conn.execute(
                select(votes.c.user, votes.c.violation).where(votes.c.scan_id == scan_id)
            )
            return {row.user: bool(row.violation) for row in rows}

    async def decide(self, scan_id: str, verdict: Verdict, actor: str | None) -> bool:
        """Close an open review with a verdict. Exactly one caller ever gets True."""
        async with self._write() as conn:
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
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(reviews).where(condition).order_by(order))
            return [_review(row._mapping) for row in rows]


def _review(row: Any) -> Review:
    verdict = None
    if row["status"] == "decided":
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
    )
