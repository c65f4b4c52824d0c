"""The ICMP engine on its own thread: real sockets against loopback (127.0.0.0/8 only)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from collectors.base import CollectContext, Target
from collectors.icmp import IcmpParams, IcmpPermissionError, collect
from collectors.icmp_thread import IcmpThread

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (raw sockets, sysctl); CI runs as root")

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


def icmp_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "netwatch-icmp"]


async def test_rounds_from_the_polling_loop_run_on_the_engine_thread() -> None:
    before = len(icmp_threads())
    async with await IcmpThread.open() as engine:
        assert engine.privileged is True
        assert len(icmp_threads()) == before + 1
        addresses = [f"127.3.{i // 100}.{i % 100 + 1}" for i in range(200)]
        results = await asyncio.gather(
            *(engine.round(a, probes=3, probe_spacing=0.01, timeout=1.0) for a in addresses)
        )
        assert [r.address for r in results] == addresses
        assert all(r.received == r.sent == 3 for r in results), [r for r in results if r.received != 3][:3]
        assert all(0 < rtt < 0.010 for r in results for rtt in r.rtts)
        # The collector takes it as it takes the engine itself.
        params = IcmpParams(probes=2, probe_spacing=0.01, timeout=0.5, interval=5)
        polled = await collect(Target("lo", "127.0.0.1"), params, CollectContext({"icmp": engine}))
        assert polled.success and polled.value("icmp_packets_received") == 2
    assert len(icmp_threads()) == before, "closing must stop the engine's thread"


async def test_a_poll_cut_by_its_deadline_cancels_its_round() -> None:
    async with await IcmpThread.open() as engine:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):  # the pipeline's deadline, shorter than the round
                await engine.round("127.0.0.1", probes=5, probe_spacing=1.0, timeout=1.0)
        # The engine is still serving: the cancelled round left nothing behind that blocks it.
        again = await engine.round("127.0.0.1", probes=2, probe_spacing=0.01, timeout=0.5)
        assert again.received == 2


async def test_an_engine_that_cannot_open_leaves_no_thread(tmp_path: Path) -> None:
    saved = PING_GROUP_RANGE.read_text()
    before = len(icmp_threads())
    PING_GROUP_RANGE.write_text("1 0")
    try:
        with pytest.raises(IcmpPermissionError):
            await IcmpThread.open(privileged=False)
    finally:
        PING_GROUP_RANGE.write_text(saved)
    assert len(icmp_threads()) == before
