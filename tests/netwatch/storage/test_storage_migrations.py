"""Migrations build exactly the models' schema, on SQLite and PostgreSQL, without an alembic.ini."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text

from netwatch.errors import MigrationError
from netwatch.storage.migrate import alembic_config, check, current_revision, head_revision, upgrade
from netwatch.storage.models import Base, Poll
from tests.netwatch.storage.rows import T0


def test_upgrade_empty_database_to_head_has_no_drift(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini within reach: the runtime must not need one
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    check(engine)
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}


def test_upgrading_twice_is_a_no_op(migrated: Engine) -> None:
    upgrade(migrated)
    assert current_revision(migrated) == head_revision()
    check(migrated)


def test_upgrade_from_url(db_url: str, engine: Engine) -> None:
    upgrade(db_url)
    assert current_revision(engine) == head_revision()


def test_check_reports_drift(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(text("DROP INDEX ix_polls_scheduled_at"))
    with pytest.raises(MigrationError, match="ix_polls_scheduled_at"):
        check(migrated)


def test_upgrade_to_unknown_revision_is_a_migration_error(engine: Engine) -> None:
    with pytest.raises(MigrationError, match="9999"):
        upgrade(engine, "9999")


def _rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def test_0009_moves_every_icmp_sample_into_its_poll_row_and_back(engine: Engine) -> None:
    upgrade(engine, "0008")
    with engine.begin() as conn:
        polls = [
            ("r1", "icmp", 0, True),  # with its sample
            ("r1", "icmp", 1, False),  # a discarded round: no sample
            ("r1", "snmp", 0, True),  # an SNMP poll at the same time as r1's round
        ]
        for target, kind, minute, success in polls:
            at = T0 + timedelta(minutes=minute)
            conn.execute(
                text(
                    "INSERT INTO polls (target, kind, scheduled_at, started_at, duration_seconds, success,"
                    " reason, run_id, on_time) VALUES (:t, :k, :at, :at, 0.5, :ok, NULL, 'run-1', TRUE)"
                ),
                {"t": target, "k": kind, "at": at, "ok": success},
            )
        samples = [("r1", 0, 3, 0.002), ("r2", 5, 0, None)]  # r2's poll already deleted (polls_days)
        for target, minute, received, rtt in samples:
            at = T0 + timedelta(minutes=minute)
            conn.execute(
                text(
                    "INSERT INTO icmp_samples (target, scheduled_at, started_at, sent, received,"
                    " rtt_min_seconds, rtt_avg_seconds, rtt_max_seconds, jitter_seconds)"
                    " VALUES (:t, :at, :at, 3, :r, :rtt, :rtt, :rtt, NULL)"
                ),
                {"t": target, "at": at, "r": received, "rtt": rtt},
            )

    upgrade(engine)
    check(engine)
    with engine.connect() as conn:
        moved = conn.execute(
            select(Poll.target, Poll.kind, Poll.scheduled_at, Poll.success, Poll.run_id, Poll.sent,
                   Poll.received, Poll.rtt_avg_seconds).order_by(Poll.target, Poll.scheduled_at, Poll.kind)
        ).all()  # fmt: skip
    assert [tuple(row) for row in moved] == [
        ("r1", "icmp", T0, True, "run-1", 3, 3, 0.002),
        ("r1", "snmp", T0, True, "run-1", None, None, None),
        ("r1", "icmp", T0 + timedelta(minutes=1), False, "run-1", None, None, None),
        ("r2", "icmp", T0 + timedelta(minutes=5), False, "migrated-0009", 3, 0, None),
    ]
    # SQL written against the table reads the same rounds from the view.
    assert _rows(engine, "SELECT target, sent, received FROM icmp_samples ORDER BY target") == [
        ("r1", 3, 3),
        ("r2", 3, 0),
    ]
    assert "icmp_samples" not in inspect(engine).get_table_names()

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0008")
    assert _rows(
        engine, "SELECT target, sent, received, rtt_avg_seconds FROM icmp_samples ORDER BY target"
    ) == [("r1", 3, 3, 0.002), ("r2", 3, 0, None)]
    assert _rows(engine, "SELECT target, kind FROM polls ORDER BY target, kind, id") == [
        ("r1", "icmp"),
        ("r1", "icmp"),
        ("r1", "snmp"),
    ]
    upgrade(engine)
    check(engine)
