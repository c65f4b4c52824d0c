"""Shared fixtures: databases (SQLite and a real PostgreSQL) for every test that needs one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from tests.support.postgres import postgres_db_url, postgres_url
from tests.support.snmpd import SnmpAgent, running_snmpd

__all__ = ["postgres_db_url", "postgres_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An empty database: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'netwatch.db'}"
    url: str = request.getfixturevalue("postgres_db_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the empty database, disposed after the test."""
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    """The engine, its database upgraded to head."""
    upgrade(engine)
    return engine


@pytest.fixture
def sqlite_db(tmp_path: Any) -> Iterator[tuple[str, Engine]]:
    """A migrated SQLite database: its file path and an engine on it (for lock tests)."""
    path = tmp_path / "netwatch.db"
    eng = create_engine_for(f"sqlite:///{path}")
    upgrade(eng)
    yield str(path), eng
    eng.dispose()


@pytest.fixture(scope="session")
def snmpd() -> Iterator[SnmpAgent]:
    """A net-snmp agent on a loopback port, with the v3 users of tests.support.snmpd.USERS."""
    with running_snmpd() as agent:
        yield agent
