"""The v2c fast path: the same answers as the pysnmp path on snmpd, many walks at once, strays ignored."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from collectors.snmp import SnmpClient, SnmpCredentials, SnmpError, SnmpTarget
from collectors.snmp.v2c import V2cTransport
from tests.collectors.snmp.fakeagent import parse_request, response, tlv
from tests.collectors.snmp.netsnmp import snmpbulkwalk
from tests.collectors.snmp.test_client_agent import (
    COUNTER_COLUMNS,
    IF_TABLE,
    INTERFACE_COLUMNS,
    MOVING_COLUMNS,
    STATIC_COLUMNS,
)
from tests.support.snmpd import SnmpAgent

SYS_NAME = "1.3.6.1.2.1.1.5.0"


async def test_fast_and_pysnmp_paths_read_the_same_columns_alike(
    v2c_target: SnmpTarget, snmpd: SnmpAgent
) -> None:
    columns = STATIC_COLUMNS + COUNTER_COLUMNS + MOVING_COLUMNS
    fast_transport = V2cTransport()
    async with (
        SnmpClient(v2c_transport=fast_transport) as fast,
        SnmpClient(fast_v2c=False, v2c_transport=(unused := V2cTransport())) as slow,
    ):
        before = await fast.walk(v2c_target, columns, max_repetitions=7)
        reference = await slow.walk(v2c_target, columns, max_repetitions=7)
        after = await fast.walk(v2c_target, columns, max_repetitions=7)
        fast_info = await fast.system_info(v2c_target)
        slow_info = await slow.system_info(v2c_target)
        fast_again = await fast.system_info(v2c_target)
    # sysUpTime ticks on between reads: the slow read lies between two fast ones; the rest is equal.
    assert replace(fast_info, uptime_ticks=None) == replace(slow_info, uptime_ticks=None)
    assert fast_info.uptime_ticks is not None and slow_info.uptime_ticks is not None
    assert fast_info.uptime_ticks <= slow_info.uptime_ticks <= (fast_again.uptime_ticks or 0)
    assert fast_transport.counters.matched > 0, "the fast client did not take the fast path"
    assert unused.counters.sent == 0, "fast_v2c=False still sent through the fast path"
    for column in STATIC_COLUMNS:
        assert before[column] == reference[column] == after[column], column
        assert reference[column], f"{column} is empty: the comparison would prove nothing"
    for column in COUNTER_COLUMNS:  # counters only grow: pysnmp's read lies between two fast reads
        assert before[column].keys() == reference[column].keys() == after[column].keys()
        for index, value in reference[column].items():
            assert before[column][index].type == value.type == after[column][index].type
            assert before[column][index].value <= value.value <= after[column][index].value  # type: ignore[operator]
    for column in MOVING_COLUMNS:
        for index, value in reference[column].items():
            assert after[column][index].type == value.type, (column, index)


async def test_two_hundred_concurrent_walks_on_one_client_all_succeed(
    v2c_target: SnmpTarget, snmpd: SnmpAgent
) -> None:
    reference = snmpbulkwalk(snmpd.endpoint, snmpd.community, f"{IF_TABLE}.2")
    transport = V2cTransport()
    async with SnmpClient(max_in_flight=200, v2c_transport=transport) as client:
        walks = await asyncio.gather(
            *(client.walk(v2c_target, INTERFACE_COLUMNS, max_repetitions=5) for _ in range(200))
        )
    for walked in walks:
        assert walked[f"{IF_TABLE}.2"] == reference
        assert all(walked[c].keys() == reference.keys() for c in INTERFACE_COLUMNS)
    assert transport.counters.timeouts == 0
    assert transport.counters.unknown_request == 0  # no answer came too late for its request


Reply = Callable[[int, bytes, list[str]], list[tuple[str, bytes]]]
"""(request id, community, OIDs) → datagrams to send, each tagged "agent" or "other" (the socket to use)."""


@asynccontextmanager
async def scripted_agent(reply: Reply) -> AsyncIterator[tuple[int, list[int]]]:
    """An agent on 127.0.0.1 that answers from its own port or another one; yields (port, request ids)."""
    loop = asyncio.get_running_loop()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    seen: list[int] = []

    class Agent(asyncio.DatagramProtocol):
        transport: asyncio.DatagramTransport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            request_id, community, oids = parse_request(data)
            seen.append(request_id)
            for source, datagram in reply(request_id, community, oids):
                if source == "agent":
                    self.transport.sendto(datagram, addr)
                else:
                    other.sendto(datagram, addr)

    transport, _ = await loop.create_datagram_endpoint(Agent, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1], seen
    finally:
        transport.close()
        other.close()


def _name(value: str) -> bytes:
    return tlv(0x04, value.encode())


async def test_answers_from_elsewhere_for_other_requests_or_with_another_community_are_ignored() -> None:
    community = b"stray-c0mmunity-77"

    def reply(request_id: int, got: bytes, oids: list[str]) -> list[tuple[str, bytes]]:
        return [
            ("other", response(request_id, got, [(SYS_NAME, _name("from another port"))])),
            ("agent", response(request_id + 1, got, [(SYS_NAME, _name("for another request"))])),
            ("agent", response(request_id, b"not-" + got, [(SYS_NAME, _name("other community"))])),
            ("agent", b"\x30\x03garbage"),
            ("agent", response(request_id, got, [(SYS_NAME, _name("the real answer"))])),
        ]

    transport = V2cTransport()
    async with scripted_agent(reply) as (port, _), SnmpClient(v2c_transport=transport) as client:
        target = SnmpTarget("127.0.0.1", SnmpCredentials.v2c(community.decode()), port=port, timeout=1.0)
        got = await client.get(target, [SYS_NAME])
    assert got[SYS_NAME].value == b"the real answer"
    counters = transport.counters
    assert (counters.wrong_peer, counters.unknown_request, counters.wrong_community) == (1, 1, 1)
    assert counters.malformed == 1 and counters.matched == 1


async def test_a_lost_request_is_retried_with_the_same_request_id() -> None:
    def reply(request_id: int, community: bytes, oids: list[str]) -> list[tuple[str, bytes]]:
        if len(seen) == 1:  # the first try is lost
            return []
        return [("agent", response(request_id, community, [(SYS_NAME, _name("second try"))]))]

    transport = V2cTransport()
    async with scripted_agent(reply) as (port, seen), SnmpClient(v2c_transport=transport) as client:
        target = SnmpTarget(
            "127.0.0.1", SnmpCredentials.v2c("retry-c0mmunity"), port=port, timeout=0.3, retries=1
        )
        got = await client.get(target, [SYS_NAME])
    assert got[SYS_NAME].value == b"second try"
    assert len(seen) == 2 and seen[0] == seen[1]
    assert transport.counters.retries == 1


async def test_an_answer_to_the_request_with_unreadable_varbinds_ends_it_as_protocol_at_once() -> None:
    """The varbinds are decoded when the request runs again: if they are unreadable, the agent did
    answer this request (id, address, community match), so it fails then, without a retry."""

    def reply(request_id: int, community: bytes, oids: list[str]) -> list[tuple[str, bytes]]:
        return [("agent", response(request_id, community, [(SYS_NAME, tlv(0x49, b"\x01\x02"))]))]

    transport = V2cTransport()
    async with scripted_agent(reply) as (port, seen), SnmpClient(v2c_transport=transport) as client:
        target = SnmpTarget(
            "127.0.0.1", SnmpCredentials.v2c("unread-c0mmunity"), port=port, timeout=2.0, retries=2
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(SnmpError) as caught:
            await client.get(target, [SYS_NAME])
        elapsed = loop.time() - started
    assert caught.value.reason == "protocol"
    assert elapsed < 1.0, "no wait for a timeout: the answer came and was unreadable"
    assert len(seen) == 1 and transport.counters.retries == 0
    counters = transport.counters
    assert (counters.malformed, counters.matched) == (1, 0)


async def _most_waiting_at_once(client: SnmpClient, requests: int) -> int:
    """Send ``requests`` GETs at once to an agent that answers only after 0.2 s without a new request:
    the largest batch it holds is how many requests the client lets wait for an answer together."""
    loop = asyncio.get_running_loop()
    held: list[tuple[bytes, tuple[str, int]]] = []
    batches: list[int] = []

    class Holding(asyncio.DatagramProtocol):
        transport: asyncio.DatagramTransport
        timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            held.append((data, addr))
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_later(0.2, self.answer)

        def answer(self) -> None:
            batches.append(len(held))
            for data, addr in held:
                request_id, community, _ = parse_request(data)
                self.transport.sendto(response(request_id, community, [(SYS_NAME, _name("held"))]), addr)
            held.clear()

    transport, _ = await loop.create_datagram_endpoint(Holding, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        target = SnmpTarget("127.0.0.1", SnmpCredentials.v2c("held-c0mmunity"), port=port, timeout=5.0)
        answers = await asyncio.gather(*(client.get(target, [SYS_NAME]) for _ in range(requests)))
    finally:
        transport.close()
    assert all(a[SYS_NAME].value == b"held" for a in answers)
    return max(batches)


async def test_the_fast_path_keeps_as_many_requests_in_flight_as_configured() -> None:
    async with SnmpClient() as client:
        assert await _most_waiting_at_once(client, 100) == 64
    async with SnmpClient(fast_in_flight=200) as client:
        assert await _most_waiting_at_once(client, 300) == 200


async def test_no_more_in_flight_than_the_socket_can_queue() -> None:
    """A small receive buffer (a non-root daemon gets net.core.rmem_max) must not fake timeouts:
    answers beyond what it can queue would be dropped while the loop is busy."""
    transport = V2cTransport(receive_buffer=64 * 1024)  # the kernel doubles it: 128 KiB, 8 answers
    async with SnmpClient(v2c_transport=transport) as client:
        assert await _most_waiting_at_once(client, 40) == 8
