"""A small province network for tests: the host is the hub, a district namespace behind one veth
pair, and a communes namespace behind the district over a second pair.

::

    host (hub) ──veth── district ns (forwarding on) ──veth── communes ns (one address per commune)

The host routes the commune subnet via the district, so a ping from the host to a commune crosses
the district link, and taking that link down cuts the district and its communes off together.
Every address is inside 198.18.0.0/15, whose safety ``unreachable`` route ``veth_namespace`` keeps
while the network exists; the commune subnet gets its own ``unreachable`` route too, so it stays
unreachable (never off the machine) while the district link is down. All is removed on exit.
"""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from tests.support.netns import SAFETY_METRIC, TEST_RANGE, NetnsUnavailable, VethNamespace, veth_namespace

COMMUNE_PREFIX = 29


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=10)


def _free_commune_subnet() -> ipaddress.IPv4Network:
    """A /29 of the test range that no host address or route uses yet."""
    rng = random.SystemRandom()
    size = 2 ** (32 - COMMUNE_PREFIX)
    for _ in range(100):
        index = rng.randrange(1, TEST_RANGE.num_addresses // size - 1)
        subnet = ipaddress.IPv4Network((int(TEST_RANGE.network_address) + size * index, COMMUNE_PREFIX))
        used = _run("ip", "-o", "-4", "addr", "show", "to", str(subnet)).stdout.strip()
        routed = _run("ip", "-4", "route", "show", "root", str(subnet)).stdout.strip()
        if not used and not routed:
            return subnet
    raise NetnsUnavailable("no free /29 in 198.18.0.0/15")


@dataclass(frozen=True, slots=True)
class Province:
    """The hub (this host), a district at ``district_address`` and communes at ``commune_addresses``."""

    district: VethNamespace
    communes_ns: str
    commune_subnet: str
    commune_gateway: str
    commune_addresses: tuple[str, ...]

    @property
    def district_address(self) -> str:
        """The district router's address, as the hub polls it."""
        return self.district.far_address

    def route_communes(self, action: str = "replace") -> None:
        """Route the commune subnet from the hub via the district router (ip route ACTION)."""
        _run(
            "ip",
            "route",
            action,
            self.commune_subnet,
            "via",
            self.district.far_address,
            "dev",
            self.district.host_link,
        )

    def link_down(self, *, silent: bool = True) -> None:
        """Cut the district link: its far end (silence, timeouts) or the hub's end (no route at once)."""
        if silent:
            self.district.far_down()
        else:
            self.district.host_down()

    def link_up(self) -> None:
        """Restore the district link (both ends) and the hub's route to the communes."""
        self.district.up()
        self.district.wait_carrier()
        # Downing the hub's end flushes the route via it; put it back (idempotent otherwise).
        self.route_communes("replace")

    def add_loss(self, percent: int) -> None:
        """Drop that share of echo requests to the district router, at random (in its namespace)."""
        self.district.add_loss(percent)

    def clear_loss(self) -> None:
        """Remove the district's loss rule."""
        self.district.clear_loss()


def _in_ns(ns: str, *args: str) -> None:
    _run("ip", "netns", "exec", ns, *args)


def _build(province: Province, d_link: str, c_link: str) -> None:
    district, name, gateway = province.district, province.communes_ns, province.commune_gateway
    _run("ip", "-n", district.name, "link", "add", d_link, "type", "veth", "peer", "name", c_link)
    _run("ip", "-n", district.name, "link", "set", c_link, "netns", name)
    _run("ip", "-n", district.name, "addr", "add", f"{gateway}/{COMMUNE_PREFIX}", "dev", d_link)
    _run("ip", "-n", district.name, "link", "set", d_link, "up")
    _in_ns(district.name, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    for address in province.commune_addresses:
        _run("ip", "-n", name, "addr", "add", f"{address}/{COMMUNE_PREFIX}", "dev", c_link)
    _run("ip", "-n", name, "link", "set", c_link, "up")
    _run("ip", "-n", name, "link", "set", "lo", "up")
    _run("ip", "-n", name, "route", "add", "default", "via", gateway)
    province.route_communes("add")


@contextmanager
def province_network(communes: int = 2) -> Iterator[Province]:
    """Build the hub → district → communes network; tear it all down on exit.

    Raises NetnsUnavailable when the machine refuses namespaces or veth pairs.
    """
    if not 1 <= communes <= 5:
        raise ValueError("a /29 holds the district gateway and up to five communes")
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    with veth_namespace() as district:
        token = os.urandom(3).hex()
        name = f"netwatch-test-{token}c"
        d_link, c_link = f"nwd{token}", f"nwc{token}"
        subnet = _free_commune_subnet()
        hosts = [str(a) for a in subnet.hosts()]
        gateway, addresses = hosts[0], tuple(hosts[1 : 1 + communes])
        safety = ["ip", "route", "add", "unreachable", str(subnet), "metric", str(SAFETY_METRIC)]
        province = Province(district, name, str(subnet), gateway, addresses)
        _run("ip", "netns", "add", name)
        try:
            try:
                _run(*safety)
                _build(province, d_link, c_link)
            except subprocess.CalledProcessError as exc:
                raise NetnsUnavailable(f"{' '.join(exc.cmd)}: {exc.stderr.strip()}") from exc
            yield province
        finally:
            with suppress(subprocess.SubprocessError):
                _run("ip", "route", "del", str(subnet), "via", district.far_address, check=False)
                _run(
                    "ip",
                    "route",
                    "del",
                    "unreachable",
                    str(subnet),
                    "metric",
                    str(SAFETY_METRIC),
                    check=False,
                )
                _run("ip", "netns", "del", name, check=False)
