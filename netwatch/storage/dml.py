"""Dialect-specific bulk statements: insert-or-ignore for append tables, upsert for state tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, Literal

from sqlalchemy import Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from netwatch.errors import StorageError
from netwatch.storage.models import Base

__all__ = [
    "WriteMode",
    "last_per_key",
    "primary_key_of",
    "statement_for",
    "table_named",
    "upsert_key",
    "write_mode",
]

WriteMode = Literal["append", "upsert"]
"""``append``: insert once, ignore a replayed duplicate; ``upsert``: replace by primary key."""


def table_named(name: str) -> Table:
    """The model table called ``name``; StorageError if there is none."""
    table = Base.metadata.tables.get(name)
    if table is None:
        raise StorageError(f"no table named {name!r}")
    return table


def write_mode(table: Table) -> WriteMode:
    """How the writer stores rows of ``table`` (from the model's ``info``)."""
    mode = table.info.get("write")
    if mode not in ("append", "upsert"):
        raise StorageError(f"table {table.name!r} says no write mode")
    return mode  # type: ignore[no-any-return]


def _insert(dialect: Dialect, table: Table) -> postgresql.Insert | sqlite.Insert:
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    if dialect.name == "sqlite":
        return sqlite.insert(table)
    raise StorageError(f"unsupported database dialect {dialect.name!r}")


def statement_for(dialect: Dialect, table: Table, columns: Iterable[str]) -> Insert:
    """The bulk statement for ``table`` given the columns the rows carry."""
    stmt = _insert(dialect, table)
    pk = list(upsert_key(table))
    if write_mode(table) == "append":
        return stmt.on_conflict_do_nothing()
    updates = {name: stmt.excluded[name] for name in columns if name not in pk}
    if not updates:
        return stmt.on_conflict_do_nothing(index_elements=pk)
    return stmt.on_conflict_do_update(index_elements=pk, set_=updates)


@cache  # called per row in a batch; a table's key never changes
def upsert_key(table: Table) -> tuple[str, ...]:
    """The columns an upsert matches on: ``info["upsert_key"]`` (a unique constraint, for tables
    with a surrogate id such as the outage ledger), else the primary key."""
    key = table.info.get("upsert_key")
    return tuple(key) if key else tuple(c.name for c in table.primary_key.columns)


def primary_key_of(table: Table, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The values of ``row``'s upsert key (see :func:`upsert_key`), in key order."""
    return tuple(row.get(name) for name in upsert_key(table))


def last_per_key(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Only the last row for each primary key, in the order those last rows came."""
    latest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    names = upsert_key(table)
    for row in rows:
        key = tuple(row.get(name) for name in names)
        latest.pop(key, None)
        latest[key] = row
    return list(latest.values())
