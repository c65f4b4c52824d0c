"""The outage ledger: intervals a site spent down, unreachable, degraded or in maintenance.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Revisions own their types: a later change to the models must not rewrite history.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the outage ledger."""
    op.create_table(
        "outages",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outages")),
        sa.UniqueConstraint("site", "state", "started_at", name=op.f("uq_outages_site_state_started_at")),
    )
    op.create_index(op.f("ix_outages_started_at"), "outages", ["started_at"])
    op.create_index(op.f("ix_outages_ended_at"), "outages", ["ended_at"])


def downgrade() -> None:
    """Drop the outage ledger."""
    op.drop_index(op.f("ix_outages_ended_at"), table_name="outages")
    op.drop_index(op.f("ix_outages_started_at"), table_name="outages")
    op.drop_table("outages")
