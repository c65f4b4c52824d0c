"""Engine set-up: SQLite tuned for a daemon writing beside readers, PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from netwatch.errors import StorageError
from netwatch.storage.engine import SQLITE_BUSY_TIMEOUT_MS, create_engine_for, normalize_url, safe_url


def test_sqlite_gets_wal_normal_sync_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'n.db'}")
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.execute(text(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "foreign_keys": 1,
    }


def test_relative_sqlite_file_resolves_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = create_engine_for("sqlite:///netwatch.db")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert engine.url.database == str(tmp_path / "netwatch.db")
    assert (tmp_path / "netwatch.db").exists()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://nw:pw@db.example/netwatch", "postgresql+psycopg"),
        ("postgres://nw:pw@db.example/netwatch", "postgresql+psycopg"),
        ("postgresql+psycopg://nw:pw@db.example/netwatch", "postgresql+psycopg"),
        ("sqlite:///:memory:", "sqlite"),
    ],
)
def test_urls_get_the_supported_driver(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


@pytest.mark.parametrize("given", ["mysql://u:p@h/db", "not a url"])
def test_unsupported_or_invalid_url_is_a_storage_error(given: str) -> None:
    with pytest.raises(StorageError) as caught:
        normalize_url(given)
    assert "p@h" not in str(caught.value)


def test_password_never_in_the_printable_url() -> None:
    shown = safe_url("postgresql://netwatch:Bí-mật%40123@10.0.0.5:5432/netwatch")
    assert "Bí" not in shown and "123" not in shown
    assert shown == "postgresql://netwatch:***@10.0.0.5:5432/netwatch"
