"""The shared Rekognition schedule (rate_gates) and the indexes retention deletes by (issue 10).

Only a new table and indexes: every existing row stays as it is.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:28:57.170459
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "rate_gates",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("last_slot", sa.Float(), nullable=False),
        sa.Column("last_decrease", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.create_index("detections_age", ["created_at"], unique=False)

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("events_age", ["received_at"], unique=False)

    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.create_index("scans_age", ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.drop_index("scans_age")

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("events_age")

    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.drop_index("detections_age")

    op.drop_table("rate_gates")
