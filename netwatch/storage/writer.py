"""The batched writer: rows put from the event loop, written by one thread, never blocking the loop.

``put`` only appends to a bounded in-memory queue. A background thread drains it in batches, one
transaction per table per batch, in the order rows were put. Append tables are written with
``INSERT … ON CONFLICT DO NOTHING`` so a replayed sample is a no-op; state tables are upserted on
their primary key and only the last row per key in a batch is sent. While the database is
unreachable or locked, rows are kept and retried with exponential backoff; the outage is logged
once. Above ``max_queue`` pending rows the newest are dropped, counted and logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from netwatch.errors import StorageError
from netwatch.storage.dml import last_per_key, statement_for, write_mode
from netwatch.storage.engine import safe_url
from netwatch.storage.models import Base

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

_CHUNK_ROWS = 1000
_DROP_LOG_INTERVAL = 10.0


class _Abandoned(Exception):
    """The writer is stopping while the database is down: what is left cannot be written."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _describe(exc: BaseException) -> str:
    """The driver's own message on one line, without the SQL statement and its parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(line.strip() for line in str(orig).splitlines() if line.strip())
    return f"{type(orig).__name__}: {text[:300]}"


class BatchWriter:
    """Writes rows to the database in batches from a background thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_queue: int = 200_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise StorageError(f"unsupported database dialect {engine.dialect.name!r}")
        if batch_size < 1 or max_queue < 1 or flush_interval <= 0 or retry_initial <= 0:
            raise ValueError("batch_size, max_queue, flush_interval and retry_initial must be positive")
        self._engine = engine
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._retry_initial = retry_initial
        self._retry_max = max(retry_max, retry_initial)
        self._tables: dict[str, Table] = {
            name: table for name, table in Base.metadata.tables.items() if "write" in table.info
        }
        self._columns = {name: frozenset(table.columns.keys()) for name, table in self._tables.items()}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._accepted = 0
        self._finished = 0
        self._written = 0
        self._dropped = 0
        self._closed = False
        self._healthy = True
        self._last_error: str | None = None
        self._outage_since = 0.0
        self._drops_unlogged = 0
        self._drop_logged_at = -_DROP_LOG_INTERVAL
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def queue_length(self) -> int:
        """Rows accepted and not yet committed (queued or in the batch being written)."""
        with self._lock:
            return self._accepted - self._finished

    @property
    def written_total(self) -> int:
        """Rows committed since start (a replayed duplicate counts: it is safely stored)."""
        with self._lock:
            return self._written

    @property
    def dropped_total(self) -> int:
        """Rows given up on: queue full, unknown table or column, refused by the database, or shutdown."""
        with self._lock:
            return self._dropped

    @property
    def last_error(self) -> str | None:
        """The last database error seen, without the URL's password; None before any error."""
        with self._lock:
            return self._last_error

    @property
    def healthy(self) -> bool:
        """False while the database is unreachable or locked and rows are waiting for a retry."""
        with self._lock:
            return self._healthy

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is not None:
            raise RuntimeError("BatchWriter already started")
        self._thread = threading.Thread(target=self._run, name="netwatch-storage-writer", daemon=True)
        self._thread.start()

    def put(self, table: str, row: Mapping[str, Any]) -> None:
        """Queue one row for ``table``; never blocks and never raises (refusals are counted)."""
        try:
            reason = self._accept(table, row)
        except Exception as exc:  # put must never raise into the event loop
            reason = f"unexpected error: {exc!r}"
            with self._lock:
                self._dropped += 1
        if reason is not None:
            self._note_drop(reason)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every row put so far is committed (or given up on); False on timeout."""
        with self._lock:
            target = self._accepted
            if self._finished >= target:
                return True
            running = self._thread is not None and self._thread.is_alive()
        if not running:
            return False
        self._wake.set()
        with self._changed:
            return self._changed.wait_for(lambda: self._finished >= target, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Flush, then stop the thread; rows still unwritten when the database is down are dropped."""
        deadline = time.monotonic() + timeout
        if self._thread is None:
            with self._lock:
                self._closed = True
            return
        flushed = self.flush(timeout)
        with self._lock:
            self._closed = True
        self._stopping.set()
        self._wake.set()
        self._thread.join(max(deadline - time.monotonic(), 1.0))
        if self._thread.is_alive():
            log.error(
                "storage writer did not stop within %.1f s; %d rows pending", timeout, self.queue_length
            )
        elif not flushed:
            log.error(
                "storage writer stopped before everything was written (%d rows dropped in all)",
                self.dropped_total,
            )

    def _accept(self, table: str, row: Mapping[str, Any]) -> str | None:
        columns = self._columns.get(table)
        if columns is None:
            with self._lock:
                self._dropped += 1
            return f"unknown table {table!r}"
        values = dict(row)
        if not values.keys() <= columns:
            with self._lock:
                self._dropped += 1
            return f"unknown columns {sorted(values.keys() - columns)} for table {table!r}"
        with self._lock:
            if self._closed:
                self._dropped += 1
                return "writer stopped"
            if self._accepted - self._finished >= self._max_queue:
                self._dropped += 1
                return f"queue full ({self._max_queue} rows waiting)"
            self._queue.append((table, values))
            self._accepted += 1
            backlog = len(self._queue)
        if backlog >= self._batch_size:
            self._wake.set()
        return None

    def _note_drop(self, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._drops_unlogged += 1
            if now - self._drop_logged_at < _DROP_LOG_INTERVAL:
                return
            count, self._drops_unlogged = self._drops_unlogged, 0
            self._drop_logged_at = now
            total = self._dropped
        log.warning("storage dropped %d rows (%s); %d dropped in all", count, reason, total)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            try:
                while batch := self._take():
                    self._write_batch(batch)
            except _Abandoned:
                self._abandon_queue()
                return
            except Exception:  # the thread must outlive any bug in one batch
                log.exception("storage writer failed on a batch")
            if self._stopping.is_set():
                with self._lock:
                    if not self._queue:
                        return

    def _take(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            count = min(self._batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    def _write_batch(self, batch: Sequence[tuple[str, dict[str, Any]]]) -> None:
        groups: dict[str, list[dict[str, Any]]] = {}
        for name, row in batch:
            groups.setdefault(name, []).append(row)
        names = list(groups)
        for index, name in enumerate(names):
            rows = groups[name]
            try:
                refused = self._store(self._tables[name], rows)
            except _Abandoned:
                self._finish(sum(len(groups[n]) for n in names[index:]), refused=None)
                raise
            except Exception:
                self._finish(len(rows), refused=len(rows))
                raise
            self._finish(len(rows), refused=refused)

    def _finish(self, count: int, *, refused: int | None) -> None:
        """Mark ``count`` rows done; ``refused`` of them dropped (None: all dropped at shutdown)."""
        dropped = count if refused is None else refused
        with self._changed:
            self._finished += count
            self._written += count - dropped
            self._dropped += dropped
            self._changed.notify_all()
        if refused is None:
            log.error("storage writer stopping while the database is down: %d rows not written", count)
        elif refused:
            log.error("database refused %d rows; they are dropped (see the error above)", refused)

    def _abandon_queue(self) -> None:
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
        if left:
            self._finish(left, refused=None)

    def _store(self, table: Table, rows: list[dict[str, Any]]) -> int:
        """Write ``rows`` to ``table`` in one transaction, retrying outages; returns rows refused."""
        todo = rows if write_mode(table) == "append" else last_per_key(table, rows)
        delay = self._retry_initial
        while True:
            try:
                refused = self._write(table, todo)
            except DBAPIError as exc:
                if not _is_transient(exc):
                    raise
                self._note_outage(exc, len(rows))
                if self._stopping.is_set():
                    raise _Abandoned from None
                self._stopping.wait(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            self._note_recovered()
            return refused

    def _write(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
        columns = [c.key for c in table.columns if any(c.key in row for row in rows)]
        params = [{name: row.get(name) for name in columns} for row in rows]
        stmt = statement_for(self._engine.dialect, table, columns)
        try:
            with self._engine.begin() as conn:
                for start in range(0, len(params), _CHUNK_ROWS):
                    conn.execute(stmt, params[start : start + _CHUNK_ROWS])
            return 0
        except Exception as exc:
            if _is_transient(exc):
                raise
            log.error("database refused a batch of %d rows for %s: %s", len(rows), table.name, _describe(exc))
        return self._write_one_by_one(table, stmt, params)

    def _write_one_by_one(self, table: Table, stmt: Any, params: list[dict[str, Any]]) -> int:
        """After a refused batch, keep the good rows: one transaction each, the bad ones dropped."""
        refused = 0
        for values in params:
            try:
                with self._engine.begin() as conn:
                    conn.execute(stmt, [values])
            except Exception as exc:
                if _is_transient(exc):
                    raise
                refused += 1
                with self._lock:
                    self._last_error = _describe(exc)
        return refused

    def _note_outage(self, exc: BaseException, rows: int) -> None:
        message = _describe(exc)
        with self._lock:
            self._last_error = message
            first = self._healthy
            self._healthy = False
            if first:
                self._outage_since = time.monotonic()
            pending = self._accepted - self._finished
        if first:
            log.error(
                "database %s unavailable; keeping %d rows and retrying: %s",
                safe_url(self._engine.url),
                max(pending, rows),
                message,
            )

    def _note_recovered(self) -> None:
        with self._lock:
            if self._healthy:
                return
            self._healthy = True
            outage = time.monotonic() - self._outage_since
            pending = self._accepted - self._finished
        log.warning("database available again after %.1f s; writing %d queued rows", outage, pending)
