"""`netwatch run` polling a real net-snmp agent: interface and device series in /metrics with the
contract's names and labels, corrected totals and rates, rows in SQLite, and the community nowhere."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from tests.support.processes import free_port, netwatch_process, samples, scrape, stop
from tests.support.snmpd import SnmpAgent

INVENTORY = """\
province: {{code: QNM, name: "Quảng Nam"}}
credentials:
  lab: {{version: "2c", community: "${{NW_TEST_COMMUNITY}}"}}
site_kinds:
  datacenter: {{}}
sites:
  - code: DC
    name: "Trung tâm dữ liệu tỉnh"
    kind: datacenter
    links: [{{device: srv1, interface: lo, contracted_bps: 20Mbps}}]
devices:
  - name: srv1
    site: DC
    address: 127.0.0.1
    port: {port}
    role: server
    collectors:
      snmp: {{credential: lab, interval: 1, timeout: 0.5, retries: 1,
             profiles: [system, if-mib, host-resources, ucd-snmp]}}
"""


def test_snmp_device_in_metrics_and_database(tmp_path: Path, snmpd: SnmpAgent) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY.format(port=snmpd.port), encoding="utf-8")
    db = tmp_path / "nw.db"
    port = free_port()
    os.environ["NW_TEST_COMMUNITY"] = snmpd.community
    try:
        with netwatch_process(
            "run",
            "-c",
            str(config),
            "--db",
            f"sqlite:///{db}",
            "--listen",
            f"127.0.0.1:{port}",
            port=port,
            cwd=tmp_path,
        ) as proc:
            deadline = time.monotonic() + 20
            while True:
                metrics = scrape(port)
                if samples(metrics, "netwatch_if_in_bps", ifname="lo") or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            body_has_secret = any(
                snmpd.community in "".join(k[1][i][1] for i in range(len(k[1]))) for k in metrics
            )
            code, out, err = stop(proc)
    finally:
        del os.environ["NW_TEST_COMMUNITY"]
    assert code == 0, err
    lo = {"device": "srv1", "site": "DC", "district": "QNM", "ifname": "lo", "ifindex": "1"}
    assert samples(metrics, "netwatch_up", device="srv1", collector="snmp") == [1.0]
    assert samples(metrics, "netwatch_if_oper_up", **lo) == [1.0]
    assert len(samples(metrics, "netwatch_if_in_octets_total", **lo)) == 1
    assert len(samples(metrics, "netwatch_if_out_octets_total", **lo)) == 1
    assert len(samples(metrics, "netwatch_if_in_errors_total", **lo)) == 1
    assert samples(metrics, "netwatch_if_in_bps", **lo), "a rate after the second poll"
    assert samples(metrics, "netwatch_if_contracted_bps", **lo) == [20e6]
    uptime = samples(metrics, "netwatch_device_uptime_seconds", device="srv1")
    assert len(uptime) == 1 and uptime[0] > 0
    assert samples(metrics, "netwatch_snmp_poll_duration_seconds", device="srv1")
    assert samples(metrics, "netwatch_device_info", device="srv1", sysname=snmpd.sys_name) == [1.0]
    assert samples(metrics, "netwatch_host_storage_size_bytes", device="srv1")
    assert not body_has_secret
    assert snmpd.community not in err and snmpd.community not in out
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select count(*), count(in_bps), max(in_octets_total) from interface_samples where device='srv1'"
        ).fetchone()
        iface = conn.execute("select ifname, contracted_bps from interfaces where ifindex=1").fetchone()
        metrics_rows = conn.execute(
            "select count(*) from device_metric_samples where device='srv1'"
        ).fetchone()
    assert rows[0] >= 2 and rows[1] >= 1 and rows[2] is not None
    assert iface == ("lo", 20e6)
    assert metrics_rows[0] > 0
