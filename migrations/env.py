"""Alembic environment: metadata from netwatch's storage models, the URL from the caller or NETWATCH_DB.

netwatch itself hands over an open connection (``config.attributes["connection"]``); a developer
running ``alembic`` from the repository gives ``sqlalchemy.url`` in ``alembic.ini``, ``-x db=URL``
or ``NETWATCH_DB``.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from netwatch.storage.engine import create_engine_for, normalize_url
from netwatch.storage.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("db")
        or config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("NETWATCH_DB")
    )
    if not url:
        raise RuntimeError("no database URL: set NETWATCH_DB, sqlalchemy.url or pass -x db=URL")
    return str(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL for the URL's dialect without connecting."""
    url = normalize_url(_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the connection netwatch passed in, or a new one to the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = create_engine_for(_url())
    try:
        with engine.begin() as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
