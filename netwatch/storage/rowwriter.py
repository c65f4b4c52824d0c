"""Writing one table's rows to the database: in this process, or in a child process of its own.

The work itself is :class:`~netwatch.storage.driverwriter.DriverRowWriter`: bind the rows, hand
them to the driver's ``executemany``, and after a refused batch keep the good rows one by one.
This module is its SQLAlchemy side: :func:`compile_plan` compiles each statement and names the
conversions SQLAlchemy would apply to its parameters, and :func:`connect_spec` says how SQLAlchemy
would connect, so the child needs neither SQLAlchemy nor the models.

Binding holds the GIL, and in the province soak (``benchmarks/soak.py``, no scrapes) a writer
thread doing that for ~2,900 rows/s kept the polling loop waiting for the GIL at its socket calls:
SNMP walks hit their deadline 14,415 times in 10 minutes; with the writes taken out of the process,
1,430 times in 6. :class:`ProcessRowWriter` runs the writes in a child process, so the writer
thread of :class:`~netwatch.storage.writer.BatchWriter` only pickles a batch and waits on a pipe.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Dialect, Engine, Float, Table

from netwatch.errors import StorageError
from netwatch.storage.binds import WritePlan
from netwatch.storage.dml import statement_for
from netwatch.storage.driverwriter import ConnectSpec, DriverRowWriter, Refusals, WriteOutage
from netwatch.storage.engine import SQLITE_CONNECT_ARGS, SQLITE_PRAGMAS, in_memory
from netwatch.storage.models import Base, UTCDateTime

__all__ = ["ProcessRowWriter", "RowWriter", "compile_plan", "connect_spec"]


def compile_plan(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> WritePlan:
    """The statement :func:`statement_for` gives, compiled in the dialect's own parameter style,
    with the conversion SQLAlchemy would apply to each parameter.

    Raises:
        StorageError: a column's type has a bind processor :mod:`~netwatch.storage.binds` does
            not know (a new column type needs its conversion there first).
    """
    compiled = statement_for(dialect, table, columns).compile(dialect=dialect, column_keys=list(columns))
    names = tuple(compiled.positiontup or ()) if dialect.positional else columns
    if set(names) != set(columns) or len(names) != len(columns):
        raise StorageError(f"unexpected parameters {names} in the insert for {table.name}")
    converters = tuple(_converter_name(dialect, table, name) for name in names)
    # Plain str: SQLAlchemy's names are quoted_name, and unpickling one would import SQLAlchemy.
    plain = tuple(str.__str__(name) for name in names)
    return WritePlan(
        str.__str__(table.name), str.__str__(compiled.string), plain, converters, bool(dialect.positional)
    )


def _converter_name(dialect: Dialect, table: Table, column: str) -> str | None:
    """The :data:`~netwatch.storage.binds.CONVERTERS` name doing what SQLAlchemy's bind processor
    for the column does (None: SQLAlchemy passes the value as it is)."""
    column_type = table.c[column].type
    if isinstance(column_type, UTCDateTime):
        return "sqlite_utc_text" if dialect.name == "sqlite" else "utc"
    if column_type.dialect_impl(dialect).bind_processor(dialect) is None:
        return None
    if isinstance(column_type, Boolean):
        return "bool" if dialect.supports_native_boolean else "bool_as_int"
    if isinstance(column_type, Float):
        return "float"
    raise StorageError(f"no driver-level conversion for {table.name}.{column} ({column_type!r})")


def connect_spec(engine: Engine) -> ConnectSpec:
    """How ``engine`` connects, for a process without SQLAlchemy: the driver, the arguments the
    dialect gives its ``connect``, SQLite's pragmas, and PostgreSQL's pre-ping."""
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs.pop("context", None)  # psycopg adapters SQLAlchemy adds for reading inet and JSON
    driver = engine.dialect.loaded_dbapi.__name__
    if engine.dialect.name == "sqlite":
        return ConnectSpec(driver, tuple(args), {**kwargs, **SQLITE_CONNECT_ARGS}, SQLITE_PRAGMAS)
    return ConnectSpec(driver, tuple(args), kwargs, ping=True)


class _Plans:
    """Compiled plans by table and columns: compiling costs a millisecond, batches come each second."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._tables: dict[str, Table] = dict(Base.metadata.tables)
        self._plans: dict[tuple[str, tuple[str, ...]], WritePlan] = {}

    def for_rows(self, table_name: str, rows: Sequence[Mapping[str, Any]]) -> WritePlan:
        """The plan for the columns ``rows`` carry, in the table's column order."""
        table = self._tables[table_name]
        present: set[str] = set()
        for row in rows:
            present.update(row)
        columns = tuple(c.key for c in table.columns if c.key in present)
        plan = self._plans.get((table_name, columns))
        if plan is None:
            plan = self._plans[(table_name, columns)] = compile_plan(self._dialect, table, columns)
        return plan


class _PoolConnections:
    """The engine's pooled connections (pre-ping, SQLite pragmas and all), for writes in-process."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.driver = engine.dialect.loaded_dbapi

    def acquire(self) -> Any:
        return self._engine.raw_connection()

    def release(self, connection: Any, *, broken: bool) -> None:
        if broken:
            connection.invalidate()
        else:
            connection.close()


class RowWriter:
    """Writes batches of one table's rows through one engine, in the calling thread."""

    def __init__(self, engine: Engine) -> None:
        self._plans = _Plans(engine.dialect)
        self._writer = DriverRowWriter(_PoolConnections(engine))

    def write(self, table_name: str, rows: Sequence[Mapping[str, Any]]) -> Refusals:
        """Write ``rows`` to the table in one transaction; a refused batch is retried row by row
        and only the bad rows are dropped.

        Raises:
            WriteOutage: the database is unreachable, locked or full; nothing was written.
        """
        return self._writer.write(self._plans.for_rows(table_name, rows), rows)

    def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""


class ProcessRowWriter:
    """A :class:`~netwatch.storage.driverwriter.DriverRowWriter` in a child process (started on
    first use, restarted if it dies).

    A plain child on two pipes, not a ``multiprocessing`` pool: a pool's worker keeps both ends
    of its queues and outlives a killed parent, and its resource tracker is one more process.
    """

    def __init__(self, engine: Engine) -> None:
        if in_memory(engine.url):
            raise StorageError("an in-memory SQLite database cannot be written from another process")
        self._plans = _Plans(engine.dialect)
        self._connect = connect_spec(engine)
        self._child: subprocess.Popen[bytes] | None = None

    def write(self, table_name: str, rows: Sequence[Mapping[str, Any]]) -> Refusals:
        """As :meth:`RowWriter.write`; a child that died is an outage (the batch is retried)."""
        plan = self._plans.for_rows(table_name, rows)
        child = self._child or self._start()
        assert child.stdin is not None and child.stdout is not None
        try:
            pickle.dump((plan, [dict(row) for row in rows]), child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            child.stdin.flush()
            outcome = pickle.load(child.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            self._stop_child(child, timeout=1.0)
            raise WriteOutage("the database writer process died; starting a new one") from None
        if isinstance(outcome, str):
            raise WriteOutage(outcome)
        if not isinstance(outcome, Refusals):
            raise WriteOutage(f"the database writer process answered {type(outcome).__name__}")
        return outcome

    @property
    def pid(self) -> int | None:
        """The child's process id, None before the first batch."""
        return self._child.pid if self._child is not None else None

    def _start(self) -> subprocess.Popen[bytes]:
        # The package's own directory first: the child imports this module, wherever it was run from.
        root = str(Path(__file__).resolve().parents[2])
        # (an empty entry would put the working directory on the child's path)
        paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        child = subprocess.Popen(
            [sys.executable, "-m", "netwatch.storage.driverwriter"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdin is not None
        # The connect arguments (and any password in them) go down the pipe, never on the command line.
        pickle.dump(self._connect, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.flush()
        self._child = child
        return child

    def _stop_child(self, child: subprocess.Popen[bytes], timeout: float) -> None:
        self._child = None
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if not _exited(child, timeout):
            child.kill()
            child.wait()

    def close(self) -> None:
        """Stop the child once its batch is done."""
        if self._child is not None:
            self._stop_child(self._child, timeout=30.0)


def _exited(child: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` for ``child`` to exit. Not ``Popen.wait(timeout)``: it sleeps with
    ``clock_nanosleep``, which fails with EINVAL under a shifted clock (libfaketime, as the
    clock-step tests run the daemon), and a shutdown must not fail on the clock."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while child.poll() is None:
        if time.monotonic() >= deadline:
            return False
        pause.wait(0.02)
    return True
