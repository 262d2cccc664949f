"""Leases on work other than scans, and the replicas working the database.

- leases: one row per piece of work a replica has in hand (a verdict to report, a reminder, an
  A2I loop's end, a detector call), until when; new and empty.
- replicas: each live replica and its policy's fingerprint; new and empty.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.create_index("leases_holder", ["holder"], unique=False)

    op.create_table(
        "replicas",
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("holder"),
    )


def downgrade() -> None:
    op.drop_table("replicas")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_index("leases_holder")
    op.drop_table("leases")
