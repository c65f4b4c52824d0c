"""Initial schema: inventory mirror, polls and ICMP samples, instance runs, persisted states.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Revisions own their types: a later change to the models must not rewrite history.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "sites",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("parent", sa.String(length=64), nullable=True),
        sa.Column("sla_target", sa.Float(), nullable=False),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_sites")),
    )
    op.create_table(
        "devices",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("upstream", sa.String(length=255), nullable=True),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_site"), "devices", ["site"])

    op.create_table(
        "polls",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        _at("scheduled_at"),
        _at("started_at"),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polls")),
        sa.UniqueConstraint("target", "kind", "scheduled_at", name=op.f("uq_polls_target_kind_scheduled_at")),
    )
    op.create_index(op.f("ix_polls_scheduled_at"), "polls", ["scheduled_at"])

    op.create_table(
        "icmp_samples",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        _at("scheduled_at"),
        _at("started_at"),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("rtt_min_seconds", sa.Float(), nullable=True),
        sa.Column("rtt_avg_seconds", sa.Float(), nullable=True),
        sa.Column("rtt_max_seconds", sa.Float(), nullable=True),
        sa.Column("jitter_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_icmp_samples")),
        sa.UniqueConstraint("target", "scheduled_at", name=op.f("uq_icmp_samples_target_scheduled_at")),
    )
    op.create_index(op.f("ix_icmp_samples_scheduled_at"), "icmp_samples", ["scheduled_at"])

    op.create_table(
        "instance_runs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.Column("shard", sa.String(length=32), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        _at("started_at"),
        _at("heartbeat_at"),
        _at("stopped_at", nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_instance_runs")),
    )
    op.create_index(op.f("ix_instance_runs_started_at"), "instance_runs", ["started_at"])

    op.create_table(
        "target_states",
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _at("since", nullable=True),
        sa.Column("failed_rounds", sa.Integer(), nullable=False),
        sa.Column("good_rounds", sa.Integer(), nullable=False),
        _at("first_failed_at", nullable=True),
        _at("first_good_at", nullable=True),
        _at("last_poll_at", nullable=True),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("target", "kind", name=op.f("pk_target_states")),
    )
    op.create_table(
        "site_states",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _at("since", nullable=True),
        sa.Column("cause", sa.String(length=255), nullable=True),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_site_states")),
    )


def downgrade() -> None:
    """Drop every table of the first schema (its data with it)."""
    for table in (
        "site_states",
        "target_states",
        "instance_runs",
        "icmp_samples",
        "polls",
        "devices",
        "sites",
    ):
        op.drop_table(table)
