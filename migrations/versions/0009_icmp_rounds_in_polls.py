"""ICMP rounds in the poll log: one row per round instead of a poll row and a sample row.

``polls`` gains the round's figures (``sent``, ``received``, RTT and jitter; NULL for SNMP polls and
for rounds that measured nothing), ``icmp_samples`` becomes a read-only view of them with the same
columns, so SQL written against it keeps working. At a province's 1,000 rounds a second this halves
the ICMP rows and index entries the writer makes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

ROUND_COLUMNS = (
    ("sent", sa.Integer),
    ("received", sa.Integer),
    ("rtt_min_seconds", sa.Float),
    ("rtt_avg_seconds", sa.Float),
    ("rtt_max_seconds", sa.Float),
    ("jitter_seconds", sa.Float),
)
_NAMES = ", ".join(name for name, _ in ROUND_COLUMNS)

MIGRATED_RUN_ID = "migrated-0009"
"""``run_id`` of poll rows made for samples whose poll was already deleted (``raw_days`` longer than
``polls_days``), so no round is lost; their duration is unknown and written as 0."""

VIEW = (
    "CREATE VIEW icmp_samples AS SELECT id, target, scheduled_at, started_at, "
    f"{_NAMES} FROM polls WHERE kind = 'icmp' AND sent IS NOT NULL"
)


def upgrade() -> None:
    """Move every ICMP sample into its poll's row, then replace the table by the view."""
    for name, column_type in ROUND_COLUMNS:
        op.add_column("polls", sa.Column(name, column_type(), nullable=True))
    op.execute(
        f"UPDATE polls SET ({_NAMES}) = (SELECT {', '.join('s.' + n for n, _ in ROUND_COLUMNS)} "
        "FROM icmp_samples AS s WHERE s.target = polls.target AND s.scheduled_at = polls.scheduled_at) "
        "WHERE kind = 'icmp'"
    )
    op.execute(
        "INSERT INTO polls (target, kind, scheduled_at, started_at, duration_seconds, success, reason, "
        f"run_id, on_time, {_NAMES}) "
        "SELECT s.target, 'icmp', s.scheduled_at, s.started_at, 0, s.received > 0, NULL, "
        f"'{MIGRATED_RUN_ID}', NULL, {', '.join('s.' + n for n, _ in ROUND_COLUMNS)} FROM icmp_samples AS s "
        "WHERE NOT EXISTS (SELECT 1 FROM polls AS p WHERE p.kind = 'icmp' AND p.target = s.target "
        "AND p.scheduled_at = s.scheduled_at)"
    )
    op.drop_index(op.f("ix_icmp_samples_scheduled_at"), table_name="icmp_samples")
    op.drop_table("icmp_samples")
    op.execute(VIEW)


def downgrade() -> None:
    """Back to the table, filled from the rounds in ``polls``."""
    op.execute("DROP VIEW icmp_samples")
    op.create_table(
        "icmp_samples",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
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
    op.execute(
        f"INSERT INTO icmp_samples (target, scheduled_at, started_at, {_NAMES}) "
        f"SELECT target, scheduled_at, started_at, {_NAMES} FROM polls "
        "WHERE kind = 'icmp' AND sent IS NOT NULL ORDER BY scheduled_at, id"
    )
    op.execute(f"DELETE FROM polls WHERE run_id = '{MIGRATED_RUN_ID}'")
    with op.batch_alter_table("polls") as batch:
        for name, _ in reversed(ROUND_COLUMNS):
            batch.drop_column(name)
