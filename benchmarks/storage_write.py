"""Samples per second through netwatch's batched writer vs a raw DB-API ``executemany`` floor.

Run as root from the repository root (root only to start the throwaway PostgreSQL)::

    .venv/bin/python benchmarks/storage_write.py [--rows 200000] [--postgres]

Each side writes the same interface-sample rows into a fresh, migrated database:
- netwatch: ``BatchWriter.put`` row by row from this thread (as the pipeline does), the writer
  thread batching them into ``INSERT … ON CONFLICT DO NOTHING``; timed until ``flush`` returns;
- the same with the writer in a child process, as the daemon runs it (its CPU and peak RSS counted);
- floor: one DB-API cursor, ``executemany`` of the same statement in chunks of 1,000, one commit
  per chunk — the least any Python writer can do through the driver.
SQLite is a file in a temporary directory; ``--postgres`` also starts a throwaway PostgreSQL cluster
on 127.0.0.1 (Debian's postgresql package) and runs both sides there. Prints rows/s and ratios.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import snmp_walk  # (its /proc readers)
from sqlalchemy import Engine, create_engine, text

from netwatch.storage import migrate
from netwatch.storage.engine import create_engine_for
from netwatch.storage.writer import BatchWriter

COLUMNS = (
    "device",
    "ifindex",
    "scheduled_at",
    "started_at",
    "oper_up",
    "in_bps",
    "out_bps",
    "in_octets_total",
    "out_octets_total",
    "in_errors_total",
    "out_errors_total",
    "in_discards_total",
    "out_discards_total",
)


def rows(count: int, offset: int = 0) -> list[dict[str, Any]]:
    """``count`` interface samples: 500 devices × 20 interfaces per 60-second round, the rows of a
    round sharing its timestamps as the recorder's rows of one poll do."""
    base = datetime(2026, 10, 1, tzinfo=UTC)
    out = []
    rounds: dict[int, tuple[datetime, datetime]] = {}
    for n in range(offset, offset + count):
        round_no = n // 10_000
        if round_no not in rounds:
            at = base + timedelta(seconds=60 * round_no)
            rounds[round_no] = (at, at + timedelta(milliseconds=3))
        at, started = rounds[round_no]
        out.append(
            {
                "device": f"dev{n % 500:04d}",
                "ifindex": n // 500 % 20 + 1,
                "scheduled_at": at,
                "started_at": started,
                "oper_up": True,
                "in_bps": 1.5e6 + n,
                "out_bps": 0.7e6 + n,
                "in_octets_total": 1e9 + n * 11_250_000,
                "out_octets_total": 5e8 + n * 5_250_000,
                "in_errors_total": 0.0,
                "out_errors_total": 0.0,
                "in_discards_total": float(n % 7),
                "out_discards_total": 0.0,
            }
        )
    return out


def fresh_engine(url: str) -> Engine:
    """A migrated, empty database behind ``url``."""
    engine = create_engine_for(url)
    migrate.upgrade(engine)
    return engine


def child_usage(pid: int | None) -> tuple[float, float]:
    """CPU seconds and peak RSS (MB) of the writer's child process so far (0, 0 without one)."""
    if pid is None:
        return 0.0, 0.0
    return snmp_walk.proc_cpu(pid), snmp_walk.proc_peak_rss_mb(pid)


def netwatch_side(
    url: str, data: list[dict[str, Any]], *, in_process: bool = True
) -> tuple[float, float, int, float]:
    """Wall and CPU seconds (the child's included) for ``put`` of every row until flushed; rows
    stored; the child's peak RSS in MB (0 in-process)."""
    engine = fresh_engine(url)
    writer = BatchWriter(engine, max_queue=len(data) + 1, in_process=in_process)
    writer.start()
    cpu, wall = time.process_time(), time.perf_counter()
    for row in data:
        writer.put("interface_samples", row)
    writer.flush(timeout=600)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    child_cpu, child_peak = child_usage(writer.writer_pid)
    cpu += child_cpu
    writer.stop()
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM interface_samples")).scalar_one()
    engine.dispose()
    return wall, cpu, int(stored), child_peak


def floor_side(url: str, data: list[dict[str, Any]]) -> tuple[float, float, int]:
    """Wall and CPU seconds for raw ``executemany`` in chunks of 1,000; rows stored."""
    engine = fresh_engine(url)
    postgres = engine.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    sql = (
        f"INSERT INTO interface_samples ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))}) "
        "ON CONFLICT DO NOTHING"
    )
    # SQLite stores netwatch's datetimes as ISO text; give the driver the same text so both store alike.
    params = [
        tuple(
            (v.replace(tzinfo=None).isoformat(sep=" ") if not postgres else v)
            if isinstance(v, datetime)
            else v
            for v in (row[c] for c in COLUMNS)
        )
        for row in data
    ]
    raw = engine.raw_connection()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        cursor = raw.cursor()
        for i in range(0, len(params), 1000):
            cursor.executemany(sql, params[i : i + 1000])
            raw.commit()
        cursor.close()
    finally:
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        raw.close()
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM interface_samples")).scalar_one()
    engine.dispose()
    return wall, cpu, int(stored)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway cluster on 127.0.0.1 (as the tests use); yields a server URL."""
    from tests.support.postgres import PostgresCluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found: apt install postgresql")
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster.url
    finally:
        cluster.destroy()


@contextmanager
def database(server_url: str, name: str) -> Iterator[str]:
    """A new database ``name`` on the server; dropped afterwards."""
    admin = create_engine(
        server_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def line(backend: str, nw: tuple[float, float, int, float], fl: tuple[float, float, int], count: int) -> str:
    """One table row."""
    peak = f"{nw[3]:>8.1f}" if nw[3] else f"{'-':>8}"
    return (
        f"{backend:16} {count / nw[0]:>12,.0f} {count / fl[0]:>12,.0f} {nw[0] / fl[0]:>7.2f}× "
        f"{nw[1]:>8.2f} {fl[1]:>8.2f} {peak}   {nw[2]:,}/{fl[2]:,}"
    )


def main() -> None:
    """Both sides on SQLite (and PostgreSQL), then the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--postgres", action="store_true", help="also start a throwaway PostgreSQL")
    args = parser.parse_args()
    data = rows(args.rows)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        nw = netwatch_side(f"sqlite:///{tmp}/nw.db", data)
        fl = floor_side(f"sqlite:///{tmp}/floor.db", data)
        child = netwatch_side(f"sqlite:///{tmp}/nw-child.db", data, in_process=False)
        lines.append(line("sqlite", nw, fl, args.rows))
        lines.append(line("sqlite, child", child, fl, args.rows))
        results = {"sqlite": (nw, fl), "sqlite_child": (child, fl)}
    if args.postgres:
        with postgres_server() as server:
            with database(server, "bench_nw") as url:
                nw = netwatch_side(url, data)
            with database(server, "bench_floor") as url:
                fl = floor_side(url, data)
            with database(server, "bench_child") as url:
                child = netwatch_side(url, data, in_process=False)
        lines.append(line("postgresql", nw, fl, args.rows))
        lines.append(line("postgresql, child", child, fl, args.rows))
        results["postgresql"] = (nw, fl)
        results["postgresql_child"] = (child, fl)
    print(
        f"interface samples written, {args.rows:,} rows (wall rows/s; CPU s of this process and, "
        "for 'child', of the writer's child process; the child's peak RSS)"
    )
    print(
        f"{'backend':16} {'netwatch/s':>12} {'floor/s':>12} {'time×':>8} {'nw CPU':>8} {'fl CPU':>8} "
        f"{'child MB':>8}   stored"
    )
    print("\n".join(lines))
    for backend, (nw, fl) in results.items():
        print(
            f"RESULT storage_{backend} netwatch_rows_s={args.rows / nw[0]:.0f} "
            f"floor_rows_s={args.rows / fl[0]:.0f} ratio={nw[0] / fl[0]:.2f} cpu_s={nw[1]:.2f} "
            f"child_peak_mb={nw[3]:.1f}"
        )


if __name__ == "__main__":
    main()
