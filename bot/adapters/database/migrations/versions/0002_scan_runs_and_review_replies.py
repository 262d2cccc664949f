"""Scan runs (retry clock, crash count) and review reply intents, from the issue 8 hardening.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:55:21.682921
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "review_replies",
        sa.Column("scan_id", sa.String(length=32), nullable=False),
        sa.Column("begun_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scan_id"),
    )
    op.create_table(
        "scan_runs",
        sa.Column("scan_id", sa.String(length=32), nullable=False),
        sa.Column("unfinished", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.Float(), nullable=True),
        sa.Column("bugs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scan_id"),
    )


def downgrade() -> None:
    op.drop_table("scan_runs")
    op.drop_table("review_replies")
