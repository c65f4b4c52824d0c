"""Shard assignment: stable across processes, whole district subtrees, province level on shard 0."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from netwatch.config import load_inventory
from netwatch.config.inventory import Inventory
from netwatch.daemon import Daemon, DaemonOptions
from netwatch.exporter import make_registry
from netwatch.health import RoundOutcome, TargetHealth
from netwatch.sharding import (
    district_key,
    external_parents,
    owned_devices,
    owned_jobs,
    owned_sites,
    parse_shard,
    shard_of_district,
    shard_of_site,
)
from netwatch.sitehealth import SiteState, SiteStatus
from netwatch.sites import SiteTracker
from netwatch.state import LatestState, MonthFigures
from netwatch.storage import migrate, repository
from netwatch.storage.engine import create_engine_for

REPO = Path(__file__).resolve().parents[2]
SECRETS = {
    "QNM_SNMP_COMMUNITY": "not-a-secret",
    "QNM_SNMP_AUTH_KEY": "authkey-123",
    "QNM_SNMP_PRIV_KEY": "privkey-123",
}


@pytest.fixture(scope="module")
def quangnam() -> Inventory:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in SECRETS.items():
            mp.setenv(name, value)
        return load_inventory(REPO / "config" / "quangnam.example.yaml")


@pytest.mark.parametrize(("spec", "expected"), [("0/1", (0, 1)), ("2/3", (2, 3)), (" 1 / 4 ", (1, 4))])
def test_parse_shard_accepts_k_of_n(spec: str, expected: tuple[int, int]) -> None:
    assert parse_shard(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("3/3", "K must be between 0 and 2"),
        ("1/0", "N must be at least 1"),
        ("-1/3", "not of the form K/N"),
        ("a/b", "not of the form K/N"),
        ("2", "not of the form K/N"),
    ],
)
def test_parse_shard_rejects_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(spec)


def test_assignment_is_the_same_in_another_process_with_another_hash_seed() -> None:
    codes = ["TK", "HA", "DB", "BTM", "NTM", "Đông Giang"]
    here = [shard_of_district(code, n) for code in codes for n in (2, 3, 4, 7)]
    script = (
        "from netwatch.sharding import shard_of_district as s;"
        f"print([s(c, n) for c in {codes!r} for n in (2, 3, 4, 7)])"
    )
    for seed in ("1", "4242"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout
        assert out.strip() == str(here)


def test_province_level_sites_and_their_devices_belong_to_shard_zero(quangnam: Inventory) -> None:
    province_level = [s for s in quangnam.sites.values() if district_key(s.district, quangnam.sites) is None]
    assert {"TTDL", "TU", "VPUB"} <= {s.code for s in province_level}
    for n in (2, 3, 4):
        assert all(shard_of_site(quangnam, s.code, n) == 0 for s in province_level)
        assert "dc-router" in owned_devices(quangnam, (0, n))


def test_a_district_and_its_communes_always_share_a_shard(quangnam: Inventory) -> None:
    for n in (2, 3, 4):
        for site in quangnam.sites.values():
            if site.parent is not None and quangnam.sites[site.parent].kind == "district":
                assert shard_of_site(quangnam, site.code, n) == shard_of_site(quangnam, site.parent, n)
            for device in quangnam.devices.values():
                if device.site == site.code:
                    assert device.name in owned_devices(quangnam, (shard_of_site(quangnam, site.code, n), n))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_every_site_and_job_has_exactly_one_shard(quangnam: Inventory, n: int) -> None:
    sites = [owned_sites(quangnam, (k, n)) for k in range(n)]
    jobs = [{job.key for job in owned_jobs(quangnam, (k, n))} for k in range(n)]
    assert sum(len(s) for s in sites) == len(quangnam.sites)
    assert set().union(*sites) == set(quangnam.sites)
    assert sum(len(j) for j in jobs) == len(quangnam.jobs)
    assert set().union(*jobs) == {job.key for job in quangnam.jobs}


def test_quang_nam_districts_spread_over_every_shard(quangnam: Inventory) -> None:
    districts = sorted({s.district for s in quangnam.sites.values() if s.district in quangnam.sites})
    assert len(districts) == 18
    spread = {n: Counter(shard_of_district(d, n) for d in districts) for n in (2, 3, 4)}
    # Pinned: changing the hash would move districts between running shards on upgrade.
    assert spread[2] == Counter({0: 10, 1: 8})
    assert spread[3] == Counter({0: 4, 1: 9, 2: 5})
    assert spread[4] == Counter({0: 8, 1: 6, 2: 2, 3: 2})


def test_other_shards_read_only_the_province_level_parents(quangnam: Inventory) -> None:
    assert external_parents(quangnam, (0, 3)) == frozenset()
    for k in (1, 2):
        external = external_parents(quangnam, (k, 3))
        assert external
        assert all(shard_of_site(quangnam, code, 3) == 0 for code in external)
        assert all(district_key(quangnam.sites[c].district, quangnam.sites) is None for c in external)


# -- one shard's share of the exposition, of the parent checks, of the liveness -----------------

SMALL = """\
province: {code: LO, name: "Tỉnh thử nghiệm"}
defaults:
  down_after: 2
  collectors:
    icmp: {interval: 1, probes: 2, probe_spacing: 0.05, timeout: 0.3}
site_kinds: {province: {}, district: {}, commune: {}}
sites:
  - {code: HQ, name: Trụ sở, kind: province, links: [{device: hub}]}
"""


def _small(tmp_path: Path, districts: int = 6) -> Path:
    sites = [SMALL]
    devices = ["devices:", "  - {name: hub, site: HQ, address: 127.0.60.1, role: router}"]
    for d in range(1, districts + 1):
        sites.append(
            f"  - {{code: D{d}, name: H{d}, kind: district, parent: HQ, links: [{{device: d{d}}}]}}\n"
        )
        devices.append(
            f"  - {{name: d{d}, site: D{d}, address: 127.0.60.{10 + d}, role: router, upstream: hub}}"
        )
    path = tmp_path / "inventory.yaml"
    path.write_text("".join(sites) + "\n".join(devices) + "\n", encoding="utf-8")
    return path


T0 = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_shard_exports_only_its_own_sites_and_devices(tmp_path: Path) -> None:
    inventory = load_inventory(_small(tmp_path))
    shard = next((k, 3) for k in (1, 2) if owned_sites(inventory, (k, 3)))
    mine, theirs = (
        sorted(owned_sites(inventory, shard)),
        sorted(set(inventory.sites) - owned_sites(inventory, shard)),
    )
    state = LatestState(inventory=inventory)
    for job in inventory.jobs:  # every job known, as after a restart restores all target states
        state.job_state(job).health.observe(RoundOutcome.GOOD, T0)
    state.sites.update({code: SiteStatus(SiteState.UP, T0) for code in inventory.sites})
    state.month_figures = {code: MonthFigures("2025-03", 0.99, 60.0) for code in inventory.sites}
    state.owned_sites = owned_sites(inventory, shard)
    state.owned_devices = owned_devices(inventory, shard)
    registry = make_registry(state)

    def value(name: str, site: str, **labels: str) -> float | None:
        return registry.get_sample_value(
            name, {"site": site, "district": inventory.sites[site].district, **labels}
        )

    for code in mine:
        device = f"d{code[1:]}"
        assert value("netwatch_site_up", code) == 1.0
        assert value("netwatch_site_state", code, state="up") == 1.0
        assert value("netwatch_site_flapping", code) == 0.0
        assert value("netwatch_site_availability_ratio", code, period="month") == 0.99
        assert value("netwatch_site_downtime_seconds", code, period="month") == 60.0
        assert value("netwatch_target_up", code, device=device, collector="icmp") == 1.0
    for code in theirs:
        for name in ("netwatch_site_up", "netwatch_site_flapping"):
            assert value(name, code) is None, f"{name} of {code} exported by shard {shard}"
        assert value("netwatch_site_state", code, state="up") is None
        assert value("netwatch_site_availability_ratio", code, period="month") is None
        assert value("netwatch_site_downtime_seconds", code, period="month") is None
    exported = {
        (s.name, s.labels["site"])
        for family in registry.collect()
        for s in family.samples
        if s.name in ("netwatch_site_info", "netwatch_device_info", "netwatch_target_up")
    }
    assert {site for name, site in exported if name == "netwatch_site_info"} == set(mine)
    assert {site for name, site in exported if name == "netwatch_device_info"} == set(mine)
    assert {site for name, site in exported if name == "netwatch_target_up"} == set(mine)
    # Unsharded, everything is exported.
    state.owned_sites = state.owned_devices = None
    assert registry.get_sample_value("netwatch_site_up", {"site": "HQ", "district": "LO"}) == 1.0


def test_live_shards_are_the_latest_runs_neither_stopped_nor_silent(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nw.db'}")
    try:
        migrate.upgrade(engine)
        now = datetime.now(UTC)
        old = repository.start_run(
            engine, instance="a", shard="0/3", version="t", now=now - timedelta(hours=1)
        )
        repository.stop_run(engine, old, now=now - timedelta(minutes=30))
        repository.start_run(engine, instance="a", shard="0/3", version="t", now=now - timedelta(seconds=5))
        killed = repository.start_run(
            engine, instance="b", shard="1/3", version="t", now=now - timedelta(minutes=5)
        )
        repository.heartbeat(engine, killed, now=now - timedelta(minutes=1))
        stopped = repository.start_run(
            engine, instance="c", shard="2/3", version="t", now=now - timedelta(minutes=5)
        )
        repository.stop_run(engine, stopped, now=now - timedelta(seconds=1))
        repository.start_run(engine, instance="d", shard="0/2", version="t", now=now)
        runs = repository.shard_runs(engine)
        assert repository.live_shards(runs, 3, now - timedelta(seconds=45)) == frozenset({0})
        assert repository.live_shards(runs, 3, now - timedelta(minutes=2)) == frozenset({0, 1})
        assert repository.live_shards(runs, 2, now - timedelta(seconds=45)) == frozenset({0})
    finally:
        engine.dispose()


class Rows:
    """The batched writer as the site tracker sees it: rows kept in a list."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []

    def put(self, table: str, row: Mapping[str, Any]) -> None:
        self.rows.append((table, dict(row)))


def _hub_row(state: str, seconds: float, failed: int = 0) -> dict[tuple[str, str], dict[str, Any]]:
    row = {
        "state": state,
        "since": at(0),
        "failed_rounds": failed,
        "good_rounds": 0 if failed else 3,
        "first_failed_at": at(seconds - failed) if failed else None,
        "first_good_at": None if failed else at(0),
        "last_poll_at": at(seconds),
        "updated_at": at(seconds),
    }
    return {("hub", "icmp"): row}


@pytest.fixture
def district_shard(tmp_path: Path) -> tuple[Daemon, str]:
    """A daemon of a shard other than the hub's, with its site tracker, and one of its districts."""
    inventory = load_inventory(_small(tmp_path))
    k = next(k for k in (1, 2) if owned_sites(inventory, (k, 3)))
    daemon = Daemon(
        DaemonOptions(config=tmp_path / "inventory.yaml", db_url="sqlite://", shard=f"{k}/3"), inventory
    )
    # What run() builds, without a database or a writer thread.
    daemon._tracker = SiteTracker(
        inventory, Rows(), "run", statuses=daemon.state.sites, owned=daemon.state.owned_sites
    )
    return daemon, min(owned_sites(inventory, (k, 3)))


def _district_round(
    daemon: Daemon, district: str, outcome: RoundOutcome, seconds: float, health: TargetHealth
) -> None:
    device = f"d{district[1:]}"
    health.observe(outcome, at(seconds))
    tracker = daemon._tracker
    tracker.handle(tracker.engine.on_target(device, "icmp", health, at(seconds)))


def test_a_parent_of_a_dead_shard_is_unknown_and_never_makes_its_dependents_down(
    district_shard: tuple[Daemon, str],
) -> None:
    daemon, district = district_shard
    engine = daemon._tracker.engine
    health = TargetHealth(rules=daemon.state.inventory.sites[district].rules)
    everyone = frozenset({0, 1, 2})
    daemon.feed_parents(_hub_row("up", 1), everyone, at(1))
    _district_round(daemon, district, RoundOutcome.GOOD, 1, health)
    assert engine.status("HQ").state is SiteState.UP
    assert daemon.state.sites[district].state is SiteState.UP

    # Shard 0 dies with the hub last seen UP: the hub is unknown, not up, from then on.
    daemon.feed_parents(_hub_row("up", 1), frozenset({1, 2}), at(2))
    assert engine.status("HQ").state is SiteState.UNKNOWN
    assert "HQ" not in daemon.state.sites, "another shard's site is never written or exported here"
    # The district stops answering: behind an unknown hub it is held, not DOWN.
    _district_round(daemon, district, RoundOutcome.FAILED, 2, health)
    _district_round(daemon, district, RoundOutcome.FAILED, 3, health)
    assert health.state.value == "down"
    assert daemon.state.sites[district].state is SiteState.UP, "held while its parent is unknown"
    writer = daemon._tracker._writer
    assert isinstance(writer, Rows)
    downs = [r for t, r in writer.rows if t == "outages" and r["state"] == "down"]
    assert downs == []

    # Shard 0 returns and says the hub is down: the district is UNREACHABLE behind it.
    daemon.feed_parents(_hub_row("down", 4, failed=3), everyone, at(4))
    assert engine.status("HQ").state is SiteState.DOWN
    _district_round(daemon, district, RoundOutcome.FAILED, 4, health)
    assert daemon.state.sites[district] == SiteStatus(
        SiteState.UNREACHABLE, daemon.state.sites[district].since, "HQ"
    )


def test_a_down_parent_of_a_dead_shard_stops_being_the_cause(district_shard: tuple[Daemon, str]) -> None:
    daemon, district = district_shard
    engine = daemon._tracker.engine
    health = TargetHealth(rules=daemon.state.inventory.sites[district].rules)
    everyone = frozenset({0, 1, 2})
    daemon.feed_parents(_hub_row("down", 1, failed=3), everyone, at(1))
    for t in (1, 2):
        _district_round(daemon, district, RoundOutcome.FAILED, t, health)
    assert daemon.state.sites[district].cause == "HQ"
    daemon.feed_parents(_hub_row("down", 1, failed=3), frozenset({1, 2}), at(3))
    assert engine.status("HQ").state is SiteState.UNKNOWN
    _district_round(daemon, district, RoundOutcome.FAILED, 3, health)
    assert daemon.state.sites[district].state is not SiteState.DOWN


def test_past_the_hold_bound_a_dependent_of_a_dead_shards_parent_is_unknown_never_down(
    district_shard: tuple[Daemon, str],
) -> None:
    daemon, district = district_shard
    tracker = daemon._tracker
    health = TargetHealth(rules=daemon.state.inventory.sites[district].rules)
    everyone = frozenset({0, 1, 2})
    daemon.feed_parents(_hub_row("up", 1), everyone, at(1))
    _district_round(daemon, district, RoundOutcome.GOOD, 1, health)
    daemon.feed_parents(_hub_row("up", 1), frozenset({1, 2}), at(2))
    # The district fails every round for well past its hold bound ((2 + 1) × 1 s) while shard 0 is dead.
    assert tracker.engine.hold_bound(district) == timedelta(seconds=3)
    for t in range(2, 12):
        _district_round(daemon, district, RoundOutcome.FAILED, t, health)
        tracker.tick(at(t + 0.5))
        daemon.feed_parents(_hub_row("up", 1), frozenset({1, 2}), at(t + 0.5))
    assert daemon.state.sites[district] == SiteStatus(SiteState.UNKNOWN, at(2), "HQ")
    # Shard 0 is back but has not polled the hub yet: its row from before the silence is no news.
    daemon.feed_parents(_hub_row("up", 1), everyone, at(11.8))
    assert daemon.state.sites[district] == SiteStatus(SiteState.UNKNOWN, at(2), "HQ")
    writer = tracker._writer
    assert isinstance(writer, Rows)
    outages = [(r["state"], r["started_at"], r["cause"]) for t, r in writer.rows if t == "outages"]
    assert ("down", at(2), None) not in outages and not [o for o in outages if o[0] == "down"]
    assert ("unknown", at(2), "HQ") in outages

    # Shard 0 comes back and has polled the hub since: UP, so the district's outage is its own,
    # from its first failed round (the rounds rule), and the unknown time gives way to it.
    daemon.feed_parents(_hub_row("up", 12), everyone, at(12))
    assert daemon.state.sites[district] == SiteStatus(SiteState.DOWN, at(2))
    downs = [r for t, r in writer.rows if t == "outages" and r["state"] == "down"]
    assert [(r["started_at"], r["ended_at"]) for r in downs] == [(at(2), None)]
