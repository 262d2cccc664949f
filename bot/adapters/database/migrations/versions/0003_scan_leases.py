"""Scan leases (holder, lease_until) and the retry clock (not_before) on scan_runs.

New nullable columns: rows of pending scans stay as they were (no lease, due now).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:29:05.886428
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("scan_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("not_before", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scan_runs", schema=None) as batch_op:
        batch_op.drop_column("not_before")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("holder")
