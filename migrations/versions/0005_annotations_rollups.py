"""Outage annotations (audited corrections), interface and ICMP rollups, rollup progress.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Revisions own their types: a later change to the models must not rewrite history.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _floats(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(name, sa.Float(), nullable=True) for name in names]


def upgrade() -> None:
    """Create the annotation, rollup and progress tables."""
    op.create_table(
        "outage_annotations",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("outage_id", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(255), nullable=True),
        sa.Column("ticket", sa.String(128), nullable=True),
        sa.Column("reclassified_as", sa.String(16), nullable=True),
        sa.Column("author", sa.String(128), nullable=False),
        _at("created_at"),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outage_annotations")),
    )
    op.create_index(op.f("ix_outage_annotations_outage_id"), "outage_annotations", ["outage_id"])
    op.create_table(
        "interface_rollups",
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("ifindex", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("resolution", sa.String(8), nullable=False),
        _at("bucket_start"),
        sa.Column("samples", sa.Integer(), nullable=False),
        *_floats(
            "in_bps_avg",
            "out_bps_avg",
            "in_bps_max",
            "out_bps_max",
            "in_bps_p95",
            "out_bps_p95",
            "in_octets",
            "out_octets",
        ),
        sa.PrimaryKeyConstraint(
            "device", "ifindex", "resolution", "bucket_start", name=op.f("pk_interface_rollups")
        ),
    )
    op.create_index(op.f("ix_interface_rollups_bucket_start"), "interface_rollups", ["bucket_start"])
    op.create_table(
        "icmp_rollups",
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("resolution", sa.String(8), nullable=False),
        _at("bucket_start"),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        *_floats("rtt_min_seconds", "rtt_avg_seconds", "rtt_max_seconds"),
        sa.PrimaryKeyConstraint("target", "resolution", "bucket_start", name=op.f("pk_icmp_rollups")),
    )
    op.create_index(op.f("ix_icmp_rollups_bucket_start"), "icmp_rollups", ["bucket_start"])
    op.create_table(
        "rollup_progress",
        sa.Column("name", sa.String(64), nullable=False),
        _at("done_until"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_progress")),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("rollup_progress")
    op.drop_index(op.f("ix_icmp_rollups_bucket_start"), table_name="icmp_rollups")
    op.drop_table("icmp_rollups")
    op.drop_index(op.f("ix_interface_rollups_bucket_start"), table_name="interface_rollups")
    op.drop_table("interface_rollups")
    op.drop_index(op.f("ix_outage_annotations_outage_id"), table_name="outage_annotations")
    op.drop_table("outage_annotations")
