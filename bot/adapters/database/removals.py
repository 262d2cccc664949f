"""Removals kept in the database: the intent before the Slack call, and the outbox after it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from bot.adapters.database.engine import insert_ignoring_duplicates, write_audit
from bot.adapters.database.scans import Store, without_nul
from bot.adapters.database.schema import removals
from bot.core.removal import Target, Why


@dataclass(frozen=True)
class Removal:
    scan_id: str
    sha256: str
    target: Target
    poster: str | None
    source: str | None
    labels: tuple[str, ...]
    why: str
    actor: str | None
    status: str  # pending | removed | failed
    detail: str | None
    called: bool  # a delete call may have reached Slack already
    failures: int
    first_failure_at: float | None
    not_before: float | None
    reported: bool
    notice: str | None  # None | due | sent | failed


class RemovalStore:
    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._write = store.write

    async def begin(
        self,
        scan_id: str,
        sha256: str,
        target: Target,
        *,
        poster: str | None,
        source: str | None,
        labels: Sequence[str],
        why: Why,
        actor: str | None,
        notify: bool,
    ) -> bool:
        """Record the intent to remove this scan's image; False if one exists (a removal is
        attempted once per image, whoever asks again and however often)."""
        async with self._write() as conn:
            insert_new = insert_ignoring_duplicates(conn.dialect.name)
            added = (
                await conn.execute(
                    insert_new(removals)
                    .values(
                        scan_id=scan_id,
                        sha256=sha256,
                        kind=target.kind,
                        channel=target.channel,
                        file_id=target.file_id,
                        message_ts=target.message_ts,
                        poster=poster,
                        source=without_nul(source),
                        labels=list(labels),
                        why=why.value,
                        actor=actor,
                        status="pending",
                        failures=0,
                        reported=False,
                        notice="due" if notify and poster else None,
                        created_at=time.time(),
                    )
                    .returning(removals.c.scan_id)
                )
            ).first() is not None
            if added:
                await write_audit(
                    conn,
                    scan_id,
                    "removal_requested",
                    actor,
                    {"why": why.value, "kind": target.kind, "channel": target.channel},
                )
            return added

    async def get(self, scan_id: str) -> Removal | None:
        rows = await self._many(removals.c.scan_id == scan_id)
        return rows[0] if rows else None

    async def unfinished(self) -> Sequence[Removal]:
        """Removals with something left to do: the call, the reply, or the poster's message."""
        return await self._many(
            or_(
                removals.c.status == "pending",
                removals.c.reported.is_(False),
                removals.c.notice == "due",
            )
        )

    async def begin_call(self, scan_id: str) -> bool:
        """Record that a delete call is about to go out; True if one may have gone before."""
        async with self._write() as conn:
            changed = await conn.execute(
                update(removals)
                .where(removals.c.scan_id == scan_id, removals.c.called_at.is_(None))
                .values(called_at=time.time())
            )
            return not changed.rowcount

    async def retry_later(self, scan_id: str, not_before: float) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(removals)
                .where(removals.c.scan_id == scan_id)
                .values(
                    failures=removals.c.failures + 1,
                    first_failure_at=func.coalesce(removals.c.first_failure_at, time.time()),
                    not_before=not_before,
                )
            )

    async def finish(self, scan_id: str, *, removed: bool, detail: str | None = None) -> None:
        """The call's outcome, once (a later call for the same scan changes nothing)."""
        async with self._write() as conn:
            changed = await conn.execute(
                update(removals)
                .where(removals.c.scan_id == scan_id, removals.c.status == "pending")
                .values(
                    status="removed" if removed else "failed",
                    detail=without_nul(detail),
                    done_at=time.time(),
                )
            )
            if changed.rowcount:
                action = "removed" if removed else "removal_failed"
                await write_audit(conn, scan_id, action, None, {"detail": detail})

    async def begin_reply(self, scan_id: str) -> bool:
        """The reply is about to be posted; True if an earlier attempt may have posted it."""
        async with self._write() as conn:
            changed = await conn.execute(
                update(removals)
                .where(removals.c.scan_id == scan_id, removals.c.reply_begun_at.is_(None))
                .values(reply_begun_at=time.time())
            )
            return not changed.rowcount

    async def mark_reported(self, scan_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(removals).where(removals.c.scan_id == scan_id).values(reported=True)
            )

    async def begin_notice(self, scan_id: str) -> bool:
        """The poster's message is about to be sent; True if an earlier attempt may have."""
        async with self._write() as conn:
            changed = await conn.execute(
                update(removals)
                .where(removals.c.scan_id == scan_id, removals.c.notice_begun_at.is_(None))
                .values(notice_begun_at=time.time())
            )
            return not changed.rowcount

    async def end_notice(self, scan_id: str, *, sent: bool, detail: str | None = None) -> None:
        async with self._write() as conn:
            changed = await conn.execute(
                update(removals)
                .where(and_(removals.c.scan_id == scan_id, removals.c.notice == "due"))
                .values(notice="sent" if sent else "failed")
            )
            if changed.rowcount:
                action = "poster_notified" if sent else "poster_not_notified"
                await write_audit(conn, scan_id, action, None, {"detail": detail})

    async def _many(self, condition: Any) -> Sequence[Removal]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(removals).where(condition).order_by(removals.c.created_at)
            )
            return [_removal(row._mapping) for row in rows]


def _removal(row: Any) -> Removal:
    return Removal(
        scan_id=row["scan_id"],
        sha256=row["sha256"],
        target=Target(row["channel"], file_id=row["file_id"], message_ts=row["message_ts"]),
        poster=row["poster"],
        source=row["source"],
        labels=tuple(row["labels"] or ()),
        why=row["why"],
        actor=row["actor"],
        status=row["status"],
        detail=row["detail"],
        called=row["called_at"] is not None,
        failures=int(row["failures"] or 0),
        first_failure_at=row["first_failure_at"],
        not_before=row["not_before"],
        reported=bool(row["reported"]),
        notice=row["notice"],
    )
