"""SnmpClient against a real net-snmp agent, checked against net-snmp's own snmpbulkwalk."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from collectors.snmp import SnmpClient, SnmpTarget, Value
from collectors.snmp.client import Riders
from tests.collectors.snmp.netsnmp import snmpbulkwalk
from tests.support.snmpd import SYS_LOCATION, SnmpAgent

IF_TABLE = "1.3.6.1.2.1.2.2.1"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1.1"
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
STATIC_COLUMNS = [
    f"{IF_TABLE}.2",  # ifDescr
    f"{IF_TABLE}.3",  # ifType
    f"{IF_TABLE}.5",  # ifSpeed
    f"{IF_TABLE}.8",  # ifOperStatus
    f"{IF_X_TABLE}.1",  # ifName
    f"{IF_X_TABLE}.15",  # ifHighSpeed
    f"{IF_X_TABLE}.18",  # ifAlias
    "1.3.6.1.2.1.25.2.3.1.1",  # hrStorageIndex
    "1.3.6.1.2.1.25.2.3.1.2",  # hrStorageType
    "1.3.6.1.2.1.25.2.3.1.3",  # hrStorageDescr
    "1.3.6.1.2.1.25.2.3.1.4",  # hrStorageAllocationUnits
]
COUNTER_COLUMNS = [
    f"{IF_TABLE}.10",  # ifInOctets
    f"{IF_TABLE}.16",  # ifOutOctets
    f"{IF_TABLE}.13",  # ifInDiscards
    f"{IF_TABLE}.14",  # ifInErrors
    f"{IF_TABLE}.19",  # ifOutDiscards
    f"{IF_TABLE}.20",  # ifOutErrors
    f"{IF_X_TABLE}.6",  # ifHCInOctets
    f"{IF_X_TABLE}.10",  # ifHCOutOctets
]
MOVING_COLUMNS = [
    "1.3.6.1.2.1.25.2.3.1.5",  # hrStorageSize (tmpfs sizes may change)
    "1.3.6.1.2.1.25.2.3.1.6",  # hrStorageUsed
    HR_PROCESSOR_LOAD,
    "1.3.6.1.4.1.2021.10.1.3",  # laLoad
]
INTERFACE_COLUMNS = [c for c in STATIC_COLUMNS + COUNTER_COLUMNS if c.startswith((IF_TABLE, IF_X_TABLE))]


async def test_system_info_reads_the_agents_system_group(
    client: SnmpClient, v2c_target: SnmpTarget, snmpd: SnmpAgent
) -> None:
    info = await client.system_info(v2c_target)
    assert info.name == snmpd.sys_name
    assert info.object_id == "1.3.6.1.4.1.8072.3.2.10"  # net-snmp on Linux
    assert info.descr is not None and info.descr.startswith("Linux")
    assert info.uptime_ticks is not None and info.uptime_ticks >= 0


async def test_uptime_increases_between_two_reads(client: SnmpClient, v2c_target: SnmpTarget) -> None:
    first = await client.get(v2c_target, ["1.3.6.1.2.1.1.3.0"])
    await asyncio.sleep(0.15)
    second = await client.get(v2c_target, ["1.3.6.1.2.1.1.3.0"])
    assert first["1.3.6.1.2.1.1.3.0"].type == "TimeTicks"
    assert second["1.3.6.1.2.1.1.3.0"].value > first["1.3.6.1.2.1.1.3.0"].value  # type: ignore[operator]


async def test_get_leaves_out_what_the_agent_does_not_have(
    client: SnmpClient, v2c_target: SnmpTarget
) -> None:
    got = await client.get(v2c_target, ["1.3.6.1.2.1.1.6.0", "1.3.6.1.2.1.1.99.0", "1.3.6.1.2.1.1.6"])
    assert got == {"1.3.6.1.2.1.1.6.0": Value("OctetString", SYS_LOCATION.encode())}


async def test_get_of_many_oids_is_split_into_several_requests(
    client: SnmpClient, v2c_target: SnmpTarget
) -> None:
    oids = [f"1.3.6.1.2.1.2.2.1.2.{i}" for i in range(1, 81)]  # more than one request's worth
    got = await client.get(v2c_target, oids)
    reference = snmpbulkwalk(
        f"{v2c_target.address}:{v2c_target.port}", v2c_target.credentials.community or "", f"{IF_TABLE}.2"
    )
    assert got == {f"{IF_TABLE}.2.{i}": v for i, v in reference.items()}


@pytest.mark.parametrize("max_repetitions", [1, 3, 25])
async def test_walk_matches_snmpbulkwalk(
    client: SnmpClient, v2c_target: SnmpTarget, snmpd: SnmpAgent, max_repetitions: int
) -> None:
    columns = STATIC_COLUMNS + COUNTER_COLUMNS + MOVING_COLUMNS
    before = {c: snmpbulkwalk(snmpd.endpoint, snmpd.community, c) for c in COUNTER_COLUMNS}
    walked = await client.walk(v2c_target, columns, max_repetitions=max_repetitions)
    after = {c: snmpbulkwalk(snmpd.endpoint, snmpd.community, c) for c in columns}

    assert set(walked) == set(columns)
    for column in columns:
        assert walked[column].keys() == after[column].keys(), column
        # snmpd fills hrProcessorTable only after its first CPU sample, which may not have come yet.
        assert walked[column] or column == HR_PROCESSOR_LOAD, (
            f"{column} is empty: the test would prove nothing"
        )
    for column in STATIC_COLUMNS:
        assert walked[column] == after[column], column
    for column in COUNTER_COLUMNS:  # counters only grow here: ours lies between two reference reads
        for index, value in walked[column].items():
            assert value.type == after[column][index].type
            assert before[column][index].value <= value.value <= after[column][index].value, (column, index)  # type: ignore[operator]
    for column in MOVING_COLUMNS:
        for index, value in walked[column].items():
            assert value.type == after[column][index].type, (column, index)


async def test_walk_of_a_column_the_agent_lacks_is_empty(client: SnmpClient, v2c_target: SnmpTarget) -> None:
    walked = await client.walk(
        v2c_target, ["1.3.6.1.2.1.10.7.2.1.2", f"{IF_TABLE}.2"]
    )  # no EtherLike-MIB here
    assert walked["1.3.6.1.2.1.10.7.2.1.2"] == {}
    assert walked[f"{IF_TABLE}.2"]


async def test_walk_stops_at_end_of_mib_view(client: SnmpClient, v2c_target: SnmpTarget) -> None:
    walked = await client.walk(
        v2c_target, ["1.3.6.1.6.3.99", "1.3.6.1.6.3.15.1.1.4"]
    )  # past the last agent OID
    assert walked["1.3.6.1.6.3.99"] == {}
    assert walked["1.3.6.1.6.3.15.1.1.4"]  # usmStatsUnknownEngineIDs.0 exists


async def test_walk_bounded_by_max_rows(client: SnmpClient, v2c_target: SnmpTarget) -> None:
    from collectors.snmp import SnmpError

    with pytest.raises(SnmpError) as caught:
        await client.walk(v2c_target, ["1.3.6.1.2.1"], max_rows=50, max_repetitions=10)
    assert caught.value.reason == "too_many_rows"
    partial = caught.value.partial["1.3.6.1.2.1"]
    assert 40 <= len(partial) <= 50


async def test_fifty_concurrent_walks_on_one_client_all_succeed(
    v2c_target: SnmpTarget, snmpd: SnmpAgent
) -> None:
    reference = snmpbulkwalk(snmpd.endpoint, snmpd.community, f"{IF_TABLE}.2")
    async with SnmpClient(max_in_flight=8) as client:
        walks = await asyncio.gather(
            *(client.walk(v2c_target, INTERFACE_COLUMNS, max_repetitions=5) for _ in range(50))
        )
    for walked in walks:
        assert walked[f"{IF_TABLE}.2"] == reference
        assert all(walked[c].keys() == reference.keys() for c in INTERFACE_COLUMNS)


SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
RIDERS = [
    SYS_UPTIME,
    "1.3.6.1.2.1.1.5.0",  # sysName
    "1.3.6.1.2.1.1.6.0",  # sysLocation
    "1.3.6.1.2.1.2.1.0",  # ifNumber
    "1.3.6.1.2.1.1.99.0",  # absent: the object after its GETNEXT start lies past it
    f"{IF_TABLE}.2.1",  # ifDescr.1, an instance: its GETNEXT starts at ifDescr.0
]
UNSETTLED = f"{IF_TABLE}.3"  # not an object: its GETNEXT start (ifDescr) has rows before it


def _agent_requests(agent: SnmpAgent) -> int:
    """snmpInPkts, by net-snmp's snmpget (which adds one)."""
    command = ["snmpget", "-v2c", "-c", agent.community, "-Oqv", agent.endpoint, "1.3.6.1.2.1.11.1.0"]
    return int(subprocess.run(command, capture_output=True, text=True, check=True, timeout=10).stdout)


@pytest.mark.parametrize("fast_v2c", [True, False], ids=["fast-path", "pysnmp"])
@pytest.mark.parametrize("unsettled", [False, True], ids=["settled", "with-unsettled"])
async def test_scalars_riding_in_a_walk_read_as_their_get_does_in_one_request(
    v2c_target: SnmpTarget, snmpd: SnmpAgent, fast_v2c: bool, unsettled: bool
) -> None:
    """A poll's scalars go as non-repeaters of its walk's first GETBULK: the same values as a GET of
    them, and no request of their own unless a GETNEXT could not settle one."""
    oids = [*RIDERS, UNSETTLED] if unsettled else RIDERS
    async with SnmpClient(fast_v2c=fast_v2c) as client:
        expected = await client.get(v2c_target, oids)
        before = _agent_requests(snmpd)
        riders = Riders(oids)
        walked = await client.walk(v2c_target, [f"{IF_TABLE}.2"], riders=riders)
        requests = _agent_requests(snmpd) - before - 1
    assert riders.answered
    assert expected.keys() == riders.values.keys() == set(RIDERS) - {"1.3.6.1.2.1.1.99.0"}
    for oid, value in expected.items():
        if oid == SYS_UPTIME:  # read again a moment later
            assert riders.values[oid].type == "TimeTicks"
            assert riders.values[oid].value >= value.value  # type: ignore[operator]
        else:
            assert riders.values[oid] == value, oid
    assert walked[f"{IF_TABLE}.2"] == snmpbulkwalk(snmpd.endpoint, snmpd.community, f"{IF_TABLE}.2")
    rows = len(walked[f"{IF_TABLE}.2"])
    walk_requests = -(-(rows + 1) // 25)  # 25 repetitions a request, and one past the column's end
    assert requests == walk_requests + (1 if unsettled else 0)
