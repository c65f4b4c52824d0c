"""Writing one table's rows to the database: in this process, or in a child process of its own.

:class:`RowWriter` is the work: bind the rows with SQLAlchemy's own processors, hand them to the
driver's ``executemany``, and after a refused batch keep the good rows one by one. It holds the
GIL while it binds, and in the province soak (``benchmarks/soak.py``, no scrapes) a writer thread
doing that for ~2,900 rows/s kept the polling loop waiting for the GIL at its socket calls: SNMP
walks hit their deadline 14,415 times in 10 minutes; with the writes taken out of the process,
1,430 times in 6.
:class:`ProcessRowWriter` runs the same :class:`RowWriter` in a child process, so the writer thread
of :class:`~netwatch.storage.writer.BatchWriter` only pickles a batch and waits on a pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Dialect, Engine, Table
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from netwatch.errors import StorageError
from netwatch.storage.dml import statement_for
from netwatch.storage.engine import create_engine_for, in_memory
from netwatch.storage.models import Base, UTCDateTime

__all__ = ["ProcessRowWriter", "RowWriter", "WriteOutage", "describe_error"]

log = logging.getLogger(__name__)

_CHUNK_ROWS = 1000


class WriteOutage(Exception):
    """The database is unreachable, locked or full: nothing of the batch was written."""


@dataclass(frozen=True, slots=True)
class Refusals:
    """Rows of a batch the database refused (constraint, type), and the last reason given."""

    count: int = 0
    last_error: str | None = None


def describe_error(exc: BaseException) -> str:
    """The driver's own message on one line, without the SQL statement and its parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(line.strip() for line in str(orig).splitlines() if line.strip())
    return f"{type(orig).__name__}: {text[:300]}"


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry may cure (connection lost, database locked or full)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One table's bulk statement for one set of columns, compiled once, with its bind processors."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool

    @classmethod
    def compile(cls, dialect: Dialect, table: Table, columns: tuple[str, ...]) -> _Prepared:
        """Compile the statement :func:`statement_for` gives, in the dialect's own parameter style."""
        compiled = statement_for(dialect, table, columns).compile(dialect=dialect, column_keys=list(columns))
        names = tuple(compiled.positiontup or ()) if dialect.positional else columns
        if set(names) != set(columns) or len(names) != len(columns):
            raise StorageError(f"unexpected parameters {names} in the insert for {table.name}")
        # The same processors SQLAlchemy applies (UTCDateTime's checks and UTC conversion included).
        processors = tuple(_bind_processor(dialect, table.c[name].type) for name in names)
        return cls(compiled.string, names, processors, bool(dialect.positional))

    def bind(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The rows as driver parameters: tuples for a positional style, else dicts."""
        pairs = list(zip(self.names, self.processors, strict=True))
        if self.positional:
            return [tuple([row.get(n) if p is None else p(row.get(n)) for n, p in pairs]) for row in rows]
        return [{n: row.get(n) if p is None else p(row.get(n)) for n, p in pairs} for row in rows]


def _bind_processor(dialect: Dialect, column_type: Any) -> Callable[[Any], Any] | None:
    """The processor SQLAlchemy would apply to a column, or the one-step equivalent for UTC
    timestamps on SQLite (the same text; see :meth:`UTCDateTime.sqlite_text`)."""
    if dialect.name == "sqlite" and isinstance(column_type, UTCDateTime):
        return _last_text(partial(column_type.sqlite_text, dialect=dialect))
    processor: Callable[[Any], Any] | None = column_type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _last_text(to_text: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``to_text`` that gives the same object's text again without making it: the rows of one poll
    (an interface's, the poll's own) share its timestamps, and so do the polls of one scheduler
    tick; a pickled batch keeps that sharing."""
    last: list[Any] = [object(), None]

    def text(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, to_text(value)
        return last[1]

    return text


class RowWriter:
    """Writes batches of one table's rows through one engine, in the calling thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._tables: dict[str, Table] = dict(Base.metadata.tables)
        self._prepared: dict[tuple[str, tuple[str, ...]], _Prepared] = {}

    def write(self, table_name: str, rows: Sequence[Mapping[str, Any]]) -> Refusals:
        """Write ``rows`` to the table in one transaction; a refused batch is retried row by row
        and only the bad rows are dropped.

        Raises:
            WriteOutage: the database is unreachable, locked or full; nothing was written.
        """
        try:
            return self._write(self._tables[table_name], rows)
        except DBAPIError as exc:
            if is_transient(exc):
                raise WriteOutage(describe_error(exc)) from None
            raise

    def _write(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> Refusals:
        present: set[str] = set()
        for row in rows:
            present.update(row)
        columns = tuple(c.key for c in table.columns if c.key in present)
        prepared = self._prepared_for(table, columns)
        try:
            # Straight to the driver's executemany: SQLAlchemy's per-execution parameter handling
            # cost ~3× the driver's own work per row (profile of the soak).
            params = prepared.bind(rows)
            with self._engine.begin() as conn:
                for start in range(0, len(params), _CHUNK_ROWS):
                    conn.exec_driver_sql(prepared.sql, params[start : start + _CHUNK_ROWS])
            return Refusals()
        except Exception as exc:
            if is_transient(exc):
                raise
            log.error(
                "database refused a batch of %d rows for %s: %s", len(rows), table.name, describe_error(exc)
            )
        stmt = statement_for(self._engine.dialect, table, columns)
        return self._write_one_by_one(stmt, [{name: row.get(name) for name in columns} for row in rows])

    def _prepared_for(self, table: Table, columns: tuple[str, ...]) -> _Prepared:
        key = (table.name, columns)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = _Prepared.compile(self._engine.dialect, table, columns)
            self._prepared[key] = prepared
        return prepared

    def _write_one_by_one(self, stmt: Any, params: list[dict[str, Any]]) -> Refusals:
        """After a refused batch, keep the good rows: one transaction each, the bad ones dropped."""
        refused, last_error = 0, None
        for values in params:
            try:
                with self._engine.begin() as conn:
                    conn.execute(stmt, [values])
            except Exception as exc:
                if is_transient(exc):
                    raise
                refused += 1
                last_error = describe_error(exc)
        return Refusals(refused, last_error)

    def close(self) -> None:
        """Nothing to release: the engine belongs to the caller."""


def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The child's loop: the URL, then (table, rows) batches, each answered with its refusals or
    an outage's description (a driver's exceptions do not always survive pickling). It ends when
    the parent closes the pipe, or dies: the parent alone holds the pipe's other end, so a parent
    killed by SIGKILL or the OOM killer leaves no orphan."""
    writer = RowWriter(create_engine_for(pickle.load(requests)))
    while True:
        try:
            table_name, rows = pickle.load(requests)
        except EOFError:
            return
        try:
            outcome: Refusals | str = writer.write(table_name, rows)
        except WriteOutage as outage:
            outcome = str(outage)
        pickle.dump(outcome, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


class ProcessRowWriter:
    """A :class:`RowWriter` in a child process (started on first use, restarted if it dies).

    A plain child on two pipes, not a ``multiprocessing`` pool: a pool's worker keeps both ends
    of its queues and outlives a killed parent, and its resource tracker is one more process.
    """

    def __init__(self, engine: Engine) -> None:
        if in_memory(engine.url):
            raise StorageError("an in-memory SQLite database cannot be written from another process")
        self._url = engine.url.render_as_string(hide_password=False)
        self._child: subprocess.Popen[bytes] | None = None

    def write(self, table_name: str, rows: Sequence[Mapping[str, Any]]) -> Refusals:
        """As :meth:`RowWriter.write`; a child that died is an outage (the batch is retried)."""
        child = self._child or self._start()
        assert child.stdin is not None and child.stdout is not None
        try:
            pickle.dump(
                (table_name, [dict(row) for row in rows]), child.stdin, protocol=pickle.HIGHEST_PROTOCOL
            )
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
            [sys.executable, "-m", "netwatch.storage.rowwriter"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdin is not None
        # The URL (and any password in it) goes down the pipe, never on the command line.
        pickle.dump(self._url, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
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


def child_main() -> None:
    """The child process (``python -m netwatch.storage.rowwriter``)."""
    # A Ctrl-C or a SIGTERM to the whole process group must not end the child while the parent
    # is still flushing: the parent decides when it stops, by closing the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Answers get standard output's pipe to themselves; anything else printed goes to stderr.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    # Run the importable module's copy, so the answers pickle as netwatch.storage.rowwriter's types.
    from netwatch.storage.rowwriter import child_main as _main

    _main()
