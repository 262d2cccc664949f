"""The schema of the last release without migrations (bot/adapters/database/migrations/baseline.py).

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from bot.adapters.database.migrations import baseline

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    baseline.metadata.create_all(op.get_bind())


def downgrade() -> None:
    baseline.metadata.drop_all(op.get_bind())
