"""The alert's causes in their own column, no longer inside the stored Slack message.

Until now the label names that made an alert's decision were kept as a "causes" key beside the
posted text and blocks in `alerts.message`. They move to `alerts.causes`, so `message` is the
Slack message as posted and nothing else.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:37:38.120326
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# The table as this revision sees it (not bot/adapters/database/schema.py, which moves on).
_alerts = sa.table(
    "alerts",
    sa.column("scan_id", sa.String),
    sa.column("message", sa.JSON),
    sa.column("causes", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("causes", sa.JSON(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_alerts.c.scan_id, _alerts.c.message)).all()
    for scan_id, message in rows:
        if not isinstance(message, dict):
            continue
        kept = {key: value for key, value in message.items() if key != "causes"}
        causes = [str(cause) for cause in message.get("causes") or ()]
        conn.execute(
            sa.update(_alerts)
            .where(_alerts.c.scan_id == scan_id)
            .values(message=kept, causes=causes)
        )


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_alerts.c.scan_id, _alerts.c.message, _alerts.c.causes))
    for scan_id, message, causes in rows.all():
        if isinstance(message, dict):
            restored: dict[str, Any] = {**message, "causes": list(causes or ())}
            conn.execute(
                sa.update(_alerts).where(_alerts.c.scan_id == scan_id).values(message=restored)
            )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("causes")
