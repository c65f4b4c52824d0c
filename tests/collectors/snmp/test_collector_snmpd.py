"""The snmp collector against a real net-snmp agent, checked against net-snmp's own command-line tools."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator

import pytest

from collectors.base import CollectContext, CollectResult, Measurement, Target
from collectors.snmp import SnmpCredentials
from collectors.snmp.collector import SnmpParams, SnmpResources, collect, open_snmp_resources
from collectors.snmp.decode import dynamic_columns
from tests.support.snmpd import SnmpAgent

ALL = ["system", "if-mib", "host-resources", "ucd-snmp"]


@pytest.fixture
async def resources(snmpd: SnmpAgent) -> AsyncIterator[SnmpResources]:
    res = open_snmp_resources({"lab": SnmpCredentials.v2c(snmpd.community)})
    yield res
    await res.close()


def netsnmp(agent: SnmpAgent, tool: str, *oids: str) -> dict[str, str]:
    """OID → value text as snmpget/snmpbulkwalk print it with -On -Oe -Ot -Oq."""
    out = subprocess.run(
        [tool, "-v2c", "-c", agent.community, "-On", "-Oe", "-Ot", "-Oq", "-OU", agent.endpoint, *oids],
        capture_output=True, text=True, check=True, env={**os.environ, "MIBS": ":"},
    ).stdout  # fmt: skip
    rows = {}
    for line in out.splitlines():
        oid, _, value = line.partition(" ")
        rows[oid.lstrip(".")] = value.strip().strip('"')
    return rows


async def poll(agent: SnmpAgent, res: SnmpResources, **params: object) -> CollectResult:
    p = SnmpParams(credential="lab", port=agent.port, **params)
    result = await collect(Target("lab-agent", agent.address), p, CollectContext({"snmp": res}))
    assert result.success, result.error
    return result


def by(result: CollectResult, name: str, label: str) -> dict[str, Measurement]:
    return {dict(m.labels)[label]: m for m in result.measurements if m.name == name}


async def test_profiles_match_what_net_snmp_tools_read(snmpd: SnmpAgent, resources: SnmpResources) -> None:
    result = await poll(snmpd, resources, profiles=ALL)
    names = netsnmp(snmpd, "snmpbulkwalk", "1.3.6.1.2.1.31.1.1.1.1")
    octets = netsnmp(snmpd, "snmpbulkwalk", "1.3.6.1.2.1.31.1.1.1.6")
    types = netsnmp(snmpd, "snmpbulkwalk", "1.3.6.1.2.1.2.2.1.8")
    scalars = netsnmp(snmpd, "snmpget", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.2021.4.5.0")

    assert result.details["info"]["sysname"] == scalars["1.3.6.1.2.1.1.5.0"] == snmpd.sys_name
    uptime = result.value("device_uptime_seconds")
    assert uptime is not None and abs(uptime - int(scalars["1.3.6.1.2.1.1.3.0"]) / 100) < 5
    assert result.details["uptime_ticks"] == pytest.approx(uptime * 100)

    ifnames = by(result, "if_in_octets", "ifname")
    assert {n for n in names.values()} == set(ifnames)
    lo = ifnames["lo"]
    assert dict(lo.labels)["ifindex"] == next(o.rsplit(".", 1)[1] for o, n in names.items() if n == "lo")
    walked = int(octets[f"1.3.6.1.2.1.31.1.1.1.6.{dict(lo.labels)['ifindex']}"])
    assert walked - 100_000 <= lo.value <= walked  # the collector read first; loopback traffic is small
    assert result.details["counter_bits"][(lo.name, lo.labels)] == 64
    oper = by(result, "if_oper_up", "ifindex")
    assert {i: m.value for i, m in oper.items()} == {
        o.rsplit(".", 1)[1]: 1.0 if v == "1" else 0.0 for o, v in types.items()
    }

    storage = netsnmp(snmpd, "snmpbulkwalk", "1.3.6.1.2.1.25.2.3.1")
    descr = {o.rsplit(".", 1)[1]: v for o, v in storage.items() if o.startswith("1.3.6.1.2.1.25.2.3.1.3.")}
    root = next(i for i, d in descr.items() if d == "/")
    size = int(storage[f"1.3.6.1.2.1.25.2.3.1.5.{root}"]) * int(storage[f"1.3.6.1.2.1.25.2.3.1.4.{root}"])
    assert by(result, "host_storage_size_bytes", "storage")["/"].value == size
    total = result.value("host_memory_total_bytes")
    assert total == int(scalars["1.3.6.1.4.1.2021.4.5.0"]) * 1024
    assert result.value("host_load1") is not None


async def test_exclude_lo_and_cached_labels(snmpd: SnmpAgent, resources: SnmpResources) -> None:
    first = await poll(snmpd, resources, interfaces={"exclude": ["lo"]})
    assert first.details["static_refreshed"] is True
    assert by(first, "if_in_octets", "ifname") and "lo" not in by(first, "if_in_octets", "ifname")
    second = await poll(snmpd, resources, interfaces={"exclude": ["lo"]})
    assert second.details["static_refreshed"] is False
    assert set(by(second, "if_oper_up", "ifname")) == set(by(first, "if_oper_up", "ifname"))
    only_loopback = await poll(snmpd, resources, interfaces={"types": ["softwareLoopback"]})
    assert set(by(only_loopback, "if_in_octets", "ifname")) == {"lo"}


async def test_failures_are_values(snmpd: SnmpAgent, resources: SnmpResources) -> None:
    ctx = CollectContext({"snmp": resources})
    unknown = await collect(Target("x", snmpd.address), SnmpParams(credential="nope", port=snmpd.port), ctx)
    assert (unknown.success, unknown.reason) == (False, "config")
    resources.credentials = {"lab": SnmpCredentials.v2c("wrong-community")}
    wrong = await collect(
        Target("x", snmpd.address), SnmpParams(credential="lab", port=snmpd.port, timeout=0.3, retries=0), ctx
    )
    assert (wrong.success, wrong.reason) == (False, "timeout")
    assert "wrong-community" not in (wrong.error or "")
    none = await collect(Target("x", snmpd.address), SnmpParams(credential="lab"), CollectContext())
    assert (none.success, none.reason) == (False, "config")


def _agent_counts(agent: SnmpAgent) -> tuple[int, int]:
    """The agent's own count of requests (snmpInPkts) and of varbinds it answered (snmpInTotalReqVars)."""
    got = netsnmp(agent, "snmpget", "1.3.6.1.2.1.11.1.0", "1.3.6.1.2.1.11.13.0")
    return int(got["1.3.6.1.2.1.11.1.0"]), int(got["1.3.6.1.2.1.11.13.0"])


def _column(rows: dict[str, str], oid: str) -> dict[str, str]:
    return {k[len(oid) + 1 :]: v for k, v in rows.items() if k.startswith(oid + ".")}


IF_HC_IN, IF_IN = "1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.2.2.1.10"
IF_HC_OUT, IF_OUT = "1.3.6.1.2.1.31.1.1.1.10", "1.3.6.1.2.1.2.2.1.16"
IF_HIGH_SPEED, IF_SPEED = "1.3.6.1.2.1.31.1.1.1.15", "1.3.6.1.2.1.2.2.1.5"


def _fallbacks_not_needed(agent: SnmpAgent) -> set[str]:
    """The 32-bit columns whose 64-bit twin has every row, by net-snmp's own walk of the agent."""
    rows = {
        **netsnmp(agent, "snmpbulkwalk", "1.3.6.1.2.1.2.2.1"),
        **netsnmp(agent, "snmpbulkwalk", "1.3.6.1.2.1.31.1.1.1"),
    }
    unneeded = set()
    for first, later in ((IF_HC_IN, IF_IN), (IF_HC_OUT, IF_OUT)):
        if set(_column(rows, later)) <= set(_column(rows, first)):
            unneeded.add(later)
    speeds = _column(rows, IF_HIGH_SPEED)
    if all(speeds.get(index, "0") != "0" for index in _column(rows, IF_SPEED)):
        unneeded.add(IF_SPEED)
    return unneeded


async def test_walk_asks_only_as_many_rows_and_columns_as_the_device_needs(
    snmpd: SnmpAgent, resources: SnmpResources
) -> None:
    """Once the interface count is known, the counters' walk ends in one request per column set
    instead of reading 25 repetitions, most of them past the table, from every device every minute;
    the 32-bit columns behind 64-bit ones the device has on every row are not read at all; and
    sysUpTime rides in that same request instead of a GET of its own."""
    unneeded = _fallbacks_not_needed(snmpd)
    assert IF_IN in unneeded and IF_OUT in unneeded  # Linux has 64-bit octet counters on every interface
    first = await poll(snmpd, resources, profiles=["if-mib"])
    rows = len(by(first, "if_oper_up", "ifindex"))
    assert first.details["skipped_columns"] == 0  # the first poll reads every source to learn
    packets_before, varbinds_before = _agent_counts(snmpd)
    second = await poll(snmpd, resources, profiles=["if-mib"])
    packets_after, varbinds_after = _agent_counts(snmpd)
    requests = packets_after - packets_before - 1  # less our own snmpget
    read = varbinds_after - varbinds_before - 2
    assert second.details["static_refreshed"] is False
    assert second.details["skipped_columns"] == len(unneeded)
    (table,) = resources.profiles["if-mib"].tables
    columns = len(dynamic_columns(table)) - len(unneeded)
    # One GETBULK: sysUpTime as a non-repeater, then rows + 1 repetitions (the extra row shows each
    # column's end).
    assert requests == 1
    assert read == columns * (rows + 1) + 1
    assert isinstance(first.details["uptime_ticks"], int)
    assert second.details["uptime_ticks"] >= first.details["uptime_ticks"]

    # Nothing the second poll reports is missing or read differently for the columns it skipped.
    def series(result: CollectResult) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
        return {key: bits for key, bits in result.details["counter_bits"].items()}

    assert series(second) == series(first) and set(series(second).values()) == {32, 64}
    assert {(m.name, m.labels) for m in second.measurements} == {
        (m.name, m.labels) for m in first.measurements
    }
    assert {k: m.value for k, m in by(second, "if_speed_bps", "ifindex").items()} == {
        k: m.value for k, m in by(first, "if_speed_bps", "ifindex").items()
    }
