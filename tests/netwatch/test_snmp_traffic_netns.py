"""Traffic over a veth shows up in netwatch as the bytes and the rate the kernel counted.

snmpd runs inside a network namespace, behind a veth pair. The test sends a known, paced stream of UDP
datagrams from the host into the namespace while netwatch polls the agent every 2 s, then compares
netwatch's in-octets total and its in_bps rates with the namespace-side interface's own counters, read
by the kernel at the same poll boundaries. Datagrams go to a port nobody listens on: the interface
counts them on receipt all the same.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from socket import AF_INET, SOCK_DGRAM, socket
from typing import Any

import pytest
from sqlalchemy import Row, select

from collectors.base import CollectContext, Target
from collectors.snmp import SnmpCredentials
from collectors.snmp.collector import SnmpParams, collect, open_snmp_resources
from netwatch.storage.engine import create_engine_for
from netwatch.storage.models import Interface, InterfaceSample
from tests.support.netns import NetnsUnavailable, VethNamespace, veth_namespace
from tests.support.processes import free_port, netwatch_process, samples, scrape
from tests.support.snmpd import SnmpAgent, running_snmpd

pytestmark = [pytest.mark.netns, pytest.mark.slow]

INTERVAL = 2.0
PAYLOAD = 1400
WIRE_OVERHEAD = 14 + 20 + 8  # Ethernet, IPv4 and UDP headers: what the veth counts besides the payload
RATE = 3_000  # datagrams per second: ~4.3 MB/s, ~34 Mbit/s on the wire
SEND_SECONDS = 7.0  # at least two whole poll intervals inside the transfer
DISCARD_PORT = 9
TOLERANCE = 0.05
DEVICE = "ns-agent"

INVENTORY = """\
province: {{code: QNM, name: "Quảng Nam"}}
credentials:
  lab: {{version: "2c", community: "${{NW_TEST_COMMUNITY}}"}}
site_kinds:
  datacenter: {{}}
sites:
  - {{code: LAB, name: "Phòng thử nghiệm", kind: datacenter}}
devices:
  - name: {device}
    site: LAB
    address: {address}
    port: {port}
    role: server
    collectors:
      snmp: {{credential: lab, interval: {interval}, timeout: 1, retries: 1, profiles: [system, if-mib]}}
"""


@dataclass(frozen=True)
class Lab:
    """The namespace and the agent inside it."""

    ns: VethNamespace
    agent: SnmpAgent


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A namespace without IPv6 behind a veth, snmpd inside it reading live interface counters."""
    with ExitStack() as stack:
        try:
            ns = stack.enter_context(veth_namespace())
        except NetnsUnavailable as exc:
            pytest.skip(f"network namespaces refused here: {exc}")
        ns.disable_ipv6()
        agent = stack.enter_context(
            running_snmpd(
                netns=ns.name,
                address=ns.far_address,
                manager=ns.host_address,
                users=(),
                live_counters=True,
            )
        )
        yield Lab(ns, agent)


class RxSampler:
    """The namespace interface's received bytes every few ms, from /proc/PID/net/dev of a process in it."""

    def __init__(self, pid: int, ifname: str, period: float = 0.005) -> None:
        self._path = Path(f"/proc/{pid}/net/dev")
        self._ifname = ifname
        self._period = period
        self._stop = threading.Event()
        self.times: list[float] = []
        self.rx: list[int] = []
        self._thread = threading.Thread(target=self._run, name="rx-sampler", daemon=True)

    def __enter__(self) -> RxSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        for line in self._path.read_text().splitlines():
            name, _, fields = line.partition(":")
            if name.strip() == self._ifname:
                self.times.append(time.time())
                self.rx.append(int(fields.split()[0]))
                return
        raise LookupError(f"{self._ifname} not in {self._path}")

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._sample()

    def at(self, when: float) -> float:
        """Bytes received by wall time ``when``, interpolated between the two nearest samples."""
        i = bisect_left(self.times, when)
        assert 0 < i < len(self.times), "asked outside the sampled window"
        t0, t1, r0, r1 = self.times[i - 1], self.times[i], self.rx[i - 1], self.rx[i]
        return r0 + (r1 - r0) * (when - t0) / (t1 - t0)


def link_bytes(ns: VethNamespace) -> tuple[int, int]:
    """(rx, tx) bytes of the namespace side of the veth, as ``ip -s link`` reports them."""
    out = subprocess.run(
        ["ip", "-n", ns.name, "-s", "-j", "link", "show", "dev", ns.far_link],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])


def send_paced(address: str, count: int, rate: float, within: float) -> int:
    """Send ``count`` datagrams at ``rate`` per second (bounded by ``within`` s); how many were sent."""
    payload = bytes(PAYLOAD)
    sent = 0
    with socket(AF_INET, SOCK_DGRAM) as sock:
        start = time.monotonic()
        while sent < count and (now := time.monotonic()) - start < within:
            # Catch up with the schedule, so a late wake-up does not lower the average rate.
            due = min(count, int((now - start) * rate) + 1)
            while sent < due:
                sock.sendto(payload, (address, DISCARD_PORT))
                sent += 1
            time.sleep(0.002)
    return sent


def polls_run(port: int) -> float:
    """netwatch's count of polls run so far."""
    return sum(samples(scrape(port), "netwatch_polls_total"))


def wait_polls(port: int, more_than: float, within: float) -> None:
    """Wait (bounded) until netwatch has run more than ``more_than`` polls."""
    deadline = time.monotonic() + within
    while polls_run(port) <= more_than:
        assert time.monotonic() < deadline, f"no poll within {within:g} s"
        time.sleep(0.05)


def octets(port: int, ifname: str) -> tuple[float, float]:
    """netwatch's (in, out) octet totals of ``ifname``."""
    metrics = scrape(port)
    (got_in,) = samples(metrics, "netwatch_if_in_octets_total", device=DEVICE, ifname=ifname)
    (got_out,) = samples(metrics, "netwatch_if_out_octets_total", device=DEVICE, ifname=ifname)
    return got_in, got_out


def error(got: float, want: float) -> float:
    """Relative error of ``got`` against ``want``."""
    return abs(got - want) / want


def test_veth_traffic_shows_as_the_bytes_and_rate_the_kernel_counted(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, agent, ifname = lab.ns, lab.agent, lab.ns.far_link
    config = tmp_path / "inventory.yaml"
    config.write_text(
        INVENTORY.format(device=DEVICE, address=ns.far_address, port=agent.port, interval=INTERVAL),
        encoding="utf-8",
    )
    db_url = f"sqlite:///{tmp_path / 'nw.db'}"
    port = free_port()
    monkeypatch.setenv("NW_TEST_COMMUNITY", agent.community)
    count = int(RATE * SEND_SECONDS)
    args = ("run", "-c", str(config), "--db", db_url, "--listen", f"127.0.0.1:{port}")
    with netwatch_process(*args, port=port, cwd=tmp_path), RxSampler(agent.pid, ifname) as kernel:
        deadline = time.monotonic() + 10 * INTERVAL
        while not samples(scrape(port), "netwatch_if_in_bps", device=DEVICE, ifname=ifname):
            assert time.monotonic() < deadline, "netwatch never reported a rate for the veth"
            time.sleep(0.1)
        # Start right after a poll, so the poll before the transfer is the one just seen.
        wait_polls(port, polls_run(port), within=3 * INTERVAL)
        in_before, out_before = octets(port, ifname)
        rx_before, tx_before = link_bytes(ns)
        sending_from = time.time()
        sent = send_paced(ns.far_address, count, RATE, within=3 * SEND_SECONDS)
        sending_until = time.time()
        # Two more polls: the first may have read its counters before the last datagram arrived.
        wait_polls(port, polls_run(port) + 1, within=4 * INTERVAL)
        in_after, out_after = octets(port, ifname)
        rx_after, tx_after = link_bytes(ns)
    rows = interface_rows(db_url, ifname)

    wire = sent * (PAYLOAD + WIRE_OVERHEAD)
    kernel_in = rx_after - rx_before
    netwatch_in = in_after - in_before
    report = (
        f"sent {sent} datagrams = {wire} bytes on the wire; kernel rx {kernel_in}, tx {tx_after - tx_before}; "
        f"netwatch in {netwatch_in:.0f} ({(netwatch_in - kernel_in) / kernel_in:+.3%}), "
        f"out {out_after - out_before:.0f}"
    )
    print(report)
    assert sent == count
    assert error(kernel_in, wire) < TOLERANCE, f"the datagrams did not all cross the veth: {report}"
    assert error(netwatch_in, kernel_in) < TOLERANCE, report
    # Host → namespace is "in" on the namespace side; what goes out is SNMP answers and a few ICMP errors.
    assert out_after - out_before < 0.01 * netwatch_in, report

    # The rows of the polls from the one just before the transfer to the last one scraped.
    first = next(i for i, r in enumerate(rows) if r.in_octets_total == in_before)
    last = next(i for i, r in enumerate(rows) if r.in_octets_total == in_after)
    window = rows[first : last + 1]
    assert len(window) >= 5, f"expected polls every {INTERVAL:g} s through the transfer, got {window}"
    inside = 0
    integrated = 0.0
    for before, poll in pairwise(window):
        start, end = before.started_at.timestamp(), poll.started_at.timestamp()
        assert poll.in_bps is not None and poll.out_bps is not None, f"no rate at {poll.started_at}"
        integrated += poll.in_bps / 8 * (end - start)
        if sending_from <= start and end <= sending_until:
            # A poll interval wholly inside the transfer: the rate the kernel saw over the same interval.
            want = 8 * (kernel.at(end) - kernel.at(start)) / (end - start)
            print(
                f"in_bps {poll.in_bps:.0f} over {end - start:.3f} s, kernel {want:.0f}: {error(poll.in_bps, want):.3%}"
            )
            assert error(poll.in_bps, want) < TOLERANCE, (
                f"in_bps {poll.in_bps:.0f} over {start:.3f}..{end:.3f}, kernel says {want:.0f}"
            )
            assert poll.out_bps < 0.01 * poll.in_bps
            inside += 1
    assert inside >= 2, f"fewer than two polls inside the {SEND_SECONDS:g} s transfer"
    print(f"rates integrate to {integrated:.0f} bytes: {(integrated - kernel_in) / kernel_in:+.3%}")
    # The rates, times their intervals, add up to the bytes (bits per second, not bytes).
    assert error(integrated, kernel_in) < TOLERANCE, f"rates integrate to {integrated:.0f} bytes; {report}"


def interface_rows(db_url: str, ifname: str) -> list[Row[Any]]:
    """Every interface_samples row of ``ifname`` on the agent, oldest first."""
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            ifindex = conn.execute(
                select(Interface.ifindex).where(Interface.device == DEVICE, Interface.ifname == ifname)
            ).scalar_one()
            sample = InterfaceSample
            return list(
                conn.execute(
                    select(sample.started_at, sample.in_bps, sample.out_bps, sample.in_octets_total)
                    .where(sample.device == DEVICE, sample.ifindex == ifindex)
                    .order_by(sample.started_at)
                )
            )
    finally:
        engine.dispose()


async def test_veth_octets_come_from_the_64_bit_counters(lab: Lab) -> None:
    """net-snmp serves ifHCInOctets/ifHCOutOctets for a veth; netwatch must read those, not the 32-bit ones."""
    resources = open_snmp_resources({"lab": SnmpCredentials.v2c(lab.agent.community)})
    try:
        params = SnmpParams(credential="lab", port=lab.agent.port, profiles=["if-mib"])
        target = Target(DEVICE, lab.ns.far_address)
        result = await collect(target, params, CollectContext({"snmp": resources}))
    finally:
        await resources.close()
    assert result.success, result.error
    bits = {
        (m.name, dict(m.labels)["ifname"]): result.details["counter_bits"][(m.name, m.labels)]
        for m in result.measurements
        if m.kind == "counter" and m.name.endswith("_octets")
    }
    far = lab.ns.far_link
    assert bits[("if_in_octets", far)] == 64
    assert bits[("if_out_octets", far)] == 64
