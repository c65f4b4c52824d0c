"""Link-level intervals (a site's links' down and degraded time) and the sites' links mirror.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Revisions own their types: a later change to the models must not rewrite history.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create ``site_links`` and ``link_outages``."""
    op.create_table(
        "site_links",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("link", sa.String(255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("interface", sa.String(255), nullable=True),
        sa.Column("contracted_bps", sa.Float(), nullable=True),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("site", "link", name=op.f("pk_site_links")),
    )
    op.create_table(
        "link_outages",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("link", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(255), nullable=True),
        _at("started_at"),
        _at("ended_at", nullable=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_outages")),
        sa.UniqueConstraint(
            "site", "link", "state", "started_at", name=op.f("uq_link_outages_site_link_state_started_at")
        ),
    )
    op.create_index(op.f("ix_link_outages_started_at"), "link_outages", ["started_at"])
    op.create_index(op.f("ix_link_outages_ended_at"), "link_outages", ["ended_at"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_link_outages_ended_at"), table_name="link_outages")
    op.drop_index(op.f("ix_link_outages_started_at"), table_name="link_outages")
    op.drop_table("link_outages")
    op.drop_table("site_links")
