"""A restart continues where the ledgers left off: a dual-homed site whose healthy link is polled
first stays DEGRADED, and the open link and site intervals stay one interval each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from collectors.base import CollectResult
from netwatch.config import load_inventory
from netwatch.config.inventory import Inventory
from netwatch.counters import CounterBook
from netwatch.health import RoundOutcome, State, TargetHealth
from netwatch.pipeline import PollRecord
from netwatch.recording import PollRecorder, restore_health
from netwatch.sitehealth import SiteEvent, SiteHealthEngine, SiteState, SiteStatus
from netwatch.sites import SiteTracker
from netwatch.storage import repository
from netwatch.storage.dml import last_per_key, statement_for, table_named
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.models import LinkOutage, Outage

INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
credentials: {lab: {version: "2c", community: "not-public-1"}}
site_kinds: {district: {}}
sites:
  - {code: DL, name: "Huyện ủy Đại Lộc", kind: district,
     links: [{device: dl-vnpt, name: VNPT}, {device: dl-viettel, name: Viettel}]}
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district}
  - {code: NT, name: "Huyện ủy Núi Thành", kind: district,
     links: [{device: nt-router, interface: ge-0/0/1, name: VNPT},
             {device: nt-backup, name: Viettel}]}
devices:
  - {name: dl-vnpt, site: DL, address: 127.0.0.1, role: router, collectors: {icmp: {}}}
  - {name: dl-viettel, site: DL, address: 127.0.0.2, role: router, collectors: {icmp: {}}}
  - {name: tk-router, site: TK, address: 127.0.0.3, role: router, collectors: {icmp: {}}}
  - {name: nt-router, site: NT, address: 127.0.0.4, role: router,
     collectors: {icmp: {}, snmp: {credential: lab}}}
  - {name: nt-backup, site: NT, address: 127.0.0.5, role: router, collectors: {icmp: {}}}
"""
T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
LINK_DOWN = T0 + timedelta(minutes=1)  # the first of three failed rounds (down_after = 3)
BACK = T0 + timedelta(minutes=10)  # the first round after the restart
RECOVER = T0 + timedelta(minutes=12)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


class Rows:
    """The batched writer as the sinks see it; ``flush`` writes as the real one would."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []

    def put(self, table: str, row: Any) -> None:
        self.rows.append((table, dict(row)))

    def flush(self, engine: Engine) -> None:
        tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for name, row in self.rows:
            tables[name].append(row)
        with engine.begin() as conn:
            for name, rows in tables.items():
                table = table_named(name)
                latest = [dict(r) for r in last_per_key(table, rows)]
                conn.execute(statement_for(engine.dialect, table, latest[0].keys()), latest)
        self.rows.clear()


class Events:
    """The notification dispatcher's side: every site event handed on, in order."""

    def __init__(self) -> None:
        self.events: list[SiteEvent] = []

    def submit(self, events: Sequence[SiteEvent]) -> object:
        self.events.extend(events)
        return None


class Run:
    """One daemon run: a recorder and a tracker fed real TargetHealth rounds on a fake clock."""

    def __init__(
        self, inventory: Inventory, rows: Rows, run_id: str, health: dict[str, TargetHealth]
    ) -> None:
        self.jobs = {
            d: next(j for j in inventory.devices[d].jobs if j.kind == "icmp") for d in inventory.devices
        }
        self.health = health
        self.statuses: dict[str, SiteStatus] = {}
        self.events = Events()
        self.recorder = PollRecorder(rows, run_id, inventory)
        self.tracker = SiteTracker(inventory, rows, run_id, statuses=self.statuses, notify=self.events)

    def poll(self, device: str, outcome: RoundOutcome, at: datetime) -> None:
        self.health[device].observe(outcome, at)
        record = PollRecord(
            self.jobs[device],
            CollectResult(success=outcome is not RoundOutcome.FAILED),
            at,
            at,
            outcome,
            None,
            self.health[device],
            CounterBook(),
        )
        self.recorder.on_poll(record)
        self.tracker.on_poll(record)


def intervals(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        links = conn.execute(select(LinkOutage.__table__).order_by(LinkOutage.id)).mappings().all()
        sites = conn.execute(select(Outage.__table__).order_by(Outage.id)).mappings().all()
    return (
        [(r["site"], r["link"], r["state"], r["started_at"], r["ended_at"]) for r in links],
        [(r["site"], r["state"], r["started_at"], r["ended_at"]) for r in sites],
    )


def test_restart_with_the_healthy_link_polled_first_continues_the_open_intervals(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nw.db'}")
    try:
        upgrade(engine)
        repository.sync_inventory(engine, inventory, now=T0)
        rows = Rows()
        rules = inventory.sites["DL"].rules
        first = Run(
            inventory,
            rows,
            "run-1",
            {d: TargetHealth(rules=rules) for d in ("dl-vnpt", "dl-viettel", "tk-router")},
        )
        for device in first.health:
            first.poll(device, RoundOutcome.GOOD, T0)
        for n in range(1, 4):
            first.poll("dl-vnpt", RoundOutcome.FAILED, minutes(n))
            first.poll("dl-viettel", RoundOutcome.GOOD, minutes(n))
            first.poll("tk-router", RoundOutcome.FAILED, minutes(n))
        assert first.statuses["DL"] == SiteStatus(SiteState.DEGRADED, LINK_DOWN)
        assert first.statuses["TK"] == SiteStatus(SiteState.DOWN, LINK_DOWN)
        rows.flush(engine)
        before = intervals(engine)
        assert before == (
            [("DL", "dl-vnpt", "down", LINK_DOWN, None), ("TK", "tk-router", "down", LINK_DOWN, None)],
            [("DL", "degraded", LINK_DOWN, None), ("TK", "down", LINK_DOWN, None)],
        )

        # The restart, wired as the daemon does: target health from target_states, then resume.
        restored = {d: TargetHealth(rules=rules) for d in first.health}
        for (target, kind), row in repository.load_target_states(engine).items():
            if kind == "icmp":
                restore_health(restored[target], row)
        assert restored["dl-vnpt"].state is State.DOWN
        second = Run(inventory, rows, "run-2", restored)
        second.tracker.resume(
            repository.load_site_states(engine),
            repository.open_outages(engine),
            repository.open_link_outages(engine),
        )
        second.poll("dl-viettel", RoundOutcome.GOOD, BACK)  # the healthy link first
        assert second.statuses["DL"] == SiteStatus(SiteState.DEGRADED, LINK_DOWN)
        second.poll("dl-vnpt", RoundOutcome.FAILED, BACK)
        second.poll("tk-router", RoundOutcome.FAILED, BACK)
        assert second.statuses["DL"] == SiteStatus(SiteState.DEGRADED, LINK_DOWN)
        assert second.statuses["TK"] == SiteStatus(SiteState.DOWN, LINK_DOWN)
        assert second.events.events == []  # no false UP, nothing re-announced
        rows.flush(engine)
        assert intervals(engine) == before  # still one open interval each, from the first run

        for device in ("dl-vnpt", "tk-router", "dl-viettel"):
            second.poll(device, RoundOutcome.GOOD, RECOVER)
        assert [(e.site, e.old, e.new, e.since) for e in second.events.events] == [
            ("DL", SiteState.DEGRADED, SiteState.UP, RECOVER),
            ("TK", SiteState.DOWN, SiteState.UP, RECOVER),
        ]
        rows.flush(engine)
        assert intervals(engine) == (
            [("DL", "dl-vnpt", "down", LINK_DOWN, RECOVER), ("TK", "tk-router", "down", LINK_DOWN, RECOVER)],
            [("DL", "degraded", LINK_DOWN, RECOVER), ("TK", "down", LINK_DOWN, RECOVER)],
        )
    finally:
        engine.dispose()


def _restarted_engine(inventory: Inventory, site: str, link: str) -> SiteHealthEngine:
    engine = SiteHealthEngine(inventory)
    engine.restore(site, SiteStatus(SiteState.DEGRADED, LINK_DOWN))
    engine.restore_links({link: (State.DOWN, LINK_DOWN)})
    return engine


def _link_changes(engine: SiteHealthEngine) -> list[tuple[str, State, State, datetime]]:
    return [
        (e.key, e.old, e.new, e.since)
        for e in engine.link_events()
        if e.new is not State.UP or e.old is not State.UNKNOWN
    ]


def test_a_down_link_whose_target_health_was_lost_stays_down_while_it_is_re_detected(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)
    rules = inventory.sites["DL"].rules
    engine = _restarted_engine(inventory, "DL", "dl-vnpt")
    vnpt, viettel = TargetHealth(rules=rules), TargetHealth(rules=rules)
    seen: list[SiteEvent] = []
    viettel.observe(RoundOutcome.GOOD, BACK)
    seen += engine.on_target("dl-viettel", "icmp", viettel, BACK)
    for n in range(3):  # no target_states row: the rounds rule starts again from UNKNOWN
        at = BACK + timedelta(minutes=n)
        vnpt.observe(RoundOutcome.FAILED, at)
        seen += engine.on_target("dl-vnpt", "icmp", vnpt, at)
        assert engine.status("DL") == SiteStatus(SiteState.DEGRADED, LINK_DOWN)
    assert vnpt.state is State.DOWN and seen == []
    assert _link_changes(engine) == []
    vnpt.observe(RoundOutcome.GOOD, RECOVER)
    seen += engine.on_target("dl-vnpt", "icmp", vnpt, RECOVER)
    assert [(e.new, e.since) for e in seen] == [(SiteState.UP, RECOVER)]
    assert _link_changes(engine) == [("dl-vnpt", State.DOWN, State.UP, RECOVER)]


def test_an_interface_link_down_at_shutdown_waits_for_oper_up_and_a_good_round(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)
    rules = inventory.sites["NT"].rules
    engine = _restarted_engine(inventory, "NT", "nt-router/ge-0/0/1")
    router, backup = TargetHealth(rules=rules), TargetHealth(rules=rules)
    router.observe(RoundOutcome.GOOD, T0)  # ICMP was fine: the interface went oper-down
    router.observe(RoundOutcome.GOOD, BACK)
    backup.observe(RoundOutcome.GOOD, BACK)
    seen = engine.on_target("nt-router", "icmp", router, BACK)
    seen += engine.on_target("nt-backup", "icmp", backup, BACK)
    assert seen == [] and engine.status("NT") == SiteStatus(SiteState.DEGRADED, LINK_DOWN)
    oper_up = BACK + timedelta(seconds=30)
    assert engine.on_interface("nt-router", "ge-0/0/1", True, oper_up) == []
    after = BACK + timedelta(minutes=1)
    router.observe(RoundOutcome.GOOD, after)
    seen = engine.on_target("nt-router", "icmp", router, after)
    assert [(e.new, e.since) for e in seen] == [(SiteState.UP, after)]
    assert _link_changes(engine) == [("nt-router/ge-0/0/1", State.DOWN, State.UP, after)]
