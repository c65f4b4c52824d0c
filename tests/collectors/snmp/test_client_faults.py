"""Agents that misbehave: silence, a closed port, garbage, truncated BER, loops and tables without end.

Every case ends in a typed SnmpError within its time budget: no crash, no hang, no unbounded memory.
"""

from __future__ import annotations

import socket
import time

import pytest

from collectors.snmp import SnmpClient, SnmpCredentials, SnmpError, SnmpTarget
from tests.collectors.snmp.fakeagent import Answer, fake_agent, integer, response, tlv

COMMUNITY = "fault-c0mmunity-5150"
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"


def _target(port: int, timeout: float = 0.4, retries: int = 1) -> SnmpTarget:
    return SnmpTarget(
        "127.0.0.1", SnmpCredentials.v2c(COMMUNITY), port=port, timeout=timeout, retries=retries
    )


def _counter(value: int) -> bytes:
    return integer(value, tag=0x41)


def _successors(request_oid: str, count: int) -> list[str]:
    """``count`` rows after ``request_oid`` in the ifInOctets column, forever (the column never ends)."""
    start = int(request_oid.rsplit(".", 1)[1]) + 1 if request_oid.startswith(IF_IN_OCTETS + ".") else 1
    return [f"{IF_IN_OCTETS}.{i}" for i in range(start, start + count)]


def silent(request_id: int, community: bytes, oids: list[str]) -> bytes | None:
    return None


def garbage(request_id: int, community: bytes, oids: list[str]) -> bytes | None:
    return b"\xde\xad\xbe\xef not an SNMP message \x00\xff"


def truncated(request_id: int, community: bytes, oids: list[str]) -> bytes | None:
    whole = response(request_id, community, [(f"{IF_IN_OCTETS}.1", _counter(7))])
    return whole[: len(whole) - 5]


def unknown_type(request_id: int, community: bytes, oids: list[str]) -> bytes | None:
    return response(request_id, community, [(f"{IF_IN_OCTETS}.1", tlv(0x49, b"\x01\x02"))])


def looping(request_id: int, community: bytes, oids: list[str]) -> bytes | None:
    # Always the first row, whatever was asked: the next OID never increases.
    return response(request_id, community, [(f"{IF_IN_OCTETS}.1", _counter(1)) for _ in oids])


def endless(request_id: int, community: bytes, oids: list[str]) -> bytes | None:
    return response(request_id, community, [(o, _counter(5)) for o in _successors(oids[0], 10)])


async def _fails(
    answer: Answer, *, max_rows: int = 100_000, deadline: float | None = None
) -> tuple[SnmpError, float]:
    async with fake_agent(answer) as (port, _agent), SnmpClient() as client:
        started = time.monotonic()
        with pytest.raises(SnmpError) as caught:
            await client.walk(_target(port), [IF_IN_OCTETS], max_rows=max_rows, deadline=deadline)
        return caught.value, time.monotonic() - started


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(silent, "timeout"), (garbage, "protocol"), (truncated, "protocol"), (unknown_type, "protocol")],
)
async def test_an_agent_that_answers_nothing_valid_fails_within_one_budget(
    answer: Answer, reason: str
) -> None:
    error, elapsed = await _fails(answer)
    assert error.reason == reason
    assert COMMUNITY not in str(error) and COMMUNITY not in repr(error)
    assert elapsed < _target(0 + 1).budget + 0.5


async def test_a_closed_port_is_a_timeout_not_a_hang() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with SnmpClient() as client:
        started = time.monotonic()
        with pytest.raises(SnmpError) as caught:
            await client.get(_target(port), ["1.3.6.1.2.1.1.5.0"])
    assert caught.value.reason == "timeout"
    assert "wrong community, or agent unreachable" in str(caught.value)
    assert time.monotonic() - started < _target(port).budget + 0.5


async def test_a_looping_agent_is_reported_as_loop_with_what_was_read() -> None:
    error, elapsed = await _fails(looping)
    assert error.reason == "loop"
    assert error.partial[IF_IN_OCTETS] == {"1": ("Counter32", 1)}
    assert elapsed < 1.0


async def test_a_table_that_never_ends_stops_at_max_rows() -> None:
    error, _ = await _fails(endless, max_rows=500)
    assert error.reason == "too_many_rows"
    assert len(error.partial[IF_IN_OCTETS]) == 500


async def test_a_table_that_never_ends_stops_at_the_walk_deadline() -> None:
    error, elapsed = await _fails(endless, deadline=0.5)
    assert error.reason == "timeout"
    assert "deadline" in str(error)
    assert error.partial[IF_IN_OCTETS]  # what was read is kept
    assert elapsed < 0.5 + _target(1).budget + 0.5


def mixed(request_id: int, community: bytes, oids: list[str]) -> bytes | None:
    # One answer holds the whole column and the row after it: values of four types and a Null.
    if oids[0] != IF_IN_OCTETS:
        return response(request_id, community, [("1.3.6.1.2.1.2.2.1.11.1", _counter(1))])
    rows = [
        (f"{IF_IN_OCTETS}.1", _counter(10)),
        (f"{IF_IN_OCTETS}.2", integer(20, tag=0x42)),  # Gauge32
        (f"{IF_IN_OCTETS}.3", tlv(0x05, b"")),  # Null: no value here
        (f"{IF_IN_OCTETS}.4", tlv(0x04, b"n/a")),
        (f"{IF_IN_OCTETS}.5", _counter(50)),
        ("1.3.6.1.2.1.2.2.1.11.1", _counter(1)),
    ]
    return response(request_id, community, rows)


async def test_a_column_of_mixed_types_keeps_each_value_with_its_own_type() -> None:
    """Walks hold plain values and one type per column while in flight; the odd rows keep theirs."""
    async with fake_agent(mixed) as (port, _agent), SnmpClient() as client:
        got = await client.walk(_target(port), [IF_IN_OCTETS])
    assert got == {
        IF_IN_OCTETS: {
            "1": ("Counter32", 10),
            "2": ("Gauge32", 20),
            "4": ("OctetString", b"n/a"),
            "5": ("Counter32", 50),
        }
    }
