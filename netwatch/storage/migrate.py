"""Schema migrations through Alembic, configured in code so no ``alembic.ini`` is needed at run time."""

from __future__ import annotations

import io
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.errors import MigrationError
from netwatch.storage.engine import create_engine_for, safe_url

__all__ = ["alembic_config", "check", "current_revision", "head_revision", "upgrade"]


def _script_location() -> str:
    return str(resources.files("migrations"))


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config over the installed ``migrations`` package, bound to ``connection``."""
    # Alembic prints progress to stdout; netwatch reports through logging and its own CLI output.
    config = Config(stdout=io.StringIO())
    config.set_main_option("script_location", _script_location())
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _with_connection(url_or_engine: str | Engine, action: Any) -> None:
    owned = isinstance(url_or_engine, str)
    engine = create_engine_for(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.begin() as conn:
            action(alembic_config(conn))
    finally:
        if owned:
            engine.dispose()


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (a no-op when it is there already)."""
    try:
        _with_connection(url_or_engine, lambda config: command.upgrade(config, revision))
    except (CommandError, SQLAlchemyError) as exc:
        where = safe_url(url_or_engine if isinstance(url_or_engine, str) else url_or_engine.url)
        raise MigrationError(f"cannot upgrade {where} to {revision}: {exc}") from exc


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at; None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision this netwatch ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def check(engine: Engine) -> None:
    """Raise MigrationError listing the differences when the models and the schema drift apart."""
    try:
        _with_connection(engine, command.check)
    except CommandError as exc:
        raise MigrationError(f"schema and models differ: {exc}") from exc
