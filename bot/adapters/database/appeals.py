"""Appeals against removals, and the votes on them, kept in the database."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update

from bot.adapters.database.engine import insert_ignoring_duplicates, upsert, write_audit
from bot.adapters.database.scans import Store, without_nul
from bot.adapters.database.schema import appeal_votes, appeals, removals, reviews, votes
from bot.core.verdict import quorum_outcome


@dataclass(frozen=True)
class Appeal:
    scan_id: str
    user: str
    reason: str
    status: str  # open | upheld | overturned
    post_ts: str | None
    reviewers: tuple[str, ...]  # who decided it
    reported: bool


@dataclass(frozen=True)
class AppealBallot:
    recorded: bool  # False: no open appeal for this scan
    decided: bool = False


class AppealStore:
    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._write = store.write

    async def open(self, scan_id: str, user: str, reason: str) -> bool:
        """Record an appeal; False if this removal already has one."""
        async with self._write() as conn:
            insert_new = insert_ignoring_duplicates(conn.dialect.name)
            added = (
                await conn.execute(
                    insert_new(appeals)
                    .values(
                        scan_id=scan_id,
                        user=user,
                        reason=without_nul(reason),
                        status="open",
                        reported=False,
                        created_at=time.time(),
                    )
                    .returning(appeals.c.scan_id)
                )
            ).first() is not None
            if added:
                await write_audit(conn, scan_id, "appeal", user, {"reason": reason})
            return added

    async def get(self, scan_id: str) -> Appeal | None:
        rows = await self._many(appeals.c.scan_id == scan_id)
        return rows[0] if rows else None

    async def unposted(self) -> Sequence[Appeal]:
        return await self._many(appeals.c.post_ts.is_(None))

    async def begin_post(self, scan_id: str) -> bool:
        """The appeal's thread post is about to go out; True if an earlier attempt may have."""
        return await self._begin(scan_id, appeals.c.post_begun_at)

    async def posted(self, scan_id: str, ts: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(appeals).where(appeals.c.scan_id == scan_id).values(post_ts=ts)
            )

    async def original_deciders(self, scan_id: str) -> frozenset[str]:
        """Who took the decision under appeal: voters on the review, and whoever pressed Remove."""
        async with self._engine.connect() as conn:
            voters = await conn.execute(select(votes.c.user).where(votes.c.scan_id == scan_id))
            found = {str(row.user) for row in voters}
            decided = (
                await conn.execute(select(reviews.c.decided_by).where(reviews.c.scan_id == scan_id))
            ).scalar_one_or_none()
            found.update(str(u) for u in (decided or {}).get("reviewers", ()))
            actor = (
                await conn.execute(select(removals.c.actor).where(removals.c.scan_id == scan_id))
            ).scalar_one_or_none()
        if actor:
            found.add(str(actor))
        return frozenset(found)

    async def vote(
        self, scan_id: str, user: str, upheld: bool, quorum: int, allowed: Collection[str] | None
    ) -> AppealBallot:
        """Record (or change) a vote and decide when `quorum` agreeing votes of reviewers still
        `allowed` exist, in one transaction (as for reviews)."""
        async with self._write() as conn:
            status = (
                await conn.execute(
                    select(appeals.c.status).where(appeals.c.scan_id == scan_id).with_for_update()
                )
            ).scalar_one_or_none()
            if status != "open":
                return AppealBallot(recorded=False)
            await conn.execute(
                upsert(
                    conn.dialect.name,
                    appeal_votes,
                    ["scan_id", "user"],
                    {"scan_id": scan_id, "user": user, "upheld": upheld, "at": time.time()},
                )
            )
            await write_audit(conn, scan_id, "appeal_vote", user, {"upheld": upheld})
            rows = await conn.execute(
                select(appeal_votes.c.user, appeal_votes.c.upheld)
                .where(appeal_votes.c.scan_id == scan_id)
                .order_by(appeal_votes.c.at)
            )
            decided = quorum_outcome({r.user: bool(r.upheld) for r in rows}, quorum, allowed)
            if decided is None:
                return AppealBallot(recorded=True)
            outcome, reviewers = decided
            verdict = "upheld" if outcome else "overturned"
            changed = await conn.execute(
                update(appeals)
                .where(and_(appeals.c.scan_id == scan_id, appeals.c.status == "open"))
                .values(
                    status=verdict,
                    decided_by={"reviewers": list(reviewers)},
                    decided_at=time.time(),
                )
            )
            if changed.rowcount:
                await write_audit(
                    conn, scan_id, "appeal_verdict", user, {"verdict": verdict, "by": reviewers}
                )
            return AppealBallot(recorded=True, decided=bool(changed.rowcount))

    async def unreported(self) -> Sequence[Appeal]:
        return await self._many(and_(appeals.c.status != "open", appeals.c.reported.is_(False)))

    async def begin_report(self, scan_id: str) -> bool:
        return await self._begin(scan_id, appeals.c.report_begun_at)

    async def mark_reported(self, scan_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(appeals).where(appeals.c.scan_id == scan_id).values(reported=True)
            )

    async def _begin(self, scan_id: str, column: Any) -> bool:
        async with self._write() as conn:
            changed = await conn.execute(
                update(appeals)
                .where(appeals.c.scan_id == scan_id, column.is_(None))
                .values({column.name: time.time()})
            )
            return not changed.rowcount

    async def _many(self, condition: Any) -> Sequence[Appeal]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(appeals).where(condition).order_by(appeals.c.created_at)
            )
            return [_appeal(row._mapping) for row in rows]


def _appeal(row: Any) -> Appeal:
    return Appeal(
        scan_id=row["scan_id"],
        user=row["user"],
        reason=row["reason"],
        status=row["status"],
        post_ts=row["post_ts"],
        reviewers=tuple((row["decided_by"] or {}).get("reviewers", ())),
        reported=bool(row["reported"]),
    )
