"""Scan leases and the retry clock; detections stored per detector.

- scan_runs gains holder, lease_until (a claim is a lease) and not_before (the retry clock):
  new nullable columns, so rows of pending scans stay as they were (no lease, due now).
- detections are keyed by (sha256, detector) and keep the detector's model version: every
  existing row was made by Rekognition, so it becomes detector "rekognition" with the model
  version read from its stored result.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:29:05.886428
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_detections = sa.table(
    "detections",
    sa.column("sha256", sa.String(64)),
    sa.column("detector", sa.String(32)),
    sa.column("model_version", sa.String(64)),
    sa.column("result", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("scan_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("not_before", sa.Float(), nullable=True))

    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "detector", sa.String(length=32), nullable=False, server_default="rekognition"
            )
        )
        batch_op.add_column(sa.Column("model_version", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    for row in conn.execute(sa.select(_detections.c.sha256, _detections.c.result)).all():
        conn.execute(
            _detections.update()
            .where(_detections.c.sha256 == row.sha256)
            .values(model_version=_model_version(row.result))
        )
    _set_primary_key(["sha256", "detector"])
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.alter_column("model_version", existing_type=sa.String(64), nullable=False)
        batch_op.alter_column("detector", existing_type=sa.String(32), server_default=None)


def downgrade() -> None:
    op.execute(_detections.delete().where(_detections.c.detector != "rekognition"))
    if op.get_bind().dialect.name == "postgresql":  # SQLite: dropping the column rebuilds it
        _set_primary_key(["sha256"])
    with op.batch_alter_table("detections", schema=None) as batch_op:
        batch_op.drop_column("model_version")
        batch_op.drop_column("detector")

    with op.batch_alter_table("scan_runs", schema=None) as batch_op:
        batch_op.drop_column("not_before")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("holder")


def _model_version(result: Any) -> str:
    version = result.get("model_version") if isinstance(result, dict) else None
    return str(version or "unknown")[:64]


def _set_primary_key(columns: list[str]) -> None:
    """PostgreSQL changes the key in place; SQLite rebuilds the table (batch mode) with the
    detector column declared part of the key (or not)."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("detections_pkey", "detections", type_="primary")
        op.create_primary_key("detections_pkey", "detections", columns)
        return
    detector = sa.Column(
        "detector", sa.String(32), nullable=False, primary_key="detector" in columns
    )
    with op.batch_alter_table("detections", recreate="always", reflect_args=(detector,)):
        pass
