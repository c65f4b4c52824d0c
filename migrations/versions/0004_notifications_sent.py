"""When each notification last went out (dedup and reminders across restarts).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the notifications table."""
    op.create_table(
        "notifications_sent",
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_notifications_sent")),
    )


def downgrade() -> None:
    """Drop the notifications table."""
    op.drop_table("notifications_sent")
