"""Rollups: bucket boundaries, hand-checked figures, 5-minute rows for links only, incremental ==
rebuild, crash safety, backends."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from netwatch.storage import rollups
from netwatch.storage.dml import table_named
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.rollups import nearest_rank, rebuild, roll_up
from tests.netwatch.storage.history import (
    assert_same_rows,
    icmp_row,
    insert_rows,
    interface_row,
    make_link,
    random_history,
    snapshot,
)

T = datetime(2026, 10, 14, 10, 0, tzinfo=UTC)
ROLLUP_TABLES = ("interface_rollups", "icmp_rollups", "poll_rollups")


def poll_row(target: str, kind: str, at: datetime, on_time: bool | None) -> dict[str, Any]:
    """One poll log row; ``on_time`` None as recorded before revision 0008."""
    return {
        "target": target,
        "kind": kind,
        "scheduled_at": at,
        "started_at": at,
        "duration_seconds": 0.01,
        "success": True,
        "reason": None,
        "run_id": "run-1",
        "on_time": on_time,
    }


def random_polls(engine: Engine, start: datetime, hours: int, seed: int = 11) -> None:
    """``hours`` of poll log: 2 ICMP targets every 10 s and one SNMP target every 60 s (their figures
    left out: only the poll log's columns), some late,
    some missed, the first hour's without a verdict (recorded before revision 0008)."""
    rng = random.Random(seed)
    rows = []
    for n in range(hours * 360):
        at = start + timedelta(seconds=10 * n)
        # Not r1 and r2: random_history's ICMP rounds are their polls.
        jobs = [("p1", "icmp"), ("p2", "icmp")] + ([("p1", "snmp")] if n % 6 == 0 else [])
        for target, kind in jobs:
            if rng.random() < 0.02:
                continue
            verdict = None if n < 360 else rng.random() < 0.9
            rows.append(poll_row(target, kind, at, verdict))
    insert_rows(engine, "polls", rows)


def _rollups(engine: Engine, table: str, resolution: str) -> dict[Any, dict[str, Any]]:
    t = table_named(table)
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.resolution == resolution)).mappings().all()
    key = ("device", "ifindex") if table == "interface_rollups" else ("target",)
    return {(*(row[k] for k in key), row["bucket_start"]): dict(row) for row in rows}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (list(range(1, 21)), 19),  # rank ⌈0.95·20⌉ = 19, no float error
        (list(range(1, 101)), 95),
        (list(range(100, 0, -1)), 95),  # order does not matter
        ([5.0] * 3 + [1.0], 5.0),
        ([7.0], 7.0),
        (list(range(1, 13)), 12),  # ≤ 19 values: the largest
        ([], None),
    ],
)
def test_nearest_rank_95th_percentile(values: list[float], expected: float | None) -> None:
    assert nearest_rank(values) == expected


def test_five_minute_buckets_hold_their_polls_and_skip_missing_rates(migrated: Engine) -> None:
    make_link(migrated, "r1", 1)
    rows = [interface_row("r1", 1, T + timedelta(minutes=m), 1000.0 * (m + 1), 10.0) for m in range(5)]
    rows += [
        interface_row("r1", 1, T + timedelta(minutes=4, seconds=59, microseconds=999_000), None, None),
        interface_row("r1", 1, T + timedelta(minutes=5), 9000.0, None),  # first of the next bucket
    ]
    insert_rows(migrated, "interface_samples", rows)

    roll_up(migrated, until=T + timedelta(hours=1))

    got = _rollups(migrated, "interface_rollups", "5m")
    first = got[("r1", 1, T)]
    assert first["samples"] == 6
    assert first["in_bps_avg"] == pytest.approx(3000.0)  # mean of 1000…5000; the NULL rate is left out
    assert first["in_bps_max"] == 5000.0
    assert first["out_bps_avg"] == pytest.approx(10.0)
    assert first["in_octets"] == pytest.approx(3000.0 * 300 / 8)
    second = got[("r1", 1, T + timedelta(minutes=5))]
    assert (second["samples"], second["in_bps_avg"], second["out_bps_avg"]) == (1, 9000.0, None)
    assert len(got) == 2


def test_hourly_buckets_from_five_minute_averages(migrated: Engine) -> None:
    # r1/1 is no link: no 5-minute rows, but its hourly row still comes from 5-minute averages.
    # Twelve 5-minute buckets in hour 10:00 with averages 1..12 Mbit/s, one poll each, and a poll
    # at 10:59:59 (still hour 10) and one at 11:00:00 (hour 11).
    rows = [interface_row("r1", 1, T + timedelta(minutes=5 * k), 1e6 * (k + 1), 2e6) for k in range(12)]
    rows.append(interface_row("r1", 1, T + timedelta(minutes=59, seconds=59), 12e6, 2e6))
    rows.append(interface_row("r1", 1, T + timedelta(hours=1), 50e6, 1e6))
    insert_rows(migrated, "interface_samples", rows)

    roll_up(migrated, until=T + timedelta(hours=3))

    hourly = _rollups(migrated, "interface_rollups", "1h")
    hour = hourly[("r1", 1, T)]
    assert hour["samples"] == 13
    assert hour["in_bps_avg"] == pytest.approx(6.5e6)  # mean of the twelve 5-minute averages
    assert hour["in_bps_p95"] == 12e6  # nearest rank of 12 values: the 12th
    assert hour["in_bps_max"] == 12e6
    assert hour["in_octets"] == pytest.approx(sum(1e6 * (k + 1) for k in range(12)) * 300 / 8)
    assert hourly[("r1", 1, T + timedelta(hours=1))]["in_bps_avg"] == 50e6


def test_only_buckets_a_grace_period_past_their_end_are_rolled_up(migrated: Engine) -> None:
    make_link(migrated, "r1", 1)
    insert_rows(
        migrated,
        "interface_samples",
        [interface_row("r1", 1, T + timedelta(minutes=m), 1.0, 1.0) for m in range(10)],
    )
    grace = timedelta(minutes=3)

    first = roll_up(migrated, until=T + timedelta(minutes=7, seconds=59), grace=grace)
    assert first.done_until["interface_5m"] is None and _rollups(migrated, "interface_rollups", "5m") == {}

    second = roll_up(migrated, until=T + timedelta(minutes=8), grace=grace)
    assert second.done_until["interface_5m"] == T + timedelta(minutes=5)
    assert list(_rollups(migrated, "interface_rollups", "5m")) == [("r1", 1, T)]
    assert _rollups(migrated, "interface_rollups", "1h") == {}  # hour 10 is not over


def test_five_minute_rows_for_links_only_hourly_for_every_interface(migrated: Engine) -> None:
    make_link(migrated, "r1", 1)
    # Two hours of polls every minute; r2/5's rates step 1, 2, …, 12 Mbit/s through each hour.
    rows = [
        interface_row(device, ifindex, T + timedelta(minutes=m), rate, 2e6)
        for m in range(120)
        for device, ifindex, rate in (("r1", 1, 3e6), ("r2", 5, 1e6 * (m % 60 // 5 + 1)))
    ]
    insert_rows(migrated, "interface_samples", rows)

    roll_up(migrated, until=T + timedelta(hours=1, minutes=3))

    five = _rollups(migrated, "interface_rollups", "5m")
    assert sorted(five) == [("r1", 1, T + timedelta(minutes=5 * k)) for k in range(12)]
    hourly = _rollups(migrated, "interface_rollups", "1h")
    assert sorted(hourly) == [("r1", 1, T), ("r2", 5, T)]
    other = hourly[("r2", 5, T)]
    assert other["samples"] == 60
    assert other["in_bps_avg"] == pytest.approx(6.5e6)
    assert other["in_bps_p95"] == 12e6  # the largest 5-minute average, the report's hourly peak
    assert other["in_octets"] == pytest.approx(sum(1e6 * (k + 1) for k in range(12)) * 300 / 8)
    link = hourly[("r1", 1, T)]
    assert (link["samples"], link["in_bps_avg"]) == (60, pytest.approx(3e6))
    # The link's hourly row sums its 5-minute rows.
    assert link["in_octets"] == pytest.approx(sum(row["in_octets"] for row in five.values()))

    # r2/5 becomes a link: 5-minute rows from the next buckets rolled up on, …
    make_link(migrated, "r2", 5, site="S2")
    roll_up(migrated, until=T + timedelta(hours=2, minutes=3))
    five = _rollups(migrated, "interface_rollups", "5m")
    assert sorted(k[2] for k in five if k[:2] == ("r2", 5)) == [
        T + timedelta(minutes=60 + 5 * k) for k in range(12)
    ]
    assert five[("r2", 5, T + timedelta(hours=1))]["in_bps_avg"] == pytest.approx(1e6)
    # … and a rebuild gives it its past while the raw samples last, leaving hourly rows as they were.
    hourly_rows = [row for row in snapshot(migrated, "interface_rollups") if row[2] == "1h"]
    rebuild(migrated, T, T + timedelta(hours=2))
    five = _rollups(migrated, "interface_rollups", "5m")
    assert len([k for k in five if k[:2] == ("r2", 5)]) == 24 and len(five) == 48
    assert_same_rows([row for row in snapshot(migrated, "interface_rollups") if row[2] == "1h"], hourly_rows)


def test_icmp_rollups_weight_rtt_by_answered_probes(migrated: Engine) -> None:
    insert_rows(
        migrated,
        "polls",
        [
            icmp_row("r1", T, 3, 0.010),
            icmp_row("r1", T + timedelta(seconds=10), 1, 0.040),
            icmp_row("r1", T + timedelta(seconds=20), 0, None),
            icmp_row("r1", T + timedelta(minutes=5), 2, 0.020),
        ],
    )

    roll_up(migrated, until=T + timedelta(hours=2))

    five = _rollups(migrated, "icmp_rollups", "5m")[("r1", T)]
    assert (five["rounds"], five["sent"], five["received"]) == (3, 9, 4)
    assert five["rtt_avg_seconds"] == pytest.approx((3 * 0.010 + 0.040) / 4)
    assert (five["rtt_min_seconds"], five["rtt_max_seconds"]) == (0.010, 0.040)
    hour = _rollups(migrated, "icmp_rollups", "1h")[("r1", T)]
    assert (hour["rounds"], hour["sent"], hour["received"]) == (4, 12, 6)
    assert hour["rtt_avg_seconds"] == pytest.approx((3 * 0.010 + 0.040 + 2 * 0.020) / 6)


def test_poll_rollups_count_polls_on_time_and_without_verdict_per_hour(migrated: Engine) -> None:
    rows = [
        poll_row("r1", "icmp", T, True),
        poll_row("r1", "icmp", T + timedelta(seconds=10), False),
        poll_row("r1", "icmp", T + timedelta(seconds=20), None),
        poll_row("r1", "icmp", T + timedelta(minutes=59, seconds=59, microseconds=999_000), True),
        poll_row("r1", "snmp", T + timedelta(minutes=1), True),
        poll_row("r1", "icmp", T + timedelta(hours=1), True),  # the next hour
        poll_row("r1", "icmp", T + timedelta(hours=2), True),  # its hour is not over
    ]
    insert_rows(migrated, "polls", rows)

    done = roll_up(migrated, until=T + timedelta(hours=2, minutes=59))

    assert done.done_until["polls_1h"] == T + timedelta(hours=2)
    got = {(r[0], r[1], r[2]): r[3:] for r in snapshot(migrated, "poll_rollups")}
    assert got == {
        ("r1", "icmp", T): (4, 2, 1),  # polls, on time, without a verdict
        ("r1", "icmp", T + timedelta(hours=1)): (1, 1, 0),
        ("r1", "snmp", T): (1, 1, 0),
    }


def _clear_rollups(engine: Engine) -> None:
    with engine.begin() as conn:
        for name in ROLLUP_TABLES:
            conn.execute(delete(table_named(name)))


def test_interrupted_incremental_runs_equal_a_rebuild(
    migrated: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = T - timedelta(minutes=17)  # not on an hour: the first batch is partial
    make_link(migrated, "r1", 1)  # r1/2 and r2/5 are no links
    random_history(migrated, start, hours=14)
    random_polls(migrated, start, hours=14)
    end = start + timedelta(hours=14, minutes=30)

    # The daemon's way: small steps as time passes, some runs cut short after one batch.
    for step, until in enumerate(start + timedelta(minutes=47 * n) for n in range(1, 8)):
        roll_up(migrated, until=until, batch=timedelta(hours=1), max_batches=1 if step % 2 else None)
    # A crash inside a batch, after its rows were written and before its cursor moved.
    before = rollups.progress(migrated)
    calls = {"n": 0}
    real = rollups._write_progress

    def crash_on_second(conn: Any, name: str, done_until: datetime) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        real(conn, name, done_until)

    monkeypatch.setattr(rollups, "_write_progress", crash_on_second)
    with pytest.raises(RuntimeError, match="simulated crash"):
        roll_up(migrated, until=end, batch=timedelta(hours=1))
    monkeypatch.setattr(rollups, "_write_progress", real)
    after_crash = rollups.progress(migrated)
    moved = [name for name in after_crash if after_crash[name] != before.get(name)]
    assert len(moved) == 1  # only the batch before the crash counted
    roll_up(migrated, until=end)
    incremental = {name: snapshot(migrated, name) for name in ROLLUP_TABLES}
    cursors = rollups.progress(migrated)
    assert cursors["interface_5m"] == cursors["icmp_5m"] == T + timedelta(hours=14, minutes=10)  # end − grace
    assert cursors["interface_1h"] == cursors["icmp_1h"] == cursors["polls_1h"] == T + timedelta(hours=14)

    _clear_rollups(migrated)
    steps: list[tuple[int, int]] = []
    rebuilt = rebuild(migrated, start, start + timedelta(hours=14), on_batch=lambda *step: steps.append(step))
    # The progress bar's steps: one per batch, in order, ending at the total.
    assert [done for done, _ in steps] == list(range(1, sum(rebuilt.batches.values()) + 1))
    assert steps[-1][0] == steps[-1][1]
    assert all(later[1] <= earlier[1] for earlier, later in itertools.pairwise(steps))

    for name in ROLLUP_TABLES:
        assert_same_rows(snapshot(migrated, name), incremental[name])
    # 09:43 → 23:43: 169 five-minute buckets for the one link, 15 hourly ones for each of 3 interfaces.
    assert len(incremental["interface_rollups"]) == 169 + 3 * 15
    # Hours 09:00 (from 09:43) to 23:00, the cursor at 24:00: 15 for each of 5 target × kind pairs
    # (the poll log's p1, p2 and p1's SNMP, and random_history's rounds of r1 and r2).
    assert len(incremental["poll_rollups"]) == 5 * 15
    # Running again changes nothing: the cursors are at the end.
    assert sum(roll_up(migrated, until=end).batches.values()) == 0


def test_rebuild_keeps_rollups_whose_raw_samples_are_gone(migrated: Engine) -> None:
    make_link(migrated, "r1", 1)
    random_history(migrated, T, hours=3)
    roll_up(migrated, until=T + timedelta(hours=4))
    kept = snapshot(migrated, "interface_rollups")
    samples = table_named("interface_samples")
    with migrated.begin() as conn:
        conn.execute(delete(samples).where(samples.c.scheduled_at < T + timedelta(hours=1)))

    steps: list[tuple[int, int]] = []
    rebuild(
        migrated, T - timedelta(days=1), T + timedelta(hours=3), on_batch=lambda *step: steps.append(step)
    )

    assert steps[-1][0] == steps[-1][1]  # the day without samples shrank the total, not the bar's end
    assert_same_rows(snapshot(migrated, "interface_rollups"), kept)


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_the_same_rollups(tmp_path: Any, postgres_db_url: str) -> None:
    results = []
    for url in (f"sqlite:///{tmp_path / 'a.db'}", postgres_db_url):
        engine = create_engine_for(url)
        try:
            upgrade(engine)
            make_link(engine, "r1", 1)
            random_history(engine, T, hours=5)
            random_polls(engine, T, hours=5)
            roll_up(engine, until=T + timedelta(hours=6), batch=timedelta(hours=2))
            results.append({name: snapshot(engine, name) for name in ROLLUP_TABLES})
        finally:
            engine.dispose()
    sqlite_rows, pg_rows = results
    for name in ROLLUP_TABLES:
        assert sqlite_rows[name]
        assert_same_rows(pg_rows[name], sqlite_rows[name])
