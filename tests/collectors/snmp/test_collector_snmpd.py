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


async def test_walk_asks_only_as_many_rows_as_the_table_has(
    snmpd: SnmpAgent, resources: SnmpResources
) -> None:
    """Once the interface count is known, the counters' walk ends in one request per column set
    instead of reading 25 repetitions, most of them past the table, from every device every minute."""
    first = await poll(snmpd, resources, profiles=["if-mib"])
    rows = len(by(first, "if_oper_up", "ifindex"))
    packets_before, varbinds_before = _agent_counts(snmpd)
    second = await poll(snmpd, resources, profiles=["if-mib"])
    packets_after, varbinds_after = _agent_counts(snmpd)
    requests = packets_after - packets_before - 1  # less our own snmpget
    read = varbinds_after - varbinds_before - 2
    assert second.details["static_refreshed"] is False
    assert by(second, "if_in_octets", "ifindex").keys() == by(first, "if_in_octets", "ifindex").keys()
    (table,) = resources.profiles["if-mib"].tables
    columns = len(dynamic_columns(table))
    # One GET of sysUpTime, one GETBULK of rows + 1 repetitions (the extra row shows each column's end).
    assert requests == 2
    assert read == columns * (rows + 1) + 1
