"""`netwatch demo`: the built-in loopback province runs with simulated SNMP agents and a simulated fault,
serves it all on /metrics, and Ctrl-C stops it cleanly, leaving no child process or temporary file behind.

One end-to-end run asserts what a user of the demo sees; a second, with --prometheus, that the shipped
Prometheus config scrapes it. The fault schedule itself is checked as a pure function.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collectors import CollectContext, CollectorSpec, CollectResult, Target
from collectors.icmp import IcmpParams
from netwatch.demo import demo_inventory
from netwatch.demo.faults import REASON, Fault, FaultSchedule, faulted_registry
from netwatch.demo.inventory import DISTRICTS, FAULTED_COMMUNE, FAULTED_DISTRICT, demo_faults
from tests.support.processes import alive, free_port, http_get, netwatch_process, samples, scrape, stop

Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="ICMP on loopback needs root (CI runs as root)")
FAULT_PERIOD = 48
"""The commune is down from +12 s to +30 s of the demo: three failed 5 s rounds fit, then it recovers."""


def _wait(port: int, what: str, done: Callable[[Metrics], bool], seconds: float) -> Metrics:
    deadline = time.monotonic() + seconds
    while True:
        metrics = scrape(port)
        if done(metrics):
            return metrics
        if time.monotonic() > deadline:
            raise AssertionError(f"demo: {what} did not happen within {seconds:g} s")
        time.sleep(0.5)


def _state(metrics: Metrics, site: str) -> str | None:
    return next(
        (
            dict(ls)["state"]
            for (n, ls), v in metrics.items()
            if n == "netwatch_site_state" and ("site", site) in ls and v == 1
        ),
        None,
    )


@needs_root
def test_demo_runs_the_province_with_snmp_agents_and_a_simulated_fault(tmp_path: Path) -> None:
    port = free_port()
    args = ("demo", "--listen", f"127.0.0.1:{port}", "--fault-period", str(FAULT_PERIOD))
    with netwatch_process(*args, port=port, cwd=tmp_path, ready_timeout=60) as proc:
        snmp_up = _wait(
            port,
            "every SNMP agent answering",
            lambda m: (
                len(samples(m, "netwatch_up", collector="snmp")) == 29
                and all(v == 1 for v in samples(m, "netwatch_up", collector="snmp"))
            ),
            30,
        )
        moving = _wait(
            port,
            "traffic on every district link and the SAN ports",
            lambda m: (
                sum(v > 0 for v in samples(m, "netwatch_if_in_bps", ifname="eth1")) == 19
                and sum(samples(m, "netwatch_san_port_rx_octets_total")) > 0
            ),
            40,
        )
        down = _wait(
            port, f"{FAULTED_COMMUNE} going DOWN", lambda m: _state(m, FAULTED_COMMUNE) == "down", 45
        )
        up = _wait(
            port, f"{FAULTED_COMMUNE} coming back UP", lambda m: _state(m, FAULTED_COMMUNE) == "up", 30
        )
        code, out, err = stop(proc, signal.SIGINT)

    assert len(samples(snmp_up, "netwatch_site_info", kind="district")) == 18
    assert samples(snmp_up, "netwatch_site_info", site="TK", name="Thành ủy Tam Kỳ") == [1.0]
    # Every district link: traffic measured from moving counters, under its 4 Mbps contract.
    for district in (code for code, _ in DISTRICTS):
        in_bps = samples(moving, "netwatch_if_in_bps", site=district, ifname="eth1")
        assert in_bps and 0 < in_bps[0] < 4_000_000 * 1.1, (district, in_bps)
        assert samples(moving, "netwatch_if_contracted_bps", site=district, ifname="eth1") == [4_000_000]
        assert samples(moving, "netwatch_if_oper_up", site=district, ifname="eth1") == [1]
    ups = {name: samples(moving, f"netwatch_ups_{name}", device="dc-ups") for name in
           ("on_battery", "battery_charge_ratio", "battery_runtime_seconds", "input_voltage_volts", "output_load_ratio")}  # fmt: skip
    assert ups["on_battery"] == [0] and 0 < ups["battery_charge_ratio"][0] <= 1
    assert ups["battery_runtime_seconds"][0] > 60 and all(200 < v < 260 for v in ups["input_voltage_volts"])
    assert all(0 < v < 1 for v in ups["output_load_ratio"])
    for server in (f"dc-srv{i}" for i in range(1, 8)):
        cpu = samples(moving, "netwatch_host_cpu_load_ratio", device=server)
        assert cpu and all(0 <= v <= 1 for v in cpu), (server, cpu)
        memory = samples(moving, "netwatch_host_memory_used_bytes", device=server)
        assert memory and 1e8 < memory[0] < 64e9, (server, memory)
        assert samples(moving, "netwatch_host_storage_size_bytes", device=server, storage="/")
    assert sum(samples(moving, "netwatch_san_port_up", device="dc-san")) >= 1
    # The fault is simulated and says so: in the site's name, the failed polls' reason and the start-up text.
    name = samples(down, "netwatch_site_info", site=FAULTED_COMMUNE)
    assert name and any(
        "SIMULATED" in dict(ls)["name"]
        for (n, ls) in down
        if n == "netwatch_site_info" and ("site", FAULTED_COMMUNE) in ls
    )
    assert samples(down, "netwatch_poll_errors_total", collector="icmp", reason=REASON)[0] >= 3
    assert _state(down, "DX") == "up", "the commune's district is not touched by the commune's fault"
    assert samples(down, "netwatch_target_up", device="dx-c01", collector="icmp") == [0]
    assert samples(up, "netwatch_site_up", site=FAULTED_COMMUNE) == [1]

    assert code == 0, err
    for url in ("/metrics", "/healthz", "/reports/availability?month="):
        assert f"http://127.0.0.1:{port}{url}" in out
    assert "SIMULATED" in out and FAULTED_COMMUNE in out and FAULTED_DISTRICT in out
    snmpsim = re.search(r"snmpsim pid (\d+)", out)
    assert snmpsim is not None and not alive(int(snmpsim.group(1))), "snmpsim stopped with the demo"
    workdir = re.search(r"database:\s+(\S+)", out)
    assert workdir is not None and not Path(workdir.group(1)).parent.exists(), "temporary directory removed"


@needs_root
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
def test_demo_with_prometheus_scraping_it(tmp_path: Path) -> None:
    port = free_port()
    args = ("demo", "--listen", f"127.0.0.1:{port}", "--fault-period", "0", "--prometheus")
    with netwatch_process(*args, port=port, cwd=tmp_path, ready_timeout=90) as proc:
        # The banner is printed before the daemon answers /healthz, so it is in the pipe by now.
        assert proc.stdout is not None
        banner = ""
        while "Ctrl-C" not in banner:
            banner += proc.stdout.readline()
        found = re.search(r"prometheus:\s+(http://127\.0\.0\.1:\d+)/ \(pid (\d+)", banner)
        assert found is not None, banner
        url, pid = found.group(1), int(found.group(2))
        query = urllib.parse.quote('up{job="netwatch"}')
        deadline = time.monotonic() + 40
        result: list[Any] = []
        while time.monotonic() < deadline:
            status, body = http_get(f"{url}/api/v1/query?query={query}")
            result = json.loads(body)["data"]["result"] if status == 200 else []
            if result and result[0]["value"][1] == "1":
                break
            time.sleep(1)
        # Prometheus asks for gzip, and gets each family as a gzip member of its own: the body's
        # last family is in its last member, so Prometheus read them all.
        _, plain = http_get(f"http://127.0.0.1:{port}/metrics")
        last = [line for line in plain.splitlines() if not line.startswith("#")][-1].split("{")[0].split()[0]
        status, body = http_get(f"{url}/api/v1/query?query={urllib.parse.quote(last)}")
        stored = json.loads(body)["data"]["result"] if status == 200 else []
        status, rules = http_get(f"{url}/api/v1/rules")
        code, _, err = stop(proc, signal.SIGINT)
    assert result and result[0]["value"][1] == "1", result
    assert stored, f"Prometheus has no {last}, the body's last sample"
    assert result[0]["metric"]["instance"] == f"127.0.0.1:{port}"
    assert status == 200 and json.loads(rules)["data"]["groups"], "the shipped alert rules are loaded"
    assert code == 0, err
    assert not alive(pid), "prometheus stopped with the demo"


def test_fault_schedule_is_deterministic_and_covers_the_district_subtree() -> None:
    document = demo_inventory(snmp_port=1161)
    commune, district = demo_faults(document)
    assert commune.devices == {"dx-c01"}
    assert district.devices == {"tg-router", "tg-c01", "tg-c02"}, "the district fault takes its communes too"
    now = [1000.0]
    schedule = FaultSchedule((commune, district), period=240, clock=lambda: now[0])
    assert schedule.fault_of("dx-c01") is None, "nothing fails before the schedule starts"
    schedule.start()

    def down_at(elapsed: float) -> tuple[bool, bool]:
        now[0] = 1000.0 + elapsed
        return schedule.fault_of("dx-c01") is not None, schedule.fault_of("tg-c01") is not None

    # Commune: +60 s to +150 s of every 4 minutes; district: +150 s to +210 s of every third period.
    expected = {0: (False, False), 59.9: (False, False), 60: (True, False), 149.9: (True, False),
                150: (False, True), 209.9: (False, True), 210: (False, False), 300: (True, False),
                390: (False, False), 630: (False, False), 780: (True, False), 870: (False, True)}  # fmt: skip
    assert {t: down_at(t) for t in expected} == expected
    assert schedule.fault_of("tk-router") is None


async def test_faulted_polls_report_lost_probes_with_the_simulated_reason() -> None:
    calls: list[str] = []

    async def real(target: Target, params: IcmpParams, ctx: CollectContext) -> CollectResult:
        calls.append(target.key)
        return CollectResult(success=True)

    base = {"icmp": CollectorSpec("icmp", IcmpParams, real), "snmp": CollectorSpec("snmp", IcmpParams, real)}
    fault = Fault("DX-C01", frozenset({"dx-c01"}), start=0.0, length=0.5)
    schedule = FaultSchedule((fault,), period=100, clock=lambda: 10.0)
    schedule.start()
    specs = faulted_registry(base, schedule)
    params = IcmpParams(probes=4, interval=10, probe_spacing=0.2)
    lost = await specs["icmp"].collect(Target("dx-c01", "127.0.3.41"), params, CollectContext())
    assert (lost.success, lost.reason, lost.value("icmp_packets_sent"), lost.value("icmp_packets_received")) == (
        False, REASON, 4, 0)  # fmt: skip
    assert lost.error is not None and "simulated" in lost.error
    assert (
        await specs["snmp"].collect(Target("dx-c01", "127.0.3.41"), params, CollectContext())
    ).reason == REASON
    assert (await specs["icmp"].collect(Target("dx-c02", "127.0.3.42"), params, CollectContext())).success
    assert calls == ["dx-c02"], "only devices outside the fault are really polled"
