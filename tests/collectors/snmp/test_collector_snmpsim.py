"""The snmp collector against snmpsim serving recordings of real devices (snmpsim-data) and our own.

Values are checked against what net-snmp's snmpbulkwalk/snmpget read from the same agent; recordings
are static, so they must match exactly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from collectors.base import CollectContext, CollectResult, Measurement, Target
from collectors.snmp import SnmpCredentials
from collectors.snmp.collector import SnmpParams, SnmpResources, collect, open_snmp_resources
from tests.support.snmpsim import CUTS, SimAgent, running_snmpsim

pytestmark = pytest.mark.slow
OWN = ("netwatch-counters", "netwatch-moving")
OWN_DIR = Path(__file__).resolve().parents[2] / "testdata" / "snmpsim"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimAgent]:
    with running_snmpsim(tuple(CUTS), OWN) as agent:
        yield agent


@pytest.fixture
async def resources(sim: SimAgent) -> AsyncIterator[SnmpResources]:
    res = open_snmp_resources({c: SnmpCredentials.v2c(c) for c in (*CUTS, *OWN)})
    yield res
    await res.close()


def walk(sim: SimAgent, community: str, *oids: str, tool: str = "snmpbulkwalk") -> dict[str, str]:
    """OID → value text as net-snmp prints it with -On -Oe -Ot -Oq -OU."""
    rows: dict[str, str] = {}
    for oid in oids:
        out = subprocess.run(
            [tool, "-v2c", "-c", community, "-On", "-Oe", "-Ot", "-Oq", "-OU", f"{sim.address}:{sim.port}", oid],
            capture_output=True, text=True, check=True, env={**os.environ, "MIBS": ":"},
        ).stdout  # fmt: skip
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            if "No Such" not in value:
                rows[key.lstrip(".")] = value.strip().strip('"')
    return rows


def column(rows: dict[str, str], oid: str) -> dict[str, str]:
    return {k[len(oid) + 1 :]: v for k, v in rows.items() if k.startswith(oid + ".")}


async def poll(sim: SimAgent, res: SnmpResources, community: str, **params: object) -> CollectResult:
    p = SnmpParams(credential=community, port=sim.port, timeout=5, **params)
    result = await collect(Target(community, sim.address), p, CollectContext({"snmp": res}))
    assert result.success, result.error
    return result


def series(result: CollectResult, name: str, label: str) -> dict[str, Measurement]:
    return {dict(m.labels)[label]: m for m in result.measurements if m.name == name}


async def test_cisco_c3560_hc_counters_with_32_bit_fallback(sim: SimAgent, resources: SnmpResources) -> None:
    result = await poll(sim, resources, "cisco-c3560")
    rows = walk(
        sim, "cisco-c3560", "1.3.6.1.2.1.2.2.1.10", "1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.31.1.1.1.1"
    )
    hc, low = column(rows, "1.3.6.1.2.1.31.1.1.1.6"), column(rows, "1.3.6.1.2.1.2.2.1.10")
    got = series(result, "if_in_octets", "ifindex")
    assert set(got) == set(low) and len(got) == 57
    bits = result.details["counter_bits"]
    for index, m in got.items():
        assert m.value == int(hc.get(index, low[index]))
        assert bits[(m.name, m.labels)] == (64 if index in hc else 32)
    assert {bits[(m.name, m.labels)] for m in got.values()} == {32, 64}  # the device has both kinds
    names = column(rows, "1.3.6.1.2.1.31.1.1.1.1")
    assert {dict(m.labels)["ifname"] for m in got.values()} >= set(names.values())
    assert result.details["info"]["sysobjectid"].startswith("1.3.6.1.4.1.9.")


async def test_big_switch_all_interfaces_then_filtered(sim: SimAgent, resources: SnmpResources) -> None:
    full = await poll(sim, resources, "h3c-comware-1317")
    assert len(series(full, "if_oper_up", "ifindex")) == 1317
    names = column(walk(sim, "h3c-comware-1317", "1.3.6.1.2.1.31.1.1.1.1"), "1.3.6.1.2.1.31.1.1.1.1")
    wanted = {n for n in names.values() if n.startswith(("Ten-GigabitEthernet", "Vlan-interface"))}
    assert 0 < len(wanted) < 50
    filtered = await poll(
        sim,
        resources,
        "h3c-comware-1317",
        interfaces={"include": ["Ten-GigabitEthernet*", "Vlan-interface*"]},
    )
    assert set(series(filtered, "if_oper_up", "ifname")) == wanted
    assert filtered.details["static_refreshed"] is False  # labels came from the first poll's cache
    full_values = {(m.name, m.labels): m.value for m in full.measurements}
    assert all(full_values[(m.name, m.labels)] == m.value for m in filtered.measurements if m.labels)


async def test_vyatta_host_resources_and_ucd(sim: SimAgent, resources: SnmpResources) -> None:
    result = await poll(sim, resources, "vyatta", profiles=["system", "host-resources", "ucd-snmp"])
    rows = walk(sim, "vyatta", "1.3.6.1.2.1.25.3.3.1.2", "1.3.6.1.2.1.25.2.3.1", "1.3.6.1.4.1.2021.10.1.5")
    cpu = column(rows, "1.3.6.1.2.1.25.3.3.1.2")
    assert {c: m.value for c, m in series(result, "host_cpu_load_ratio", "cpu").items()} == {
        c: int(v) / 100 for c, v in cpu.items()
    }
    descr = column(rows, "1.3.6.1.2.1.25.2.3.1.3")
    used, units = column(rows, "1.3.6.1.2.1.25.2.3.1.6"), column(rows, "1.3.6.1.2.1.25.2.3.1.4")
    got = series(result, "host_storage_used_bytes", "storage")
    assert {d: got[d].value for d in descr.values()} == {
        d: int(used[i]) * int(units[i].split()[0]) for i, d in descr.items()
    }
    assert result.value("host_load1") == int(rows["1.3.6.1.4.1.2021.10.1.5.1"]) / 100
    assert result.value("host_memory_used_bytes") is not None


async def test_eaton_ups(sim: SimAgent, resources: SnmpResources) -> None:
    result = await poll(sim, resources, "eaton-93e-80", profiles=["system", "ups-mib"])
    rows = walk(sim, "eaton-93e-80", "1.3.6.1.2.1.33.1")
    assert result.value("ups_on_battery") == (1 if rows["1.3.6.1.2.1.33.1.4.1.0"] == "5" else 0)
    assert result.value("ups_battery_charge_ratio") == int(rows["1.3.6.1.2.1.33.1.2.4.0"]) / 100
    assert result.value("ups_battery_runtime_seconds") == int(rows["1.3.6.1.2.1.33.1.2.3.0"]) * 60
    volts = column(rows, "1.3.6.1.2.1.33.1.3.3.1.3")
    assert volts and {k: m.value for k, m in series(result, "ups_input_voltage_volts", "line").items()} == {
        k: int(v) for k, v in volts.items()
    }
    load = column(rows, "1.3.6.1.2.1.33.1.4.4.1.5")
    assert {k: m.value for k, m in series(result, "ups_output_load_ratio", "line").items()} == {
        k: int(v) / 100 for k, v in load.items()
    }


async def test_brocade_fcmgmt_and_sw_mib(sim: SimAgent, resources: SnmpResources) -> None:
    fa = await poll(sim, resources, "brocade-fc", profiles=["system", "san"])
    rows = walk(sim, "brocade-fc", "1.3.6.1.3.94.4.5.1.7", "1.3.6.1.3.94.4.5.1.2", "1.3.6.1.3.94.1.10.1.7")
    ports = column(rows, "1.3.6.1.3.94.4.5.1.2")
    rx = column(rows, "1.3.6.1.3.94.4.5.1.7")
    got = series(fa, "san_port_rx_octets", "port")
    assert len(got) == 48
    assert {p: got[p].value for p in ports.values()} == {
        ports[i]: int(v.replace(" ", ""), 16) for i, v in rx.items()
    }
    assert fa.details["counter_bits"][(got["1"].name, got["1"].labels)] == 64
    status = column(rows, "1.3.6.1.3.94.1.10.1.7")
    assert sum(m.value for m in series(fa, "san_port_up", "port").values()) == sum(
        1 for v in status.values() if v in ("3", "4")
    )
    sw = await poll(sim, resources, "brocade-sw-only", profiles=["system", "san"])
    words = column(
        walk(sim, "brocade-sw-only", "1.3.6.1.4.1.1588.2.1.1.1.6.2.1.12"), "1.3.6.1.4.1.1588.2.1.1.1.6.2.1.12"
    )
    got = series(sw, "san_port_rx_octets", "port")
    assert {p: m.value for p, m in got.items()} == {p: int(v) * 4 for p, v in words.items()}
    key = (got["1"].name, got["1"].labels)
    assert (sw.details["counter_bits"][key], sw.details["counter_scale"][key]) == (32, 4)


def _counters(uptime: int, in1_hc: int, in2: int) -> str:
    text = (OWN_DIR / "netwatch-counters.snmprec").read_text()
    out = []
    for line in text.splitlines():
        oid = line.split("|", 1)[0]
        value = {"1.3.6.1.2.1.1.3.0": f"67|{uptime}", "1.3.6.1.2.1.31.1.1.1.6.1": f"70|{in1_hc}",
                 "1.3.6.1.2.1.2.2.1.10.2": f"65|{in2}"}.get(oid)  # fmt: skip
        out.append(f"{oid}|{value}" if value else line)
    return "\n".join(out) + "\n"


async def test_wrap_and_reboot_details(sim: SimAgent, resources: SnmpResources) -> None:
    def values(result: CollectResult) -> dict[str, tuple[float, int]]:
        return {
            dict(m.labels)["ifname"]: (m.value, result.details["counter_bits"][(m.name, m.labels)])
            for m in result.measurements
            if m.name == "if_in_octets"
        }

    first = await poll(sim, resources, "netwatch-counters")
    assert values(first) == {"Gi0/0": (9007199254740000, 64), "Gi0/1": (4294966000, 32)}
    assert first.details["decode_problems"] == 1  # Se0/0/0's ifInOctets is a string: skipped, not fatal
    assert series(first, "if_speed_bps", "ifname")["Gi0/1"].value == 100_000_000
    assert first.details["uptime_ticks"] == 8640000

    sim.rewrite("netwatch-counters", _counters(8646000, 300, 500))
    wrapped = await poll(sim, resources, "netwatch-counters")
    assert values(wrapped) == {"Gi0/0": (300, 64), "Gi0/1": (500, 32)}  # raw: the rates step unwraps
    assert wrapped.details["uptime_ticks"] == 8646000 and wrapped.details["static_refreshed"] is False

    sim.rewrite("netwatch-counters", _counters(1500, 20, 10))
    rebooted = await poll(sim, resources, "netwatch-counters")
    assert rebooted.details["uptime_ticks"] == 1500 < wrapped.details["uptime_ticks"]
    assert rebooted.details["static_refreshed"] is True  # a reboot may renumber interfaces
    assert values(rebooted) == {"Gi0/0": (20, 64), "Gi0/1": (10, 32)}
    sim.rewrite("netwatch-counters", (OWN_DIR / "netwatch-counters.snmprec").read_text())


async def test_counter_driven_by_numeric_variation_moves_modulo_2_32(
    sim: SimAgent, resources: SnmpResources
) -> None:
    first = await poll(sim, resources, "netwatch-moving")
    started = time.monotonic()
    await asyncio.sleep(1.2)
    second = await poll(sim, resources, "netwatch-moving")
    elapsed = time.monotonic() - started
    a, b = (series(r, "if_in_octets", "ifname")["eth0"] for r in (first, second))
    assert second.details["counter_bits"][(b.name, b.labels)] == 32
    moved = (b.value - a.value) % 2**32  # what the rates step computes for a 32-bit counter
    assert 0.5e6 * elapsed < moved < 2e6 * elapsed


def _recording(changes: dict[str, str | None]) -> str:
    """netwatch-counters with OIDs set to ``tag|value`` or, for None, taken out."""
    lines = {}
    for line in (OWN_DIR / "netwatch-counters.snmprec").read_text().splitlines():
        oid, _, rest = line.partition("|")
        lines[oid] = rest
    for oid, rest in changes.items():
        if rest is None:
            lines.pop(oid, None)
        else:
            lines[oid] = rest
    ordered = sorted(lines, key=lambda oid: tuple(int(arc) for arc in oid.split(".")))
    return "".join(f"{oid}|{lines[oid]}\n" for oid in ordered)


HC_EVERYWHERE = {
    "1.3.6.1.2.1.2.2.1.10.3": "65|7000",  # a counter now, not a string
    "1.3.6.1.2.1.31.1.1.1.6.2": "70|600",
    "1.3.6.1.2.1.31.1.1.1.6.3": "70|700",
    "1.3.6.1.2.1.31.1.1.1.10.2": "70|800",
    "1.3.6.1.2.1.31.1.1.1.10.3": "70|900",
    "1.3.6.1.2.1.31.1.1.1.15.2": "66|100",
    "1.3.6.1.2.1.31.1.1.1.15.3": "66|2",
}


async def test_fallback_columns_are_skipped_until_a_row_needs_one(
    sim: SimAgent, resources: SnmpResources
) -> None:
    """A device with 64-bit counters and ifHighSpeed on every interface is not asked for ifInOctets,
    ifOutOctets and ifSpeed every minute; the poll that finds a row without them reads them at once."""

    def octets(result: CollectResult) -> dict[str, tuple[float, int]]:
        bits = result.details["counter_bits"]
        return {
            i: (m.value, bits[(m.name, m.labels)])
            for i, m in series(result, "if_in_octets", "ifname").items()
        }

    def speeds(result: CollectResult) -> dict[str, float]:
        return {i: m.value for i, m in series(result, "if_speed_bps", "ifname").items()}

    try:
        sim.rewrite("netwatch-counters", _recording(HC_EVERYWHERE))
        learning = await poll(sim, resources, "netwatch-counters")
        assert learning.details["skipped_columns"] == 0
        lean = await poll(sim, resources, "netwatch-counters")
        assert lean.details["skipped_columns"] == 3  # ifInOctets, ifOutOctets, ifSpeed
        assert octets(lean) == octets(learning) == {
            "Gi0/0": (9007199254740000, 64), "Gi0/1": (600, 64), "Se0/0/0": (700, 64)
        }  # fmt: skip
        assert speeds(lean) == speeds(learning) == {"Gi0/0": 1e9, "Gi0/1": 1e8, "Se0/0/0": 2e6}

        # Gi0/1 loses its 64-bit counter and Se0/0/0 its ifHighSpeed (a card swapped in the same slot).
        sim.rewrite(
            "netwatch-counters",
            _recording(
                {**HC_EVERYWHERE, "1.3.6.1.2.1.31.1.1.1.6.2": None, "1.3.6.1.2.1.31.1.1.1.15.3": "66|0"}
            ),
        )
        changed = await poll(sim, resources, "netwatch-counters")
        assert octets(changed)["Gi0/1"] == (4294966000, 32)  # ifInOctets, read in the same poll
        assert speeds(changed)["Se0/0/0"] == 2048000  # ifSpeed, likewise
        assert changed.details["skipped_columns"] == 1  # ifOutOctets: every row still has ifHCOutOctets
        after = await poll(sim, resources, "netwatch-counters")
        assert after.details["skipped_columns"] == 1
        assert octets(after) == octets(changed) and speeds(after) == speeds(changed)
    finally:
        sim.rewrite("netwatch-counters", (OWN_DIR / "netwatch-counters.snmprec").read_text())
