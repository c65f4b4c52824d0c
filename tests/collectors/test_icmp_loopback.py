"""The ICMP engine with real sockets against loopback (127.0.0.0/8 and ::1 only)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from collectors.base import CollectContext, Target
from collectors.icmp import IcmpEngine, IcmpParams, IcmpPermissionError, collect

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (raw sockets, sysctl); CI runs as root")

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
async def icmp_engine() -> AsyncIterator[IcmpEngine]:
    async with await IcmpEngine.open() as opened:
        yield opened


@pytest.fixture
def ping_group_range() -> Iterator[Path]:
    """Lets the test set ``net.ipv4.ping_group_range``; puts the old value back afterwards."""
    saved = PING_GROUP_RANGE.read_text()
    try:
        yield PING_GROUP_RANGE
    finally:
        PING_GROUP_RANGE.write_text(saved)


ADDRESSES = ["127.0.0.1", "127.0.0.2", "127.45.6.7", "127.255.0.254"]
if _has_ipv6_loopback():
    ADDRESSES.append("::1")


async def test_root_gets_raw_sockets(icmp_engine: IcmpEngine) -> None:
    assert icmp_engine.privileged is True


@pytest.mark.parametrize("address", ADDRESSES)
async def test_loopback_round_gets_every_reply_with_a_small_rtt(
    icmp_engine: IcmpEngine, address: str
) -> None:
    result = await icmp_engine.round(address, probes=4, probe_spacing=0.01, timeout=0.5)
    assert (result.address, result.sent, result.received, result.reason) == (address, 4, 4, None)
    assert all(0 < rtt < 0.010 for rtt in result.rtts), result.rtts


async def test_two_hundred_targets_in_flight_all_answer(icmp_engine: IcmpEngine) -> None:
    addresses = [f"127.2.{i // 100}.{i % 100 + 1}" for i in range(200)]
    results = await asyncio.gather(
        *(icmp_engine.round(a, probes=3, probe_spacing=0.01, timeout=1.0) for a in addresses)
    )
    assert [r.address for r in results] == addresses
    assert all(r.received == r.sent == 3 for r in results), [r for r in results if r.received != 3][:3]
    assert all(0 < rtt < 0.010 for r in results for rtt in r.rtts)


async def test_an_answer_waiting_in_the_socket_when_its_round_expires_is_not_lost(
    icmp_engine: IcmpEngine,
) -> None:
    """A loop busy past a round's end sends its last probe and reaches the expiry in one go; on
    loopback the answer is already in the socket, inside the timeout by its kernel stamp.

    Up to three tries: under load the kernel may deliver a loopback reply a moment after the send
    returns. Without the drain before the expiry every try loses the second reply."""
    outcomes = []
    for _ in range(3):
        rounds = [
            asyncio.create_task(icmp_engine.round(f"127.0.0.{i}", probes=2, probe_spacing=0.05, timeout=0.02))
            for i in range(1, 4)
        ]
        await asyncio.sleep(0)  # the first probes go out
        time.sleep(0.3)  # a busy loop, on purpose: second probes and expiries fall due together
        outcomes.append([(r.sent, r.received) for r in await asyncio.gather(*rounds)])
        if outcomes[-1] == [(2, 2)] * 3:
            break
    assert outcomes[-1] == [(2, 2)] * 3, outcomes


async def test_unresolvable_name_is_a_failed_round(icmp_engine: IcmpEngine) -> None:
    # glibc rejects a space in a host name before asking any DNS server: no traffic leaves.
    result = await icmp_engine.round("no such host.invalid", probes=3, probe_spacing=0.01, timeout=0.5)
    assert (result.sent, result.received, result.reason) == (0, 0, "resolve")
    assert result.loss_ratio == 1.0


async def test_collect_through_the_shared_engine(icmp_engine: IcmpEngine) -> None:
    ctx = CollectContext({"icmp": icmp_engine})
    params = IcmpParams(probes=3, probe_spacing=0.01, timeout=0.5, interval=5)
    good, unresolvable = await asyncio.gather(
        collect(Target("lo", "localhost"), params, ctx),
        collect(Target("nowhere", "no such host.invalid"), params, ctx),
    )
    assert good.success and good.value("icmp_packets_received") == 3
    assert 0 < (good.value("icmp_rtt_avg_seconds") or 0) < 0.010
    assert (unresolvable.success, unresolvable.reason) == (False, "resolve")


async def test_unprivileged_ping_sockets_work_when_the_group_is_allowed(ping_group_range: Path) -> None:
    ping_group_range.write_text("0 2147483647")
    async with await IcmpEngine.open(privileged=False) as engine:
        assert engine.privileged is False
        results = await asyncio.gather(
            *(engine.round(a, probes=3, probe_spacing=0.01, timeout=0.5) for a in ADDRESSES)
        )
    assert [(r.address, r.received) for r in results] == [(a, 3) for a in ADDRESSES]
    assert all(0 < rtt < 0.010 for r in results for rtt in r.rtts)


async def test_unprivileged_without_the_sysctl_says_how_to_fix(ping_group_range: Path) -> None:
    ping_group_range.write_text("1 0")
    with pytest.raises(IcmpPermissionError) as raised:
        await IcmpEngine.open(privileged=False)
    message = str(raised.value)
    assert 'sysctl -w net.ipv4.ping_group_range="0 2147483647"' in message
    assert "setcap cap_net_raw+ep" in message
