"""Start-up and command-line reads and writes: inventory mirror, persisted states, runs and gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from netwatch.config.inventory import Device, HealthRules, Inventory, Province, Site
from netwatch.storage import repository
from netwatch.storage.models import Device as DeviceRow
from netwatch.storage.models import InstanceRun
from netwatch.storage.models import Site as SiteRow
from netwatch.storage.writer import BatchWriter
from tests.netwatch.storage.rows import T0, poll_row


def _inventory(sla: float) -> Inventory:
    sites = {
        "TINH": Site("TINH", "Văn phòng Tỉnh ủy", "province", "TP", None, HealthRules(sla_target=0.999)),
        "XA01": Site("XA01", "UBND xã Đồng Tâm", "commune", "H01", "TINH", HealthRules(sla_target=sla)),
    }
    devices = {
        "core": Device("core", "TINH", "198.51.100.1", "router"),
        "xa01-gw": Device("xa01-gw", "XA01", "203.0.113.10", "router", upstream="core"),
    }
    return Inventory(Province("TB", "Thái Bình"), sites, devices)


def test_sync_inventory_upserts_sites_and_devices_and_removes_none(migrated: Engine) -> None:
    repository.sync_inventory(migrated, _inventory(0.98), now=T0)
    smaller = Inventory(Province("TB", "Thái Bình"), {"XA01": _inventory(0.95).sites["XA01"]}, {})
    repository.sync_inventory(migrated, smaller, now=T0 + timedelta(hours=1))
    with migrated.connect() as conn:
        sites = {r.code: r for r in conn.execute(select(SiteRow))}
        devices = {r.name: r for r in conn.execute(select(DeviceRow))}
    assert set(sites) == {"TINH", "XA01"}
    assert sites["XA01"].name == "UBND xã Đồng Tâm"
    assert sites["XA01"].sla_target == 0.95
    assert sites["XA01"].updated_at == T0 + timedelta(hours=1)
    assert sites["TINH"].updated_at == T0
    assert devices["xa01-gw"].upstream == "core"
    assert devices["core"].upstream is None


def test_states_written_by_the_writer_load_back(migrated: Engine) -> None:
    writer = BatchWriter(migrated, flush_interval=0.05)
    writer.start()
    writer.put(
        "target_states",
        {
            "target": "xa01-gw",
            "kind": "icmp",
            "state": "down",
            "since": T0,
            "failed_rounds": 3,
            "good_rounds": 0,
            "first_failed_at": T0,
            "first_good_at": None,
            "last_poll_at": T0 + timedelta(minutes=2),
            "updated_at": T0 + timedelta(minutes=2),
        },
    )
    writer.put(
        "site_states",
        {"site": "XA01", "state": "unreachable", "since": T0, "cause": "TINH", "updated_at": T0},
    )
    writer.stop()
    targets = repository.load_target_states(migrated)
    sites = repository.load_site_states(migrated)
    assert targets[("xa01-gw", "icmp")]["failed_rounds"] == 3
    assert targets[("xa01-gw", "icmp")]["since"] == T0
    assert sites == {
        "XA01": {"site": "XA01", "state": "unreachable", "since": T0, "cause": "TINH", "updated_at": T0}
    }


def test_runs_cover_their_time_and_a_dead_run_ends_at_its_last_heartbeat(migrated: Engine) -> None:
    first = repository.start_run(migrated, instance="nms1", shard="0/1", version="0.1.0", now=T0)
    repository.heartbeat(migrated, first, now=T0 + timedelta(minutes=10))
    repository.stop_run(migrated, first, now=T0 + timedelta(minutes=20))
    crashed = repository.start_run(
        migrated, instance="nms1", shard="0/1", version="0.1.0", now=T0 + timedelta(minutes=30)
    )
    repository.heartbeat(migrated, crashed, now=T0 + timedelta(minutes=45))
    with migrated.connect() as conn:
        run = conn.execute(select(InstanceRun).where(InstanceRun.run_id == first)).one()
    assert (run.instance, run.shard, run.stopped_at) == ("nms1", "0/1", T0 + timedelta(minutes=20))
    gaps = repository.monitoring_gaps(migrated, T0 - timedelta(minutes=5), T0 + timedelta(hours=1))
    assert gaps == [
        (T0 - timedelta(minutes=5), T0),
        (T0 + timedelta(minutes=20), T0 + timedelta(minutes=30)),
        (T0 + timedelta(minutes=45), T0 + timedelta(hours=1)),
    ]


def test_no_run_at_all_is_one_whole_gap(migrated: Engine) -> None:
    assert repository.monitoring_gaps(migrated, T0, T0 + timedelta(days=1)) == [(T0, T0 + timedelta(days=1))]


def _t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("covered", "gaps"),
    [
        ([], [(0, 60)]),
        ([(0, 60)], []),
        ([(-10, 70)], []),
        ([(10, 20)], [(0, 10), (20, 60)]),
        ([(10, 20), (15, 30)], [(0, 10), (30, 60)]),  # overlapping runs (two shards)
        ([(30, 40), (10, 20)], [(0, 10), (20, 30), (40, 60)]),  # unordered
        ([(10, 20), (20, 30)], [(0, 10), (30, 60)]),  # back to back: no gap between
        ([(10, 50), (20, 30)], [(0, 10), (50, 60)]),  # nested
        ([(-30, -10), (70, 90)], [(0, 60)]),  # entirely outside
        ([(-5, 5), (55, 65)], [(5, 55)]),  # clipped at both ends
    ],
)
def test_uncovered(covered: list[tuple[int, int]], gaps: list[tuple[int, int]]) -> None:
    intervals = [(_t(a), _t(b)) for a, b in covered]
    assert repository.uncovered(intervals, _t(0), _t(60)) == [(_t(a), _t(b)) for a, b in gaps]


def test_recent_polls_newest_first_and_by_target(migrated: Engine) -> None:
    writer = BatchWriter(migrated, flush_interval=0.05)
    writer.start()
    for n in range(5):
        writer.put("polls", poll_row(n, target="r1"))
        writer.put("polls", poll_row(n, target="r2"))
    writer.stop()
    latest = repository.recent_polls(migrated, limit=3)
    assert [(p["target"], p["scheduled_at"]) for p in latest] == [
        ("r2", _t(4)),
        ("r1", _t(4)),
        ("r2", _t(3)),
    ]
    only_r1 = repository.recent_polls(migrated, target="r1")
    assert [p["scheduled_at"] for p in only_r1] == [_t(n) for n in (4, 3, 2, 1, 0)]
    assert all(p["scheduled_at"].tzinfo is UTC for p in only_r1)
