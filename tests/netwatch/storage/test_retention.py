"""Retention: what goes and what stays, in small transactions, beside a writing BatchWriter."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, func, select, update

from netwatch.config.retention import RetentionPolicy
from netwatch.storage.dml import table_named
from netwatch.storage.models import Poll, RollupProgress
from netwatch.storage.retention import apply_retention
from netwatch.storage.rollups import progress, roll_up
from netwatch.storage.writer import BatchWriter
from tests.netwatch.storage.history import icmp_row, insert_rows, interface_row, make_link
from tests.netwatch.storage.rows import count

NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)


def _times(
    engine: Engine, table: str, column: str = "scheduled_at"
) -> tuple[datetime | None, datetime | None]:
    t = table_named(table)
    with engine.connect() as conn:
        low, high = conn.execute(select(func.min(t.c[column]), func.max(t.c[column]))).one()
    return low, high


def _history(engine: Engine, start: datetime, end: datetime, step: timedelta) -> int:
    rows, icmp, at = [], [], start
    while at < end:
        rows.append(interface_row("r1", 1, at, 1e6, 2e6))
        icmp.append(icmp_row("r1", at, 3, 0.01))
        at += step
    insert_rows(engine, "interface_samples", rows)
    insert_rows(engine, "polls", icmp)
    return len(rows)


def test_raw_samples_go_after_raw_days_in_small_transactions(migrated: Engine) -> None:
    _history(migrated, NOW - timedelta(days=10), NOW, timedelta(minutes=5))
    roll_up(migrated, until=NOW)
    deletes: list[int] = []

    def on_execute(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(cursor.rowcount)

    event.listen(migrated, "after_cursor_execute", on_execute)
    try:
        deleted = apply_retention(migrated, RetentionPolicy(batch_rows=100), NOW)
    finally:
        event.remove(migrated, "after_cursor_execute", on_execute)

    assert deleted["interface_samples"] == deleted["icmp_rounds"] == 2 * 288  # days 10 and 9 back
    assert _times(migrated, "interface_samples")[0] == NOW - timedelta(days=8)
    assert _times(migrated, "polls")[0] == NOW - timedelta(days=8)
    assert max(deletes) == 100 and len(deletes) == 2 * 6  # 576 rows a table, 100 per transaction
    assert deleted["interface_rollups_5m"] == deleted["interface_rollups_1h"] == 0
    assert _times(migrated, "interface_rollups", "bucket_start")[0] == NOW - timedelta(days=10)


def test_raw_samples_newer_than_the_rollup_cursor_are_kept(migrated: Engine) -> None:
    _history(migrated, NOW - timedelta(days=10), NOW, timedelta(minutes=30))
    policy = RetentionPolicy()

    assert apply_retention(migrated, policy, NOW)["interface_samples"] == 0  # never rolled up yet

    # The rollups stopped 9 days ago (daemon down): raw samples after that are still needed.
    roll_up(migrated, until=NOW - timedelta(days=9, minutes=-3))
    assert progress(migrated)["interface_5m"] == NOW - timedelta(days=9)
    deleted = apply_retention(migrated, policy, NOW)

    assert deleted["interface_samples"] == 48
    assert _times(migrated, "interface_samples")[0] == NOW - timedelta(days=9)
    roll_up(migrated, until=NOW)
    assert count(migrated, "interface_rollups") > 0


def test_raw_interface_samples_wait_for_the_hourly_rollup_too(migrated: Engine) -> None:
    _history(migrated, NOW - timedelta(days=10), NOW, timedelta(minutes=30))
    # A run cut short after the 40 batches of the 5-minute rollup: the hourly one, which reads the
    # raw samples too (5-minute rows exist only for links), has not started.
    roll_up(migrated, until=NOW, max_batches=40)
    assert "interface_5m" in progress(migrated) and "interface_1h" not in progress(migrated)

    assert apply_retention(migrated, RetentionPolicy(), NOW)["interface_samples"] == 0

    roll_up(migrated, until=NOW)
    assert apply_retention(migrated, RetentionPolicy(), NOW)["interface_samples"] == 2 * 48
    assert _times(migrated, "interface_rollups", "bucket_start")[0] == NOW - timedelta(days=10)


def test_rollups_go_by_their_own_retention_and_hourly_stays_by_default(migrated: Engine) -> None:
    start = NOW - timedelta(days=403)
    make_link(migrated, "r1", 1)  # 5-minute interface rollups are kept for links only
    _history(migrated, start, start + timedelta(days=5), timedelta(hours=2))
    roll_up(migrated, until=start + timedelta(days=6))
    hourly_before = count(migrated, "interface_rollups") - 60  # 60 five-minute rows

    deleted = apply_retention(migrated, RetentionPolicy(), NOW)

    assert deleted["interface_rollups_5m"] == 36  # the first 3 of the 5 days
    assert deleted["icmp_rollups_5m"] == 36
    assert deleted["interface_rollups_1h"] == 0
    assert _times(migrated, "interface_rollups", "bucket_start")[0] == start  # hourly rows stay
    assert count(migrated, "interface_rollups") == hourly_before + 24

    deleted = apply_retention(migrated, RetentionPolicy(hourly_days=401), NOW)
    assert deleted["interface_rollups_1h"] == 24  # two days of hours (2-hourly samples: 12 a day)


def test_retention_beside_a_batch_writer_loses_no_row(sqlite_db: tuple[str, Engine]) -> None:
    _, engine = sqlite_db
    _history(engine, NOW - timedelta(days=12), NOW - timedelta(days=7), timedelta(seconds=60))
    roll_up(engine, until=NOW - timedelta(days=7))
    writer = BatchWriter(engine, batch_size=200, flush_interval=0.05)
    writer.start()
    new_rows = 3000

    def write() -> None:
        for n in range(new_rows):
            writer.put("interface_samples", interface_row("r2", 7, NOW + timedelta(seconds=n), 1.0, 1.0))

    thread = threading.Thread(target=write)
    thread.start()
    deleted = apply_retention(engine, RetentionPolicy(batch_rows=500), NOW)
    thread.join(timeout=60)
    assert writer.flush(timeout=60)
    writer.stop()

    assert deleted["interface_samples"] == 4 * 1440  # days 12 to 8 back
    assert writer.dropped_total == 0
    t = table_named("interface_samples")
    with engine.connect() as conn:
        written = conn.execute(select(func.count()).select_from(t).where(t.c.device == "r2")).scalar_one()
    assert written == new_rows


def test_poll_log_waits_for_its_rollup_and_poll_rollups_stay_as_long_as_hourly(migrated: Engine) -> None:
    start = NOW - timedelta(days=403)
    rows = [poll_row(start + timedelta(minutes=30 * n)) for n in range(5 * 48)]  # 5 days, 2 an hour
    insert_rows(migrated, "polls", rows)

    assert apply_retention(migrated, RetentionPolicy(), NOW)["polls"] == 0  # never rolled up yet
    roll_up(migrated, until=start + timedelta(days=1, minutes=3))  # the first day only
    deleted = apply_retention(migrated, RetentionPolicy(), NOW)
    assert deleted["polls"] == 48  # the day rolled up; the next 4 wait for their rollup
    assert _times(migrated, "polls")[0] == start + timedelta(days=1)
    roll_up(migrated, until=NOW)
    assert apply_retention(migrated, RetentionPolicy(), NOW)["polls"] == 4 * 48

    assert count(migrated, "poll_rollups") == 5 * 24  # kept: hourly rollups stay by default
    deleted = apply_retention(migrated, RetentionPolicy(hourly_days=401), NOW)
    assert deleted["poll_rollups"] == 2 * 24  # days 403 and 402 back


def poll_row(at: datetime) -> dict[str, Any]:
    """One on-time SNMP poll of r1 (ICMP rounds are raw samples too: see the test above)."""
    return {
        "target": "r1",
        "kind": "snmp",
        "scheduled_at": at,
        "started_at": at,
        "duration_seconds": 0.01,
        "success": True,
        "reason": None,
        "run_id": "run-1",
        "on_time": True,
    }


def test_icmp_rounds_are_kept_for_the_longer_of_raw_and_poll_days_and_wait_for_both_rollups(
    migrated: Engine,
) -> None:
    # Two rounds an hour for 12 days, and an SNMP poll beside each.
    start = NOW - timedelta(days=12)
    at = [start + timedelta(minutes=30 * n) for n in range(12 * 48)]
    insert_rows(migrated, "polls", [icmp_row("r1", t, 3, 0.01) for t in at])
    insert_rows(migrated, "polls", [poll_row(t) for t in at])

    roll_up(migrated, until=NOW)
    # The ICMP rollup fell behind (11 days ago): its raw samples wait, the SNMP polls do not.
    with migrated.begin() as conn:
        conn.execute(
            update(RollupProgress).where(RollupProgress.name == "icmp_5m"),
            {"done_until": NOW - timedelta(days=11)},
        )
    policy = RetentionPolicy(raw_days=10, polls_days=3)
    deleted = apply_retention(migrated, policy, NOW)
    assert (deleted["polls"], deleted["icmp_rounds"]) == (9 * 48, 48)

    roll_up(migrated, until=NOW)
    deleted = apply_retention(migrated, policy, NOW)
    assert (deleted["polls"], deleted["icmp_rounds"]) == (0, 48)  # kept 10 days, not 3
    with migrated.connect() as conn:
        kinds = dict(conn.execute(select(Poll.kind, func.min(Poll.scheduled_at)).group_by(Poll.kind)).all())
    assert kinds == {"icmp": NOW - timedelta(days=10), "snmp": NOW - timedelta(days=3)}
