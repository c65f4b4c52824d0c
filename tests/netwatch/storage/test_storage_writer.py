"""The batched writer: everything put lands, replays are no-ops, and the event loop never waits."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from netwatch.errors import StorageError
from netwatch.storage import repository
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.models import Poll
from netwatch.storage.writer import BatchWriter
from tests.netwatch.storage.rows import T0, count, poll_row
from tests.support.processes import alive


@pytest.fixture(params=["thread", "child"])
def writer(migrated: Engine, request: pytest.FixtureRequest) -> Iterator[BatchWriter]:
    """A started writer on the migrated database, stopped after the test: writing from its own
    thread, or from a child process as the daemon does."""
    w = BatchWriter(migrated, batch_size=100, flush_interval=0.05, in_process=request.param == "thread")
    w.start()
    yield w
    w.stop()


def _metric_row(n: int) -> dict[str, Any]:
    return {
        "device": "r1",
        "metric": "cpu_load_ratio",
        "labels": "cpu=1",
        "scheduled_at": T0 + timedelta(minutes=n),
        "value": n % 100 / 100,
    }


def _state(failed_rounds: int, minute: int) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minute)
    return {
        "target": "xa01-gw",
        "kind": "icmp",
        "state": "down" if failed_rounds >= 3 else "up",
        "since": at,
        "failed_rounds": failed_rounds,
        "good_rounds": 0,
        "first_failed_at": T0,
        "first_good_at": None,
        "last_poll_at": at,
        "updated_at": at,
    }


def test_every_row_put_is_written(writer: BatchWriter, migrated: Engine) -> None:
    for n in range(750):
        writer.put("polls", poll_row(n))
        writer.put("device_metric_samples", _metric_row(n))
    assert writer.flush(timeout=60)
    assert (count(migrated, "polls"), count(migrated, "device_metric_samples")) == (750, 750)
    assert (writer.written_total, writer.dropped_total, writer.queue_length) == (1500, 0, 0)
    assert writer.healthy and writer.last_error is None


def test_replayed_sample_is_a_no_op(writer: BatchWriter, migrated: Engine) -> None:
    writer.put("polls", poll_row(1))
    writer.put("polls", poll_row(1))  # same batch
    assert writer.flush(timeout=30)
    writer.put("polls", poll_row(1) | {"duration_seconds": 9.0})  # a later batch, as after a crash replay
    assert writer.flush(timeout=30)
    with migrated.connect() as conn:
        durations = conn.execute(select(Poll.duration_seconds)).scalars().all()
    assert durations == [0.012]
    assert writer.dropped_total == 0 and writer.last_error is None


def test_upsert_keeps_the_last_state(writer: BatchWriter, migrated: Engine) -> None:
    for rounds in (1, 2, 3):
        writer.put("target_states", _state(rounds, rounds))
    assert writer.flush(timeout=30)
    assert repository.load_target_states(migrated)[("xa01-gw", "icmp")]["failed_rounds"] == 3
    writer.put("target_states", _state(4, 4))
    assert writer.flush(timeout=30)
    states = repository.load_target_states(migrated)
    assert list(states) == [("xa01-gw", "icmp")]
    assert states[("xa01-gw", "icmp")]["failed_rounds"] == 4
    assert states[("xa01-gw", "icmp")]["last_poll_at"] == T0 + timedelta(minutes=4)


def test_flush_waits_for_the_rows_without_waiting_the_interval(migrated: Engine) -> None:
    w = BatchWriter(migrated, flush_interval=3600)
    w.start()
    try:
        for n in range(10):
            w.put("polls", poll_row(n))
        assert w.flush(timeout=30)
        assert count(migrated, "polls") == 10
    finally:
        w.stop()


def test_stop_flushes_then_refuses_rows(migrated: Engine) -> None:
    w = BatchWriter(migrated, flush_interval=3600)
    w.start()
    for n in range(10):
        w.put("polls", poll_row(n))
    w.stop()
    assert count(migrated, "polls") == 10
    w.put("polls", poll_row(11))
    assert (w.dropped_total, count(migrated, "polls")) == (1, 10)


def test_bad_rows_are_counted_not_raised_and_good_rows_still_land(
    writer: BatchWriter, migrated: Engine
) -> None:
    writer.put("no_such_table", {"x": 1})
    writer.put("polls", poll_row(1) | {"colour": "red"})
    writer.put("polls", poll_row(2) | {"scheduled_at": (T0 + timedelta(minutes=2)).replace(tzinfo=None)})
    writer.put("polls", poll_row(3))
    assert writer.flush(timeout=30)
    assert writer.dropped_total == 3
    assert count(migrated, "polls") == 1
    assert writer.last_error is not None and "naive datetime" in writer.last_error


async def test_locked_database_never_stalls_the_event_loop(sqlite_db: tuple[str, Engine]) -> None:
    path, engine = sqlite_db
    writer = BatchWriter(engine, batch_size=10, flush_interval=0.02)
    writer.start()
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        hold_until = loop.time() + 2.0
        put, max_lag = 0, 0.0
        while loop.time() < hold_until:
            before = loop.time()
            writer.put("polls", poll_row(put))
            put += 1
            await asyncio.sleep(0.01)
            max_lag = max(max_lag, loop.time() - before - 0.01)
        committed_while_locked = locker.execute("SELECT count(*) FROM polls").fetchone()[0]
        locker.execute("ROLLBACK")
    finally:
        locker.close()
    assert await asyncio.to_thread(writer.flush, 30)
    writer.stop()
    assert committed_while_locked == 0
    assert put > 100
    assert max_lag < 0.2, f"event loop stalled {max_lag:.3f} s while the database was locked"
    assert (count(engine, "polls"), writer.dropped_total) == (put, 0)


def test_queue_bound_drops_the_newest_rows_and_counts_them(
    sqlite_db: tuple[str, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    path, engine = sqlite_db
    writer = BatchWriter(engine, batch_size=4, flush_interval=0.01, max_queue=10)
    writer.start()
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        for n in range(25):
            writer.put("polls", poll_row(n))
            time.sleep(0.002)
        assert (writer.dropped_total, writer.queue_length) == (15, 10)
        locker.execute("ROLLBACK")
    finally:
        locker.close()
    assert writer.flush(timeout=30)
    writer.stop()
    with engine.connect() as conn:
        scheduled = conn.execute(select(Poll.scheduled_at).order_by(Poll.scheduled_at)).scalars().all()
    assert scheduled == [poll_row(n)["scheduled_at"] for n in range(10)]
    assert writer.dropped_total == 15
    drop_reports = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drop_reports) == 1, "drops are logged, rate-limited"
    assert "queue full" in drop_reports[0].getMessage()


def test_a_killed_writer_process_is_an_outage_and_loses_no_row(migrated: Engine) -> None:
    writer = BatchWriter(migrated, batch_size=20, flush_interval=0.02, retry_initial=0.05, in_process=False)
    writer.start()
    try:
        for n in range(40):
            writer.put("polls", poll_row(n))
        assert writer.flush(timeout=60)
        first = writer.writer_pid
        assert first is not None and first != os.getpid(), "the rows were written by a child process"
        os.kill(first, signal.SIGKILL)
        for n in range(40, 100):
            writer.put("polls", poll_row(n))
        assert writer.flush(timeout=60)
        assert writer.last_error is not None and "writer process died" in writer.last_error
        assert writer.healthy and writer.writer_pid not in (None, first), "a new child took over"
        second = writer.writer_pid
    finally:
        writer.stop()
    assert count(migrated, "polls") == 100
    assert (writer.written_total, writer.dropped_total) == (100, 0)
    assert second is not None and not alive(second), "stop ends the child"


def test_the_child_writer_refuses_an_in_memory_database() -> None:
    engine = create_engine_for("sqlite://")
    with pytest.raises(StorageError, match="in-memory SQLite"):
        BatchWriter(engine, in_process=False)


def test_a_writer_process_never_outlives_a_killed_daemon(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'netwatch.db'}")
    upgrade(engine)
    engine.dispose()
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
from netwatch.storage.engine import create_engine_for
from netwatch.storage.writer import BatchWriter
from tests.netwatch.storage.rows import poll_row
if __name__ == "__main__":
    writer = BatchWriter(create_engine_for({f"sqlite:///{tmp_path / 'netwatch.db'}"!r}), in_process=False)
    writer.start()
    writer.put("polls", poll_row(1))
    writer.flush(timeout=60)
    print(writer.writer_pid, flush=True)
    time.sleep(120)
"""
    daemon = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None
        child = int(daemon.stdout.readline())
        assert child != daemon.pid, "the rows were written by a child process"
    finally:
        daemon.kill()
        daemon.wait(10)
        if daemon.stdout is not None:
            daemon.stdout.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and alive(child):
        time.sleep(0.2)
    assert not alive(child), "an orphaned writer process kept running"
