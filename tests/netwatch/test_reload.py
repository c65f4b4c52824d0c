"""SIGHUP on the real daemon: a broken inventory (syntax, then meaning) is refused with file and line
and polling goes on; a valid one adds and removes targets while the others keep their schedule
and their counter state (an SNMP device's rates go on without a first-sample reset)."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.netwatch.test_faults_process import daemon, wait_for
from tests.support.processes import samples
from tests.support.snmpd import SnmpAgent

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP needs root (CI runs as root)")

HEAD = """\
province: {{code: QNM, name: "Quảng Nam"}}
credentials:
  lab: {{version: "2c", community: "${{NW_TEST_COMMUNITY}}"}}
defaults:
  collectors:
    icmp: {{interval: 1, probes: 2, probe_spacing: 0.05, timeout: 0.3}}
site_kinds:
  district: {{}}
sites:
  - {{code: HA, name: "Hội An", kind: district, links: [{{device: ha-router}}]}}
  - {{code: NS, name: "Nam Giang", kind: {kind}, links: [{{device: {ns}}}]}}
devices:
  - name: srv1
    site: HA
    address: 127.0.0.1
    port: {port}
    role: server
    collectors:
      snmp: {{credential: lab, interval: 1, timeout: 0.5, retries: 1, profiles: [system, if-mib]}}
  - {{name: ha-router, site: HA, address: 127.0.89.1, role: router}}
"""
OLD = "  - {name: ns-router, site: NS, address: 127.0.89.2, role: router}\n"
NEW = "  - {name: ns-router2, site: NS, address: 127.0.89.3, role: router}\n"
LO = {"device": "srv1", "ifname": "lo"}


def polls(db: Path, target: str, kind: str = "icmp") -> list[datetime]:
    """Scheduled times of ``target``'s polls written so far."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select scheduled_at from polls where target = ? and kind = ? order by scheduled_at",
            (target, kind),
        ).fetchall()
    return [datetime.fromisoformat(r[0]) for r in rows]


def test_sighup_keeps_old_inventory_on_errors_and_swaps_a_valid_one(tmp_path: Path, snmpd: SnmpAgent) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(HEAD.format(port=snmpd.port, kind="district", ns="ns-router") + OLD, encoding="utf-8")
    db = tmp_path / "nw.db"
    with daemon(config, db, tmp_path, env={"NW_TEST_COMMUNITY": snmpd.community}) as run:
        wait_for(
            lambda: samples(run.metrics(), "netwatch_if_in_bps", **LO) and len(polls(db, "ns-router")) >= 3
        )

        def reload_rejected(text: str, line: int) -> None:
            before = len(polls(db, "ns-router"))
            config.write_text(text, encoding="utf-8")
            run.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: f"{config}:{line}:" in run.output())
            assert samples(run.metrics(), "netwatch_config_last_reload_successful") == [0.0]
            # the old inventory polls on: every target, including the one the new file drops
            wait_for(
                lambda: len(polls(db, "ns-router")) >= before + 2 and len(polls(db, "srv1", "snmp")) >= 2
            )

        # a YAML syntax error (line 12), then a meaning error: an unknown site kind (line 11)
        reload_rejected(
            HEAD.format(port=snmpd.port, kind="district", ns="ns-router2").replace(
                "ns-router2}]}", "ns-router2}]"
            )
            + NEW,
            12,
        )
        reload_rejected(HEAD.format(port=snmpd.port, kind="nosuchkind", ns="ns-router2") + NEW, 11)
        assert "reload rejected" in run.output()

        totals_before = samples(run.metrics(), "netwatch_if_in_octets_total", **LO)
        reloaded_at = time.time()
        config.write_text(
            HEAD.format(port=snmpd.port, kind="district", ns="ns-router2") + NEW, encoding="utf-8"
        )
        run.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: samples(run.metrics(), "netwatch_config_last_reload_successful") == [1.0])
        wait_for(lambda: len(polls(db, "ns-router2")) >= 3)
        time.sleep(2.5)  # rounds after the swap, for the untouched targets' schedule and rates
        metrics = run.metrics()
        assert samples(metrics, "netwatch_if_in_bps", **LO), "rate kept through the reload"
        assert samples(metrics, "netwatch_if_in_octets_total", **LO)[0] >= totals_before[0]
        assert not samples(metrics, "netwatch_up", device="ns-router")
        assert samples(metrics, "netwatch_up", device="ns-router2", collector="icmp") == [1.0]
        assert run.signal(signal.SIGTERM) == 0

    # the removed target stopped: nothing scheduled for it after the swap (one round may be in flight)
    removed = polls(db, "ns-router")
    assert removed and removed[-1].timestamp() <= reloaded_at + 1.0 + 1.0
    # untouched targets: the same grid, every round, no extra or missing one across the reloads
    for target, kind in (("ha-router", "icmp"), ("srv1", "snmp")):
        times = polls(db, target, kind)
        steps = [round((b - a).total_seconds(), 6) for a, b in itertools.pairwise(times)]
        assert steps and set(steps) == {1.0}, (target, steps)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select scheduled_at, in_bps, in_octets_total from interface_samples s join interfaces i"
            " using (device, ifindex) where s.device = 'srv1' and i.ifname = 'lo' order by scheduled_at"
        ).fetchall()
    # only the very first poll of the run lacks a rate: the reloads reset no counter state
    assert rows[0][1] is None and all(r[1] is not None for r in rows[1:]), rows
    totals = [r[2] for r in rows]
    assert totals == sorted(totals)
