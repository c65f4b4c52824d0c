"""Writing one table's rows through a DB-API driver, in this process or in the writer's child.

:class:`DriverRowWriter` binds the rows of a batch (:class:`~netwatch.storage.binds.WritePlan`),
hands them to the driver's ``executemany`` in one transaction, and after a refused batch keeps
the good rows one by one. It imports no SQLAlchemy, so the child process that runs it
(``python -m netwatch.storage.driverwriter``, started by
:class:`~netwatch.storage.rowwriter.ProcessRowWriter`) holds only the driver: a peak of 27 MB on SQLite
(44 MB with psycopg) writing 200,000 rows, against 60 MB (67 MB) with SQLAlchemy loaded
(``benchmarks/storage_write.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from netwatch.storage.binds import WritePlan

__all__ = [
    "ConnectSpec",
    "DriverRowWriter",
    "Refusals",
    "WriteOutage",
    "child_main",
    "describe_error",
    "is_transient",
    "run_statements",
]

log = logging.getLogger(__name__)

_CHUNK_ROWS = 1000


class WriteOutage(Exception):
    """The database is unreachable, locked or full: nothing of the batch was written."""


@dataclass(frozen=True, slots=True)
class Refusals:
    """Rows of a batch the database refused (constraint, type), and the last reason given."""

    count: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectSpec:
    """How to open a connection as SQLAlchemy would: the driver module, the arguments its dialect
    gives ``connect``, the statements its connect hook runs (SQLite's pragmas), and whether a kept
    connection is pinged before each batch (``pool_pre_ping``)."""

    driver: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    setup: tuple[str, ...] = ()
    ping: bool = False

    def __repr__(self) -> str:  # the arguments hold the password
        return f"ConnectSpec(driver={self.driver!r})"


def run_statements(connection: Any, statements: Sequence[str]) -> None:
    """Execute ``statements`` on a DB-API connection, one cursor for all (no commit)."""
    cursor = connection.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()


def describe_error(exc: BaseException) -> str:
    """The driver's own message on one line, without the SQL statement and its parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(line.strip() for line in str(orig).splitlines() if line.strip())
    return f"{type(orig).__name__}: {text[:300]}"


def is_transient(exc: BaseException, driver: Any) -> bool:
    """True for errors that a retry may cure (connection lost, database locked or full): the
    driver's ``OperationalError`` and ``InterfaceError`` (PEP 249), bare or wrapped by SQLAlchemy."""
    orig = getattr(exc, "orig", None) or exc
    return isinstance(orig, driver.OperationalError | driver.InterfaceError)


class Connections(Protocol):
    """Where a :class:`DriverRowWriter` gets its DB-API connection and gives it back."""

    driver: Any
    """The DB-API module (its exception classes tell an outage from a refusal)."""

    def acquire(self) -> Any:
        """A connection with no transaction open."""

    def release(self, connection: Any, *, broken: bool) -> None:
        """Give ``connection`` back; ``broken`` ones are not used again."""


class DirectConnections:
    """One connection of the driver's own, kept between batches and replaced when it broke."""

    def __init__(self, spec: ConnectSpec) -> None:
        self._spec = spec
        self.driver = importlib.import_module(spec.driver)
        self._connection: Any = None

    def acquire(self) -> Any:
        if self._connection is not None and self._spec.ping and not self._alive(self._connection):
            self.release(self._connection, broken=True)
        if self._connection is None:
            connection = self.driver.connect(*self._spec.args, **self._spec.kwargs)
            try:
                self._run(connection, self._spec.setup)
            except BaseException:
                with contextlib.suppress(Exception):
                    connection.close()
                raise
            self._connection = connection
        return self._connection

    def _alive(self, connection: Any) -> bool:
        """SQLAlchemy's pre-ping: a server restart since the last batch costs a reconnect, not an
        outage."""
        try:
            self._run(connection, ("SELECT 1",))
        except Exception:
            return False
        return True

    @staticmethod
    def _run(connection: Any, statements: Sequence[str]) -> None:
        run_statements(connection, statements)
        connection.commit()

    def release(self, connection: Any, *, broken: bool) -> None:
        if broken:
            self._connection = None
            with contextlib.suppress(Exception):
                connection.close()

    def close(self) -> None:
        """Close the kept connection."""
        if self._connection is not None:
            self.release(self._connection, broken=True)


class DriverRowWriter:
    """Writes batches of one table's rows through a DB-API connection, in the calling thread."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def write(self, plan: WritePlan, rows: Sequence[Mapping[str, Any]]) -> Refusals:
        """Write ``rows`` with ``plan`` in one transaction; a refused batch is retried row by row
        and only the bad rows are dropped.

        Raises:
            WriteOutage: the database is unreachable, locked or full; nothing was written.
        """
        try:
            self._execute(plan.sql, plan.bind(rows))  # a row it cannot bind refuses the batch too
            return Refusals()
        except Exception as exc:
            if self._transient(exc):
                raise WriteOutage(describe_error(exc)) from None
            log.error(
                "database refused a batch of %d rows for %s: %s", len(rows), plan.table, describe_error(exc)
            )
        return self._write_one_by_one(plan, rows)

    def _execute(self, sql: str, params: list[Any]) -> None:
        """``executemany`` in chunks, one transaction; rolled back on any error."""
        connection = self._connections.acquire()
        broken = False
        try:
            cursor = connection.cursor()
            try:
                for start in range(0, len(params), _CHUNK_ROWS):
                    cursor.executemany(sql, params[start : start + _CHUNK_ROWS])
            finally:
                cursor.close()
            connection.commit()
        except BaseException as exc:
            broken = self._transient(exc) if isinstance(exc, Exception) else True
            with contextlib.suppress(Exception):
                connection.rollback()
            raise
        finally:
            self._connections.release(connection, broken=broken)

    def _write_one_by_one(self, plan: WritePlan, rows: Sequence[Mapping[str, Any]]) -> Refusals:
        """After a refused batch, keep the good rows: one transaction each, the bad ones dropped."""
        refused, last_error = 0, None
        for row in rows:
            try:
                self._execute(plan.sql, plan.bind([row]))
            except Exception as exc:
                if self._transient(exc):
                    raise WriteOutage(describe_error(exc)) from None
                refused += 1
                last_error = describe_error(exc)
        return Refusals(refused, last_error)

    def _transient(self, exc: BaseException) -> bool:
        return is_transient(exc, self._connections.driver)


def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The child's loop: the :class:`ConnectSpec`, then (plan, rows) batches, each answered with
    its refusals or an outage's description (a driver's exceptions do not always survive
    pickling). It ends when the parent closes the pipe, or dies: the parent alone holds the pipe's
    other end, so a parent killed by SIGKILL or the OOM killer leaves no orphan."""
    connections = DirectConnections(pickle.load(requests))
    writer = DriverRowWriter(connections)
    try:
        while True:
            try:
                plan, rows = pickle.load(requests)
            except EOFError:
                return
            try:
                outcome: Refusals | str = writer.write(plan, rows)
            except WriteOutage as outage:
                outcome = str(outage)
            pickle.dump(outcome, answers, protocol=pickle.HIGHEST_PROTOCOL)
            answers.flush()
    finally:
        connections.close()


def child_main() -> None:
    """The child process (``python -m netwatch.storage.driverwriter``)."""
    # A Ctrl-C or a SIGTERM to the whole process group must not end the child while the parent
    # is still flushing: the parent decides when it stops, by closing the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Answers get standard output's pipe to themselves; anything else printed goes to stderr.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    # Run the importable module's copy, so the answers pickle as netwatch.storage.driverwriter's types.
    from netwatch.storage.driverwriter import child_main as _main

    _main()
