"""The database goes away under the writer (SQLite locked, disk full, PostgreSQL stopped): rows
beyond the memory bound go to the disk spool and all land, in order, once it is back; beyond the
spool's bound the newest are dropped, counted exactly and logged."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, insert, select
from sqlalchemy.exc import DBAPIError

from netwatch.storage import repository
from netwatch.storage.driverwriter import is_transient
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.models import Poll
from netwatch.storage.spool import Spool, encode_rows
from netwatch.storage.writer import BatchWriter
from tests.netwatch.storage.rows import T0, poll_row
from tests.support.postgres import PostgresCluster, fresh_database, throwaway_cluster

SEGMENT_GLOB = "*.seg"


def _state(n: int) -> dict[str, Any]:
    at = T0 + timedelta(minutes=n)
    return {
        "target": "tk-router",
        "kind": "icmp",
        "state": "up",
        "since": T0,
        "failed_rounds": 0,
        "good_rounds": n,
        "first_failed_at": None,
        "first_good_at": T0,
        "last_poll_at": at,
        "updated_at": at,
    }


def _scheduled(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(Poll.scheduled_at).order_by(Poll.id)).scalars())


def _expected(rows: range) -> list[Any]:
    return [poll_row(n)["scheduled_at"] for n in rows]


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


class _Watch:
    """Puts rows one by one and notes the most the writer held in its spool meanwhile."""

    def __init__(self, writer: BatchWriter) -> None:
        self.writer = writer
        self.put = 0
        self.max_spool_rows = 0

    def rows(self, total: int, pause: float, *, states: bool = False) -> None:
        for _ in range(total):
            self.writer.put("polls", poll_row(self.put))
            if states:
                self.writer.put("target_states", _state(self.put))
            self.put += 1
            self.max_spool_rows = max(self.max_spool_rows, self.writer.spool_rows)
            time.sleep(pause)


@pytest.mark.parametrize("writes_from", ["thread", "child"])
def test_sqlite_locked_by_another_connection_spools_then_writes_everything_in_order(
    sqlite_db: tuple[str, Engine], tmp_path: Path, writes_from: str
) -> None:
    path, engine = sqlite_db  # the daemon's engine: a 5 s busy timeout before a write fails
    spool = Spool(tmp_path / "spool")
    writer = BatchWriter(
        engine,
        batch_size=10,
        flush_interval=0.05,
        max_queue=40,
        retry_initial=0.1,
        retry_max=0.5,
        spool=spool,
        in_process=writes_from == "thread",
    )
    writer.start()
    watch = _Watch(writer)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        watch.rows(150, 0.05, states=True)  # 7.5 s: past the busy timeout, so retries and the spool
        healthy_while_locked = writer.healthy
        locker.execute("ROLLBACK")
    finally:
        locker.close()
    assert writer.flush(timeout=60)
    writer.stop()

    assert not healthy_while_locked
    assert watch.max_spool_rows > 40, "more rows than the memory bound went to the spool"
    assert _scheduled(engine) == _expected(range(150)), "every row once, in the order put"
    states = repository.load_target_states(engine)
    assert states[("tk-router", "icmp")]["good_rounds"] == 149, "the last state written wins"
    assert (writer.written_total, writer.dropped_total, writer.queue_length) == (300, 0, 0)
    assert (writer.spool_bytes, list(spool.directory.glob(SEGMENT_GLOB))) == (0, [])


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of the test's own, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> Path:
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(1024):  # the tmpfs is 1 MiB: bounded
            os.write(fd, b"\0" * 1024)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_disk_full_is_transient_rows_wait_in_a_spool_elsewhere_then_land(
    small_disk: Path, tmp_path: Path
) -> None:
    engine = create_engine_for(f"sqlite:///{small_disk / 'netwatch.db'}")
    try:
        upgrade(engine)
        spool = Spool(tmp_path / "spool")  # on another filesystem than the full one
        writer = BatchWriter(
            engine,
            batch_size=10,
            flush_interval=0.05,
            max_queue=20,
            retry_initial=0.1,
            retry_max=0.3,
            spool=spool,
        )
        writer.start()
        filler = _fill(small_disk)
        with pytest.raises(DBAPIError) as full, engine.begin() as conn:
            conn.execute(insert(Poll), [poll_row(n, target="big" * 300) for n in range(500)])
        assert "database or disk is full" in str(full.value)
        assert is_transient(full.value, sqlite3)

        watch = _Watch(writer)
        watch.rows(120, 0.01)
        assert _wait_for(lambda: not writer.healthy, 10)
        error_while_full = writer.last_error
        filler.unlink()
        assert writer.flush(timeout=60)
        alive = writer._thread is not None and writer._thread.is_alive()
        writer.stop()
        scheduled = _scheduled(engine)
    finally:
        engine.dispose()

    assert error_while_full is not None and "database or disk is full" in error_while_full
    assert alive, "the writer thread outlives the full disk"
    assert watch.max_spool_rows > 20
    assert scheduled == _expected(range(120))
    assert (writer.written_total, writer.dropped_total) == (120, 0)


def test_beyond_the_spool_bound_the_newest_are_dropped_counted_exactly_and_logged(
    sqlite_db: tuple[str, Engine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, _ = sqlite_db
    # Real SQLite with a short busy timeout, so the lock is seen as an outage at once.
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    event.listen(engine, "connect", lambda c, _: c.execute("PRAGMA journal_mode=WAL"))
    record = len(encode_rows([("polls", poll_row(n)) for n in range(10)]))
    spool = Spool(tmp_path / "spool", max_bytes=4 * record)
    writer = BatchWriter(
        engine,
        batch_size=10,
        flush_interval=0.02,
        max_queue=20,
        retry_initial=0.05,
        retry_max=0.2,
        spool=spool,
    )
    writer.start()
    watch = _Watch(writer)
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        watch.rows(200, 0.005)
        held_bytes = writer.spool_bytes
        locker.execute("ROLLBACK")
    finally:
        locker.close()
    assert writer.flush(timeout=60)
    writer.stop()
    scheduled = _scheduled(engine)
    engine.dispose()

    kept = len(scheduled)
    assert 20 < kept < 200 and held_bytes <= spool.max_bytes
    assert scheduled == _expected(range(kept)), "the oldest are kept, in order; the newest dropped"
    assert writer.dropped_total == 200 - kept
    assert re.search(r"storage spool .* full \(\d+ bytes\)", caplog.text)
    assert "storage dropped 1 rows (queue full (20 rows in memory) and spool full" in caplog.text
    assert f"{200 - kept} rows were dropped during the outage" in caplog.text


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own: it is stopped and restarted under the writer."""
    with throwaway_cluster() as c:
        yield c


@pytest.mark.postgres
def test_postgres_stopped_mid_run_spools_keeps_across_a_restart_and_writes_in_order(
    cluster: PostgresCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="netwatch.storage")

    def writer_on(engine: Engine) -> BatchWriter:
        w = BatchWriter(
            engine,
            batch_size=10,
            flush_interval=0.02,
            max_queue=20,
            retry_initial=0.05,
            retry_max=0.3,
            spool=Spool(tmp_path / "spool"),
        )
        w.start()
        return w

    with fresh_database(cluster.url) as url:
        engine = create_engine_for(url)
        try:
            upgrade(engine)
            writer = writer_on(engine)
            watch = _Watch(writer)
            watch.rows(10, 0)
            assert writer.flush(timeout=30)

            cluster.stop()
            watch.rows(100, 0.01)
            assert _wait_for(lambda: writer.spool_rows >= 80, 15)
            queued_while_down = writer.queue_length
            cluster.start()
            assert writer.flush(timeout=60)
            after_first_outage = _scheduled(engine)

            # Stopped while the database is down again: what is held stays on disk for the next run.
            cluster.stop()
            watch.rows(30, 0.005)
            writer.stop(timeout=2.0)
            left_on_disk = writer.spool_rows
            cluster.start()
            second = writer_on(engine)
            assert second.flush(timeout=60)
            second.stop()
            final = _scheduled(engine)
        finally:
            engine.dispose()
            if not cluster.running():
                cluster.start()

    assert queued_while_down == 100 and watch.max_spool_rows >= 80
    assert after_first_outage == _expected(range(110))
    assert (writer.written_total, writer.dropped_total) == (110, 0)
    assert left_on_disk == 30
    assert "30 rows kept in the spool" in caplog.text
    assert final == _expected(range(140)), "nothing lost across the restart, order kept"
    assert (second.written_total, second.dropped_total) == (30, 0)


E2E_INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
defaults:
  collectors:
    icmp: {interval: 1, probes: 2, probe_spacing: 0.05, timeout: 0.3}
site_kinds:
  district: {}
sites:
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district, links: [{device: tk-router}]}
devices:
  - {name: tk-router, site: TK, address: 127.0.6.1, role: router}
  - {name: tk-server, site: TK, address: 127.0.6.2, role: server, upstream: tk-router}
"""
LOCK_SECONDS = 8.0
_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP needs root (CI runs as root)")
def test_daemon_keeps_polling_while_another_process_locks_sqlite_and_loses_no_round(tmp_path: Path) -> None:
    import sys

    from tests.support.processes import free_port, netwatch_process, samples, scrape, stop

    config = tmp_path / "inventory.yaml"
    config.write_text(E2E_INVENTORY, encoding="utf-8")
    db = tmp_path / "netwatch.db"
    port = free_port()
    args = ["run", "-c", str(config), "--db", f"sqlite:///{db}", "--listen", f"127.0.0.1:{port}"]
    args += ["--queue-max-rows", "10", "--spool-dir", str(tmp_path / "spool")]
    seen: list[tuple[float, float, float, float]] = []  # polls, up, queue length, spool bytes
    with netwatch_process(*args, port=port, cwd=tmp_path) as proc:
        assert _wait_for(lambda: samples(scrape(port), "netwatch_polls_total") >= [4.0], 20)
        locker = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(db), str(LOCK_SECONDS)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
            locked_at = datetime.now(UTC)
            while locker.poll() is None:  # bounded: the locker lets go after LOCK_SECONDS
                m = scrape(port)
                seen.append(
                    (
                        samples(m, "netwatch_polls_total")[0],
                        min(samples(m, "netwatch_up", collector="icmp")),
                        samples(m, "netwatch_storage_queue_length")[0],
                        samples(m, "netwatch_storage_spool_bytes")[0],
                    )
                )
                time.sleep(0.5)
        finally:
            if locker.poll() is None:
                locker.kill()
            locker.wait(10)
            locker.stdout.close()  # type: ignore[union-attr]
            released_at = datetime.now(UTC)
        assert _wait_for(lambda: samples(scrape(port), "netwatch_storage_queue_length") == [0.0], 60)
        drained = scrape(port)
        code, _, err = stop(proc)
    assert code == 0, err
    polls_run = int(re.search(r"stopped after (\d+) polls", err).group(1))  # type: ignore[union-attr]
    engine = create_engine_for(f"sqlite:///{db}")
    with engine.connect() as conn:
        rounds = conn.execute(select(Poll.target, Poll.scheduled_at)).all()
    engine.dispose()
    polls = len(rounds)
    while_locked = Counter(target for target, at in rounds if locked_at <= at <= released_at)

    assert len(seen) >= 10
    assert seen[-1][0] - seen[0][0] >= LOCK_SECONDS, "polling went on while the database was locked"
    assert all(up == 1.0 for _, up, _, _ in seen)
    assert max(q for _, _, q, _ in seen) > 10, "more rows waited than the memory bound"
    assert max(b for _, _, _, b in seen) > 0, "the spool took them"
    assert samples(drained, "netwatch_samples_dropped_total") == [0.0]
    assert samples(drained, "netwatch_storage_spool_bytes") == [0.0]
    assert polls == polls_run, "every poll round that ran is in the database"
    # One round a second per device; allow a round at each edge of the window.
    assert sorted(while_locked) == ["tk-router", "tk-server"]
    assert min(while_locked.values()) >= LOCK_SECONDS - 2, while_locked
    assert "unavailable" in err and "available again" in err
