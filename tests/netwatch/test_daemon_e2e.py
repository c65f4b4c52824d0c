"""`netwatch run` as a real subprocess on a loopback inventory: metrics over HTTP, rows in SQLite,
SIGTERM exits 0 with nothing lost."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.support.processes import free_port, http_get, netwatch_process, samples, scrape, stop

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP needs root (CI runs as root)")

INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
defaults:
  down_after: 3
  collectors:
    icmp: {interval: 1, probes: 3, probe_spacing: 0.05, timeout: 0.3}
site_kinds:
  datacenter: {}
  district: {}
sites:
  - code: DC
    name: "Trung tâm dữ liệu tỉnh"
    kind: datacenter
    links: [{device: core}]
  - code: TK
    name: "Thành ủy Tam Kỳ"
    kind: district
    parent: DC
    links: [{device: tk-router, contracted_bps: 4Mbps}]
devices:
  - {name: core, site: DC, address: 127.0.5.1, role: switch}
  - {name: tk-router, site: TK, address: 127.0.5.2, role: router, upstream: core}
  - {name: tk-server, site: TK, address: 127.0.5.3, role: server, upstream: tk-router}
"""
DEVICES = ("core", "tk-router", "tk-server")


def wait_for(predicate, timeout: float = 20.0, step: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def test_run_exports_metrics_stores_samples_and_stops_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    db = tmp_path / "netwatch.db"
    port = free_port()
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
        # three rounds per device at 1 s interval
        metrics = wait_for(
            lambda: (
                (m := scrape(port))
                and all(
                    samples(m, "netwatch_icmp_packets_sent_total", device=d)
                    and samples(m, "netwatch_icmp_packets_sent_total", device=d)[0] >= 9
                    for d in DEVICES
                )
                and m
            )
        )
        for device in DEVICES:
            assert samples(metrics, "netwatch_up", device=device, collector="icmp") == [1.0]
            assert samples(metrics, "netwatch_target_up", device=device, collector="icmp") == [1.0]
            rtt = samples(metrics, "netwatch_icmp_rtt_seconds", device=device, stat="avg")
            assert len(rtt) == 1 and 0 < rtt[0] < 0.005, rtt  # loopback: microseconds, not loop delay
            sent = samples(metrics, "netwatch_icmp_packets_sent_total", device=device)[0]
            received = samples(metrics, "netwatch_icmp_packets_received_total", device=device)[0]
            assert received == sent
        assert samples(metrics, "netwatch_up", device="tk-router", site="TK", district="TK")
        assert samples(metrics, "netwatch_site_info", site="TK", name="Thành ủy Tam Kỳ", parent="DC") == [1.0]
        assert samples(metrics, "netwatch_site_state", site="TK", state="up") == [1.0]
        assert samples(metrics, "netwatch_site_up", site="DC") == [1.0]
        assert samples(metrics, "netwatch_config_last_reload_successful") == [1.0]
        status, body = http_get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and '"storage_healthy": true' in body
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    polls_run = int(re.search(r"stopped after (\d+) polls", err).group(1))  # type: ignore[union-attr]
    with sqlite3.connect(db) as conn:
        polls = conn.execute("select count(*) from polls").fetchone()[0]
        icmp = conn.execute("select count(*), sum(sent), sum(received) from icmp_samples").fetchone()
        per_device = dict(
            conn.execute("select target, count(*) from icmp_samples group by target").fetchall()
        )
        run = conn.execute("select stopped_at from instance_runs").fetchall()
        states = dict(conn.execute("select target, state from target_states").fetchall())
    assert polls == polls_run  # every poll run was written before exit: nothing lost on SIGTERM
    assert icmp[0] == polls and icmp[1] == icmp[2] == 3 * polls
    assert set(per_device) == set(DEVICES)
    assert len(run) == 1 and run[0][0] is not None
    assert states == dict.fromkeys(DEVICES, "up")


def test_check_reports_errors_with_file_and_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    good = tmp_path / "good.yaml"
    good.write_text(INVENTORY, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(INVENTORY.replace("parent: DC", "parent: NOPE"), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ok = subprocess.run(
        [sys.executable, "-m", "netwatch", "check", str(good)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "2 sites, 3 devices" in ok.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "netwatch", "check", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert failed.returncode == 2
    assert re.search(rf"^{re.escape(str(bad))}:17: sites\[1\]\.parent: .*NOPE", failed.stderr, re.M), (
        failed.stderr
    )


def test_without_icmp_permission_it_says_how_and_keeps_serving(tmp_path: Path) -> None:
    """Root without CAP_NET_RAW and with ping_group_range closed: no ICMP, clear fix, /metrics still up."""
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        if f.read().split() != ["1", "0"]:
            pytest.skip("ping_group_range is open on this machine; unprivileged ICMP would work")
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    port = free_port()
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            "setpriv",
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
            sys.executable,
            "-m",
            "netwatch",
            "run",
            "-c",
            str(config),
            "--db",
            f"sqlite:///{tmp_path / 'n.db'}",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        metrics = wait_for(lambda: _try_scrape(port))
        assert samples(metrics, "netwatch_collector_disabled", collector="icmp") == [1.0]
        assert not samples(metrics, "netwatch_up")  # nothing pretends to have polled
    finally:
        code, _, err = stop(proc)
    assert code == 0
    assert "ICMP polling disabled" in err
    assert "setcap cap_net_raw" in err and "ping_group_range" in err


def _try_scrape(port: int):  # type: ignore[no-untyped-def]
    try:
        return scrape(port)
    except (OSError, AssertionError):
        return None
