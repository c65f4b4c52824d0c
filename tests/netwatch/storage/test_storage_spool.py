"""The disk spool on its own: order, bound, damaged records, and what a previous run left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from netwatch.errors import StorageError
from netwatch.storage.models import Poll
from netwatch.storage.spool import Spool, default_spool_dir, encode_rows
from netwatch.storage.writer import BatchWriter
from tests.netwatch.storage.rows import T0, poll_row

REPO = Path(__file__).resolve().parents[3]


def _batch(first: int, size: int = 5) -> list[tuple[str, dict[str, Any]]]:
    return [("polls", poll_row(n)) for n in range(first, first + size)]


def _drain(spool: Spool) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    while (record := spool.head()) is not None:
        rows.extend(record.rows)
        spool.commit(record)
    return rows


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_batches_come_back_in_order_with_their_values_and_then_the_files_go(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", segment_bytes=2000)  # small segments: several files
    spool.open()
    odd = {"target": "Trạm Hội An", "sent": 5, "rtt": float("nan"), "ok": False, "at": T0, "none": None}
    batches = [_batch(n) for n in range(0, 30, 5)] + [[("odd", odd)]]
    for batch in batches:
        assert spool.append(batch)
    assert spool.rows == 31 and len(_segments(spool.directory)) > 1
    assert spool.size_bytes == sum(p.stat().st_size for p in _segments(spool.directory))
    assert spool.prepend(_batch(100, 2))  # the writer's batch in flight at shutdown goes first

    rows = _drain(spool)

    assert [r["scheduled_at"] for _, r in rows[:32]] == [
        poll_row(n)["scheduled_at"] for n in (100, 101, *range(30))
    ]
    assert rows[:32] == _batch(100, 2) + [r for b in batches[:-1] for r in b]
    name, back = rows[-1]
    assert name == "odd" and back["at"] == T0 and back["at"].utcoffset() == timedelta(0)
    assert back["target"] == "Trạm Hội An" and back["ok"] is False and back["none"] is None
    assert back["rtt"] != back["rtt"]  # NaN survives
    assert (spool.rows, spool.size_bytes, _segments(spool.directory)) == (0, 0, [])
    spool.close()


def test_a_batch_that_would_pass_the_bound_is_refused(tmp_path: Path) -> None:
    record = len(encode_rows(_batch(0)))
    spool = Spool(tmp_path / "spool", max_bytes=3 * record + record // 2)
    spool.open()
    accepted = [spool.append(_batch(n)) for n in range(0, 25, 5)]
    assert accepted == [True, True, True, False, False]
    assert spool.size_bytes <= spool.max_bytes and spool.rows == 15
    assert [r["scheduled_at"] for _, r in _drain(spool)] == [poll_row(n)["scheduled_at"] for n in range(15)]
    spool.close()


def test_one_process_per_spool_directory(tmp_path: Path) -> None:
    first = Spool(tmp_path / "spool")
    first.open()
    with pytest.raises(StorageError, match="in use by another netwatch process"):
        Spool(tmp_path / "spool").open()
    first.close()
    again = Spool(tmp_path / "spool")
    again.open()
    again.close()


@pytest.mark.parametrize("damage", ["torn tail", "flipped byte"])
def test_a_damaged_last_record_is_logged_and_skipped(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.open()
    for n in range(0, 15, 5):
        spool.append(_batch(n))
    spool.close()
    (segment,) = _segments(spool.directory)
    data = bytearray(segment.read_bytes())
    if damage == "torn tail":  # kill -9 or power loss in the middle of the last write
        del data[-7:]
    else:
        data[-3] ^= 0x40
    segment.write_bytes(bytes(data))

    reopened = Spool(tmp_path / "spool")
    assert reopened.open() == 10
    rows = _drain(reopened)
    reopened.close()

    assert [r["scheduled_at"] for _, r in rows] == [poll_row(n)["scheduled_at"] for n in range(10)]
    assert "damaged or truncated record" in caplog.text


def test_a_spool_left_by_a_previous_run_is_written_first_at_start(
    sqlite_db: tuple[str, Engine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, engine = sqlite_db
    left = Spool(tmp_path / "spool")
    left.open()
    left.append(_batch(0))
    left.append(_batch(5))
    left.close()  # as a run does when it stops with the database still down

    writer = BatchWriter(engine, batch_size=10, flush_interval=0.02, spool=Spool(tmp_path / "spool"))
    writer.start()
    for n in range(10, 13):
        writer.put("polls", poll_row(n))
    assert writer.flush(timeout=30)
    writer.stop()

    with engine.connect() as conn:
        scheduled = conn.execute(select(Poll.scheduled_at).order_by(Poll.id)).scalars().all()
    assert scheduled == [poll_row(n)["scheduled_at"] for n in range(13)]
    assert (writer.written_total, writer.dropped_total, writer.spool_bytes) == (13, 0, 0)
    assert _segments(tmp_path / "spool") == []
    assert "holds 10 rows from a previous run" in caplog.text


_APPENDER = """
import sys
from pathlib import Path
from tests.netwatch.storage.rows import poll_row
from netwatch.storage.spool import Spool
spool = Spool(Path(sys.argv[1]), segment_bytes=50_000)
spool.open()
print("ready", flush=True)
for n in range(0, 2_000_000, 5):
    spool.append([("polls", poll_row(k)) for k in range(n, n + 5)])
"""


def test_a_process_killed_while_spooling_leaves_a_readable_prefix(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _APPENDER, str(tmp_path / "spool")], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
    spool = Spool(tmp_path / "spool")
    found = spool.open()
    rows = _drain(spool)
    spool.close()
    assert found == len(rows) > 0
    assert [r["scheduled_at"] for _, r in rows] == [poll_row(n)["scheduled_at"] for n in range(len(rows))]


@pytest.mark.parametrize(
    ("url", "shard", "state_directory", "expected"),
    [
        ("sqlite:////var/lib/netwatch/netwatch.db", "0/1", None, "/var/lib/netwatch/netwatch.db-spool"),
        ("sqlite:////data/nw.db", "1/3", None, "/data/nw.db-spool-1-of-3"),
        ("sqlite:////data/nw.db", "0/1", "/var/lib/netwatch", "/var/lib/netwatch/spool"),
        ("postgresql://netwatch@db/netwatch", "0/1", "/var/lib/netwatch:/x", "/var/lib/netwatch/spool"),
        ("postgresql://netwatch@db/netwatch", "0/1", None, None),
        ("sqlite://", "0/1", "/var/lib/netwatch", None),
        ("sqlite:///:memory:", "0/1", None, None),
    ],
)
def test_default_spool_place(url: str, shard: str, state_directory: str | None, expected: str | None) -> None:
    where = default_spool_dir(url, shard, state_directory)
    assert (str(where) if where else None) == expected
