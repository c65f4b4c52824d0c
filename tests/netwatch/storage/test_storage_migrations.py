"""Migrations build exactly the models' schema, on SQLite and PostgreSQL, without an alembic.ini."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from netwatch.errors import MigrationError
from netwatch.storage.migrate import check, current_revision, head_revision, upgrade
from netwatch.storage.models import Base


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
