"""The disk spool: batches of rows the database could not take yet, kept on disk in order.

A spool is a directory of append-only segment files named by sequence number
(``000000000001000000.seg``), read oldest first. Each record is one batch::

    b"NWS1" | payload length (u32) | row count (u32) | CRC-32 of row count + payload (u32) | payload

The payload is JSON: ``[[table, {column: value}], ...]`` with datetimes written as
``{"$dt": ISO-8601}`` so they come back timezone-aware. A record torn by a crash (kill -9,
power loss) fails its length or checksum; it is logged and skipped, never fatal. Segments are
fsynced when closed and deleted once every record in them is committed to the database. Records
are replayed at least once: the writer's inserts are idempotent, so a batch replayed after a crash
between commit and delete is harmless. One process owns a spool directory at a time (``flock``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from netwatch.errors import StorageError
from netwatch.storage.engine import in_memory

__all__ = [
    "DEFAULT_SPOOL_MAX_BYTES",
    "Spool",
    "SpoolRecord",
    "decode_rows",
    "default_spool_dir",
    "encode_rows",
    "spool_for",
]

log = logging.getLogger(__name__)

DEFAULT_SPOOL_MAX_BYTES = 1 << 30
"""1 GiB: about 5 million rows, many hours of a province's polls while the database is away."""

_MAGIC = b"NWS1"
_HEADER = struct.Struct(">4sIII")
_SEGMENT_BYTES = 4 << 20
_FIRST_SEQ = 1_000_000_000
"""Fresh spools start numbering here so a batch can be put before the head (numbers below it)."""
_SUFFIX = ".seg"

Row = tuple[str, Mapping[str, Any]]


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"cannot spool a value of type {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> object:
    if len(obj) == 1 and "$dt" in obj:
        return datetime.fromisoformat(obj["$dt"])
    return obj


def encode_rows(rows: Sequence[Row]) -> bytes:
    """One spool record (header and payload) holding ``rows`` in order."""
    payload = json.dumps(
        [[table, dict(row)] for table, row in rows],
        default=_default,
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    count = len(rows)
    crc = zlib.crc32(payload, zlib.crc32(struct.pack(">I", count)))
    return _HEADER.pack(_MAGIC, len(payload), count, crc) + payload


def decode_rows(payload: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The rows of a record's payload (checked already), datetimes restored."""
    return [(table, row) for table, row in json.loads(payload, object_hook=_hook)]


def default_spool_dir(db_url: str, shard: str = "0/1", state_directory: str | None = None) -> Path | None:
    """Where the spool goes unless told: ``$STATE_DIRECTORY/spool`` (systemd's writable state
    directory), else beside a SQLite file (``netwatch.db-spool``); None (no spool) for an
    in-memory database, or for PostgreSQL outside systemd, where no place is obviously ours."""
    suffix = "" if shard == "0/1" else "-" + shard.replace("/", "-of-")
    if in_memory(db_url):
        return None
    url = make_url(db_url)
    database = url.database or ""
    if state_directory:
        return Path(state_directory.split(":")[0]) / f"spool{suffix}"
    if url.get_backend_name() == "sqlite" and not database.startswith("file:"):
        path = Path(database).absolute()
        return path.with_name(f"{path.name}-spool{suffix}")
    return None


@dataclass(frozen=True)
class SpoolRecord:
    """The oldest batch in the spool; ``lost`` rows could not be read back (damaged on disk)."""

    seq: int
    offset: int
    rows: list[tuple[str, dict[str, Any]]]
    lost: int = 0


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int = 0
    records: deque[tuple[int, int, int]] = field(default_factory=deque)  # (offset, length, rows)


class Spool:
    """A bounded on-disk queue of row batches; thread-safe (one writer thread, one spiller)."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        *,
        segment_bytes: int = _SEGMENT_BYTES,
    ) -> None:
        if max_bytes < 1 or segment_bytes < 1:
            raise ValueError("max_bytes and segment_bytes must be positive")
        self.directory = directory
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._tail_fd: int | None = None
        self._bytes = 0
        self._rows = 0
        self._lock_fd: int | None = None

    @property
    def size_bytes(self) -> int:
        """Bytes the spool's segments take on disk."""
        with self._lock:
            return self._bytes

    @property
    def rows(self) -> int:
        """Rows in the spool not yet committed to the database."""
        with self._lock:
            return self._rows

    def open(self) -> int:
        """Take the directory (StorageError if another process has it), check what a previous
        process left, and return how many rows wait to be replayed."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageError(
                f"spool directory {self.directory} is in use by another netwatch process (pass --spool-dir)"
            ) from None
        self._lock_fd = fd
        with self._lock:
            for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
                if path.stem.isdigit():
                    self._load(int(path.stem), path)
            rows = self._rows
        if rows:
            log.warning(
                "spool %s holds %d rows from a previous run; replaying them first", self.directory, rows
            )
        return rows

    def append(self, rows: Sequence[Row]) -> bool:
        """Add a batch after the others; False when it would pass ``max_bytes``. OSError (disk full)
        leaves the spool as it was."""
        record = encode_rows(rows)
        with self._lock:
            if self._bytes + len(record) > self.max_bytes:
                return False
            fd = self._tail_fd
            segment = self._segments[-1] if self._segments else None
            if fd is None or segment is None or segment.size >= self._segment_bytes:
                self._close_tail()
                seq = self._segments[-1].seq + 1 if self._segments else _FIRST_SEQ
                segment, fd = self._new_segment(seq)
                self._tail_fd = fd
                self._segments.append(segment)
            self._write(fd, segment, record, len(rows))
            return True

    def prepend(self, rows: Sequence[Row]) -> bool:
        """Put a batch before every other (the writer's batch in flight at shutdown), in a segment
        of its own, fsynced; False when it would pass ``max_bytes``."""
        record = encode_rows(rows)
        with self._lock:
            if self._bytes + len(record) > self.max_bytes:
                return False
            seq = self._segments[0].seq - 1 if self._segments else _FIRST_SEQ - 1
            segment, fd = self._new_segment(seq)
            try:
                self._write(fd, segment, record, len(rows))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._segments.appendleft(segment)
            return True

    def head(self) -> SpoolRecord | None:
        """The oldest batch not yet committed, or None when the spool is empty."""
        with self._lock:
            # An empty segment ahead of others is one whose only write failed (disk full).
            while len(self._segments) > 1 and not self._segments[0].records:
                self._segments.popleft().path.unlink(missing_ok=True)
            if not self._segments or not self._segments[0].records:
                return None
            segment = self._segments[0]
            offset, length, count = segment.records[0]
            try:
                with open(segment.path, "rb") as f:
                    f.seek(offset)
                    data = f.read(length)
                rows = decode_rows(self._check(data, count))
            except (OSError, ValueError) as exc:
                log.error(
                    "spool record %s@%d unreadable (%s): %d rows lost", segment.path.name, offset, exc, count
                )
                return SpoolRecord(segment.seq, offset, [], lost=count)
            return SpoolRecord(segment.seq, offset, rows)

    def commit(self, record: SpoolRecord) -> None:
        """Forget ``record`` (its rows are in the database); delete its segment once all are."""
        with self._lock:
            segment = self._segments[0]
            if segment.seq != record.seq or not segment.records or segment.records[0][0] != record.offset:
                raise StorageError("spool commit out of order")
            _, _, count = segment.records.popleft()
            self._rows -= count
            if segment.records:
                return
            if self._tail_fd is not None and len(self._segments) == 1:
                os.close(self._tail_fd)
                self._tail_fd = None
            self._segments.popleft()
            self._bytes -= segment.size
            with _suppress_os_error():  # left behind, it is only replayed again: harmless
                segment.path.unlink(missing_ok=True)
                self._sync_dir()

    def close(self) -> None:
        """Fsync and close the open segment and let the directory go (what is left stays on disk)."""
        with self._lock:
            self._close_tail()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- inside the lock ----------------------------------------------------------------------

    def _new_segment(self, seq: int) -> tuple[_Segment, int]:
        path = self.directory / f"{seq:018d}{_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o640)
        self._sync_dir()
        return _Segment(seq, path), fd

    def _write(self, fd: int, segment: _Segment, record: bytes, count: int) -> None:
        try:
            written = os.write(fd, record)
            if written != len(record):
                raise OSError(f"short write to spool ({written} of {len(record)} bytes)")
        except OSError:
            # Take back a partial record so the segment stays readable.
            with _suppress_os_error():
                os.ftruncate(fd, segment.size)
            raise
        segment.records.append((segment.size, len(record), count))
        segment.size += len(record)
        self._bytes += len(record)
        self._rows += count

    def _close_tail(self) -> None:
        if self._tail_fd is None:
            return
        try:
            os.fsync(self._tail_fd)
        finally:
            os.close(self._tail_fd)
            self._tail_fd = None

    def _sync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _check(data: bytes, count: int) -> bytes:
        if len(data) < _HEADER.size:
            raise ValueError("truncated header")
        magic, length, rows, crc = _HEADER.unpack_from(data)
        payload = data[_HEADER.size : _HEADER.size + length]
        if magic != _MAGIC or rows != count or len(payload) != length:
            raise ValueError("bad header or truncated payload")
        if zlib.crc32(payload, zlib.crc32(struct.pack(">I", rows))) != crc:
            raise ValueError("checksum mismatch")
        return payload

    def _load(self, seq: int, path: Path) -> None:
        """Index a segment a previous process left; cut it at the first damaged record."""
        data = path.read_bytes()
        segment = _Segment(seq, path)
        offset = 0
        while offset < len(data):
            try:
                _, length, rows, _ = _HEADER.unpack_from(data, offset)
                self._check(data[offset : offset + _HEADER.size + length], rows)
            except (ValueError, struct.error) as exc:
                log.warning(
                    "spool segment %s: damaged or truncated record at byte %d (%s); skipping its last %d bytes",
                    path.name,
                    offset,
                    exc,
                    len(data) - offset,
                )
                with _suppress_os_error():
                    os.truncate(path, offset)
                break
            size = _HEADER.size + length
            segment.records.append((offset, size, rows))
            offset += size
            self._rows += rows
        segment.size = offset
        if not segment.records:
            path.unlink(missing_ok=True)
            return
        self._bytes += segment.size
        self._segments.append(segment)


@contextmanager
def _suppress_os_error() -> Iterator[None]:
    """contextlib.suppress(OSError), logged: cleaning up after a disk error must not raise another."""
    try:
        yield
    except OSError as exc:
        log.warning("spool clean-up failed: %s", exc)


def spool_for(
    db_url: str,
    directory: Path | None,
    max_bytes: int,
    shard: str = "0/1",
    state_directory: str | None = None,
) -> Spool | None:
    """The daemon's spool: ``directory`` if given, else :func:`default_spool_dir`; None when
    ``max_bytes`` is 0 or there is no sensible place (the choice is logged)."""
    if max_bytes <= 0:
        log.info("storage spool disabled (--spool-max-bytes 0)")
        return None
    where = directory or default_spool_dir(db_url, shard, state_directory)
    if where is None:
        log.info("storage spool disabled: no place for it with this database (pass --spool-dir)")
        return None
    log.info("storage spool in %s (up to %d bytes)", where, max_bytes)
    return Spool(where, max_bytes)
