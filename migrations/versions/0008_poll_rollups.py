"""Polls judged on time when recorded, and hourly poll rollups for the availability report.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Add ``polls.on_time`` (NULL for polls recorded before) and create ``poll_rollups``."""
    op.add_column("polls", sa.Column("on_time", sa.Boolean(), nullable=True))
    op.create_table(
        "poll_rollups",
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _at("bucket_start"),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("unjudged", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("target", "kind", "bucket_start", name=op.f("pk_poll_rollups")),
    )
    op.create_index(op.f("ix_poll_rollups_bucket_start"), "poll_rollups", ["bucket_start"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_poll_rollups_bucket_start"), table_name="poll_rollups")
    op.drop_table("poll_rollups")
    with op.batch_alter_table("polls") as batch:
        batch.drop_column("on_time")
    op.execute("DELETE FROM rollup_progress WHERE name = 'polls_1h'")
