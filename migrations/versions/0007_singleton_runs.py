"""Singleton job runs (rollups and retention run once per period across shards).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Revisions own their types: a later change to the models must not rewrite history.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create ``singleton_runs``."""
    op.create_table(
        "singleton_runs",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        _at("period_start"),
        sa.Column("instance", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        _at("started_at"),
        _at("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_singleton_runs")),
        sa.UniqueConstraint("name", "period_start", name=op.f("uq_singleton_runs_name_period_start")),
    )


def downgrade() -> None:
    """Drop ``singleton_runs``."""
    op.drop_table("singleton_runs")
