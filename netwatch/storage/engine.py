"""Engines for the two supported backends: SQLite (WAL, the default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from netwatch.errors import StorageError
from netwatch.storage.driverwriter import run_statements

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_CONNECT_ARGS",
    "SQLITE_PRAGMAS",
    "create_engine_for",
    "in_memory",
    "normalize_url",
    "safe_url",
]

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a SQLite statement waits for another writer's lock before failing."""

SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
"""What every SQLite connection is opened with, besides its file."""

SQLITE_PRAGMAS: tuple[str, ...] = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
)
"""What every SQLite connection runs first: WAL so readers never wait for the writer, and fsync only
at checkpoints (a power cut may lose the last commits, never corrupt the file)."""


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL: psycopg 3 for a bare ``postgresql://``, absolute paths for SQLite files."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"invalid database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres") and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        database = parsed.database or ""
        # A file relative to the working directory, fixed now so a later chdir does not move it.
        if database and database != ":memory:" and not database.startswith("file:"):
            parsed = parsed.set(database=os.path.abspath(database))
    elif backend != "postgresql":
        raise StorageError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://…")
    return parsed


def in_memory(url: str | URL) -> bool:
    """True for an in-memory SQLite database: it lives in one process and is gone with it."""
    parsed = make_url(url)
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and (
        not database or database == ":memory:" or "mode=memory" in database
    )


def safe_url(url: str | URL) -> str:
    """The URL as text with its password hidden, fit for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    run_statements(dbapi_connection, SQLITE_PRAGMAS)


def create_engine_for(url: str | URL) -> Engine:
    """An engine for ``url``; SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args=dict(SQLITE_CONNECT_ARGS))
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # Connections die with a server restart; pre-ping spares the writer one failed batch.
        engine = create_engine(parsed, pool_pre_ping=True)
    log.debug("database engine for %s", parsed.render_as_string(hide_password=True))
    return engine
