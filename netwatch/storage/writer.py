"""The batched writer: rows put from the event loop, written by one thread, never blocking the loop.

``put`` only appends to a bounded in-memory queue. A background thread drains it in batches, one
transaction per table per batch, in the order rows were put. Append tables are written with
``INSERT … ON CONFLICT DO NOTHING`` so a replayed sample is a no-op; state tables are upserted on
their primary key and only the last row per key in a batch is sent. While the database is
unreachable or locked, rows are kept and retried with exponential backoff; the outage is logged
once. Above ``max_queue`` pending rows the newest are dropped, counted and logged.

With a :class:`~netwatch.storage.spool.Spool`, ``max_queue`` bounds memory only: a second thread
moves the oldest queued rows to the spool in whole batches once half of ``max_queue`` is waiting
(or whenever the database is unavailable), so a long outage costs disk, not memory. The writer
drains the batch it holds, then the spool, then memory, so rows reach each table in the order they
were put. Rows still unwritten at shutdown stay in the spool and are written at the next start.
Only when the spool is full too are the newest rows dropped, counted and logged.

The daemon's writer thread hands each batch to a child process (``in_process=False``, see
:mod:`netwatch.storage.rowwriter`) and waits on a pipe, so binding rows never holds the GIL the
polling loop needs; a child that dies is an outage like any other, and its batch is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table

from netwatch.errors import StorageError
from netwatch.storage.dml import last_per_key, write_mode
from netwatch.storage.driverwriter import WriteOutage
from netwatch.storage.engine import safe_url
from netwatch.storage.models import Base
from netwatch.storage.rowwriter import ProcessRowWriter, RowWriter
from netwatch.storage.spool import Spool, SpoolRecord

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

_DROP_LOG_INTERVAL = 10.0


@dataclass
class _Batch:
    """Rows being written; ``done`` tables are committed (kept across retries)."""

    rows: list[tuple[str, dict[str, Any]]]
    record: SpoolRecord | None = None
    done: set[str] = field(default_factory=set)

    def remaining(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, row) for name, row in self.rows if name not in self.done]


BATCH_ROWS = 5000
"""Most rows one batch takes: at province scale about a second of rows, one transaction per table
each second. Batches of 1,000 (four a second, a transaction per table each) cost the writer 15–22 %
more CPU per row on SQLite (``benchmarks/storage_write.py``)."""


class BatchWriter:
    """Writes rows to the database in batches from a background thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = BATCH_ROWS,
        flush_interval: float = 1.0,
        max_queue: int = 200_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        spool: Spool | None = None,
        in_process: bool = True,
    ) -> None:
        """``in_process=False`` writes from a child process (:mod:`netwatch.storage.rowwriter`):
        the daemon's choice for a database file or server, so binding rows never holds the GIL
        the polling loop needs."""
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
        self._rows: RowWriter | ProcessRowWriter = (
            RowWriter(engine) if in_process else ProcessRowWriter(engine)
        )
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
        self._current: _Batch | None = None
        self._spool = spool
        self._spill_at = max(1, max_queue // 2)
        self._in_transit = 0
        self._spill_lock = threading.Lock()
        self._nudge = threading.Event()
        self._spiller: threading.Thread | None = None
        self._spool_full_logged_at = -_DROP_LOG_INTERVAL
        self._dropped_before_outage = 0

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
    def spool_bytes(self) -> int:
        """Bytes the disk spool takes (0 without a spool)."""
        return self._spool.size_bytes if self._spool is not None else 0

    @property
    def spool_rows(self) -> int:
        """Rows waiting in the disk spool (part of :attr:`queue_length`)."""
        return self._spool.rows if self._spool is not None else 0

    @property
    def writer_pid(self) -> int | None:
        """The process id of the child that writes the rows (None in-process or before the first batch)."""
        return self._rows.pid if isinstance(self._rows, ProcessRowWriter) else None

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
        """Open the spool (rows a previous run left are written first), start the writer thread.

        Raises:
            StorageError: the spool directory is held by another process.
        """
        if self._thread is not None:
            raise RuntimeError("BatchWriter already started")
        if self._spool is not None:
            leftover = self._spool.open()
            with self._lock:
                self._accepted += leftover
            self._spiller = threading.Thread(
                target=self._spill_loop, name="netwatch-storage-spool", daemon=True
            )
            self._spiller.start()
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
        self._nudge.set()
        self._thread.join(max(deadline - time.monotonic(), 1.0))
        if self._spiller is not None:
            self._spiller.join(max(deadline - time.monotonic(), 1.0))
        if self._spool is not None and not self._thread.is_alive():
            self._spool.close()
        if not self._thread.is_alive():
            self._rows.close()
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
            if self._spool is None and self._accepted - self._finished >= self._max_queue:
                self._dropped += 1
                return f"queue full ({self._max_queue} rows waiting)"
            if self._spool is not None and len(self._queue) >= self._max_queue:
                self._dropped += 1
                return f"queue full ({self._max_queue} rows in memory) and spool full ({self._spool.max_bytes} bytes)"
            self._queue.append((table, values))
            self._accepted += 1
            backlog = len(self._queue)
        if backlog >= self._batch_size:
            self._wake.set()
        if self._spool is not None and backlog >= self._spill_at:
            self._nudge.set()
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
        delay = self._retry_initial
        while True:
            try:
                self._drain()
            except WriteOutage as outage:  # the batch is kept and retried
                self._note_outage(str(outage), len(self._current.rows) if self._current else 0)
                if self._stopping.is_set():
                    self._give_up()
                    return
                self._stopping.wait(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            except Exception:  # the thread must outlive any bug in one batch
                log.exception("storage writer failed on a batch")
                self._current = None
            delay = self._retry_initial
            if self._stopping.is_set() and self._idle():
                return
            self._wake.wait(self._flush_interval)
            self._wake.clear()

    def _idle(self) -> bool:
        with self._lock:
            return not self._queue and not self._in_transit and self._current is None and not self.spool_rows

    def _drain(self) -> None:
        """Write the held batch, then spooled batches, then queued rows, until none is left."""
        while True:
            batch = self._current or self._next_batch()
            if batch is None:
                return
            self._current = batch
            self._write_batch(batch)
            self._current = None
            if batch.record is not None and self._spool is not None:
                self._spool.commit(batch.record)

    def _next_batch(self) -> _Batch | None:
        spool = self._spool
        while True:
            with self._changed:
                # A batch on its way to the spool is older than what is left in memory.
                self._changed.wait_for(lambda: self._in_transit == 0)
                if spool is None or not spool.rows:
                    count = min(self._batch_size, len(self._queue))
                    if not count:
                        return None
                    return _Batch([self._queue.popleft() for _ in range(count)])
            assert spool is not None
            record = spool.head()
            if record is not None:
                if record.lost:  # unreadable on disk; the spool has logged it
                    with self._changed:
                        self._finished += record.lost
                        self._dropped += record.lost
                        self._changed.notify_all()
                return _Batch(record.rows, record)

    def _write_batch(self, batch: _Batch) -> None:
        groups: dict[str, list[dict[str, Any]]] = {}
        for name, row in batch.remaining():
            groups.setdefault(name, []).append(row)
        for name, rows in groups.items():
            try:
                refused = self._store(self._tables[name], rows)
            except WriteOutage:
                raise
            except Exception:
                log.exception("storage writer failed on %d rows for %s; they are dropped", len(rows), name)
                refused = len(rows)
            batch.done.add(name)
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

    def _give_up(self) -> None:
        """Stopping while the database is down: keep what the spool can take, drop the rest."""
        batch, self._current = self._current, None
        held = batch.remaining() if batch is not None and batch.record is None else []
        lost = 0
        if self._spool is not None:
            if held and not self._prepend(held):
                lost += len(held)
            self._spill()
            if self._spool.rows:
                log.warning(
                    "database still unavailable at shutdown: %d rows kept in the spool %s, written at the next start",
                    self._spool.rows,
                    self._spool.directory,
                )
        else:
            lost += len(held)
        with self._lock:
            lost += len(self._queue)
            self._queue.clear()
        if lost:
            self._finish(lost, refused=None)

    def _prepend(self, rows: list[tuple[str, dict[str, Any]]]) -> bool:
        assert self._spool is not None
        try:
            return self._spool.prepend(rows)
        except (OSError, TypeError, ValueError) as exc:
            log.error("cannot spool %d rows at shutdown: %s", len(rows), exc)
            return False

    def _spill_loop(self) -> None:
        """The spool thread: moves queued rows to disk while the writer thread waits on the database."""
        while not self._stopping.is_set():
            self._nudge.wait(self._flush_interval)
            self._nudge.clear()
            if self._stopping.is_set():
                return
            with self._lock:
                due = len(self._queue) >= self._spill_at or (not self._healthy and bool(self._queue))
            if due:
                self._spill()

    def _spill(self) -> None:
        """Move every queued row to the spool, oldest first, a batch per record, until it is full."""
        assert self._spool is not None
        with self._spill_lock:
            while True:
                with self._lock:
                    count = min(self._batch_size, len(self._queue))
                    if not count:
                        return
                    chunk = [self._queue.popleft() for _ in range(count)]
                    self._in_transit += count
                error: Exception | None = None
                try:
                    kept = self._spool.append(chunk)
                except (OSError, TypeError, ValueError) as exc:
                    kept, error = False, exc
                with self._changed:
                    self._in_transit -= count
                    if not kept:
                        self._queue.extendleft(reversed(chunk))
                    self._changed.notify_all()
                if not kept:
                    self._note_spool_full(error)
                    return

    def _note_spool_full(self, error: Exception | None) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._spool_full_logged_at < _DROP_LOG_INTERVAL:
                return
            self._spool_full_logged_at = now
        assert self._spool is not None
        why = f"cannot write to it: {error}" if error else f"full ({self._spool.size_bytes} bytes)"
        log.error(
            "storage spool %s %s; holding up to %d rows in memory, then dropping the newest",
            self._spool.directory,
            why,
            self._max_queue,
        )

    def _store(self, table: Table, rows: list[dict[str, Any]]) -> int:
        """Write ``rows`` to ``table`` in one transaction; returns rows refused.

        Raises:
            WriteOutage: the database is unreachable, locked or full; nothing was written.
        """
        todo = rows if write_mode(table) == "append" else last_per_key(table, rows)
        refusals = self._rows.write(table.name, todo)
        if refusals.last_error is not None:
            with self._lock:
                self._last_error = refusals.last_error
        self._note_recovered()
        return refusals.count

    def _note_outage(self, message: str, rows: int) -> None:
        with self._lock:
            self._last_error = message
            first = self._healthy
            self._healthy = False
            if first:
                self._outage_since = time.monotonic()
                self._dropped_before_outage = self._dropped
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
            lost = self._dropped - self._dropped_before_outage
        # The exact count, since the rate-limited drop lines during the outage give only the first.
        tail = f"; {lost} rows were dropped during the outage" if lost else ""
        log.warning("database available again after %.1f s; writing %d queued rows%s", outage, pending, tail)
