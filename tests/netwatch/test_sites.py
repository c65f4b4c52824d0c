"""The site tracker: polls in, ledger and state rows out; a link interface going oper-down downs the site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collectors.base import CollectResult, Measurement
from netwatch.config import load_inventory
from netwatch.counters import CounterBook
from netwatch.health import RoundOutcome, TargetHealth
from netwatch.pipeline import PollRecord
from netwatch.sitehealth import SiteState, SiteStatus
from netwatch.sites import SiteTracker

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
credentials: {lab: {version: "2c", community: "not-public-1"}}
site_kinds: {district: {}}
sites:
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district, links: [{device: tk-router, interface: ge-0/0/1}]}
devices:
  - {name: tk-router, site: TK, address: 127.0.0.1, role: router,
     collectors: {icmp: {}, snmp: {credential: lab}}}
"""


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []

    def put(self, table: str, row: Any) -> None:
        self.rows.append((table, dict(row)))


def test_link_interface_oper_down_downs_the_site_at_once(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)
    icmp_job, snmp_job = sorted(inventory.devices["tk-router"].jobs, key=lambda j: j.kind)
    rows = Rows()
    statuses: dict[str, SiteStatus] = {}
    tracker = SiteTracker(inventory, rows, "run-1", statuses=statuses)
    health = TargetHealth(rules=inventory.sites["TK"].rules)
    health.observe(RoundOutcome.GOOD, T0)
    ok = CollectResult(success=True)
    tracker.on_poll(PollRecord(icmp_job, ok, T0, T0, RoundOutcome.GOOD, None, health, CounterBook()))
    assert statuses["TK"].state is SiteState.UP

    at = T0 + timedelta(seconds=30)
    down = CollectResult(
        success=True,
        measurements=(
            Measurement("if_oper_up", 0, (("ifindex", "7"), ("ifname", "ge-0/0/1"))),
            Measurement("if_oper_up", 1, (("ifindex", "8"), ("ifname", "ge-0/0/2"))),
        ),
    )
    tracker.on_poll(PollRecord(snmp_job, down, at, at, RoundOutcome.GOOD, None, health, CounterBook()))
    assert statuses["TK"] == SiteStatus(SiteState.DOWN, at)
    assert (
        "outages",
        {
            "site": "TK",
            "state": "down",
            "cause": None,
            "started_at": at,
            "ended_at": None,
            "run_id": "run-1",
            "updated_at": rows.rows[-2][1]["updated_at"],
        },
    ) in rows.rows
    assert rows.rows[-1][0] == "site_states" and rows.rows[-1][1]["state"] == "down"
