"""What the App Home tab shows, read in two queries however many reviews are open."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.database.schema import alerts, audit, reviews, scans
from bot.core.messages.home import MAX_LISTED, HomeState, OpenReview
from bot.core.model import AlertRef, Decision

DAY_SECONDS = 86_400.0
# Audit actions that record an image removed. Removal (PRODUCT §10) writes them; until it
# exists the count is 0.
REMOVAL_ACTIONS = ("removed",)
FINISHED = ("done", "failed", "skipped")


async def home_state(engine: AsyncEngine, now: float) -> HomeState:
    """The oldest open reviews with their alerts (one query), then every count (one query)."""
    since = now - DAY_SECONDS

    def count(table: Table, *where: ColumnElement[bool]) -> Any:
        return select(func.count()).select_from(table).where(*where).scalar_subquery()

    listed = (
        select(
            reviews.c.scan_id,
            reviews.c.backend,
            reviews.c.created_at,
            alerts.c.decision,
            alerts.c.causes,
            alerts.c.channel,
            alerts.c.ts,
            alerts.c.permalink,
        )
        .select_from(reviews.outerjoin(alerts, alerts.c.scan_id == reviews.c.scan_id))
        .where(reviews.c.status == "open")
        .order_by(reviews.c.created_at)
        .limit(MAX_LISTED)
    )
    counts = select(
        count(reviews, reviews.c.status == "open"),
        # updated_at is indexed, and a finished scan's row last changed when it finished.
        count(scans, scans.c.updated_at >= since, scans.c.status.in_(FINISHED)),
        count(alerts, alerts.c.created_at >= since, alerts.c.ts.is_not(None)),
        count(reviews, reviews.c.decided_at >= since, reviews.c.status == "decided"),
        count(audit, audit.c.at >= since, audit.c.action.in_(REMOVAL_ACTIONS)),
        count(scans, scans.c.status == "pending"),
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(listed)).all()
        totals = (await conn.execute(counts)).one()
    listed_reviews = tuple(
        OpenReview(
            scan_id=row.scan_id,
            decision=Decision(row.decision) if row.decision else Decision.REVIEW,
            causes=tuple(str(cause) for cause in row.causes or ()),
            opened_at=float(row.created_at),
            backend=str(row.backend),
            alert=AlertRef(row.channel, row.ts, row.permalink) if row.ts else None,
        )
        for row in rows
    )
    open_reviews, finished, alerted, decided, removed, pending = (int(n or 0) for n in totals)
    return HomeState(
        reviews=listed_reviews,
        open_reviews=open_reviews,
        scans=finished,
        alerts=alerted,
        verdicts=decided,
        removals=removed,
        queue_depth=pending,
        now=now,
    )
