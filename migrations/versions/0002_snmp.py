"""SNMP: discovered interfaces, interface samples, device metric samples.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Revisions own their types: a later change to the models must not rewrite history.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _floats(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(name, sa.Float(), nullable=True) for name in names]


def upgrade() -> None:
    """Create the SNMP tables."""
    op.create_table(
        "interfaces",
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("ifindex", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ifname", sa.String(255), nullable=False),
        sa.Column("ifalias", sa.String(255), nullable=False),
        sa.Column("iftype", sa.Integer(), nullable=True),
        *_floats("speed_bps", "contracted_bps"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("device", "ifindex", name=op.f("pk_interfaces")),
    )
    op.create_table(
        "interface_samples",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("ifindex", sa.Integer(), nullable=False),
        _at("scheduled_at"),
        _at("started_at"),
        sa.Column("oper_up", sa.Boolean(), nullable=True),
        *_floats(
            "in_bps",
            "out_bps",
            "in_octets_total",
            "out_octets_total",
            "in_errors_total",
            "out_errors_total",
            "in_discards_total",
            "out_discards_total",
            "utilisation_in_ratio",
            "utilisation_out_ratio",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interface_samples")),
        sa.UniqueConstraint(
            "device", "ifindex", "scheduled_at", name=op.f("uq_interface_samples_device_ifindex_scheduled_at")
        ),
    )
    op.create_index(op.f("ix_interface_samples_scheduled_at"), "interface_samples", ["scheduled_at"])
    op.create_table(
        "device_metric_samples",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("labels", sa.String(512), nullable=False),
        _at("scheduled_at"),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_metric_samples")),
        sa.UniqueConstraint(
            "device",
            "metric",
            "labels",
            "scheduled_at",
            name=op.f("uq_device_metric_samples_device_metric_labels_scheduled_at"),
        ),
    )
    op.create_index(op.f("ix_device_metric_samples_scheduled_at"), "device_metric_samples", ["scheduled_at"])


def downgrade() -> None:
    """Drop the SNMP tables."""
    op.drop_index(op.f("ix_device_metric_samples_scheduled_at"), table_name="device_metric_samples")
    op.drop_table("device_metric_samples")
    op.drop_index(op.f("ix_interface_samples_scheduled_at"), table_name="interface_samples")
    op.drop_table("interface_samples")
    op.drop_table("interfaces")
