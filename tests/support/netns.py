"""A far end of a link for tests: a network namespace behind a veth pair, with knobs for faults.

Addresses come from 198.18.0.0/15 (one random /30 per namespace). While any namespace is alive the
safety route ``unreachable 198.18.0.0/15 metric 4000`` exists, so nothing sent to a downed link
follows the default route off the machine; each /30 also gets its own unreachable route, which
outlives the connected route when the host side goes down. Everything is removed on exit.
"""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

TEST_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
SAFETY_METRIC = 4000
LOSS_TABLE = "netwatch_test_loss"

_lock = threading.Lock()
_safety_users = 0
_safety_added = False


class NetnsUnavailable(Exception):
    """This machine refuses to create network namespaces or veth pairs (not root, or no support)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def _safety_route(action: str, prefix: str) -> list[str]:
    return ["route", action, "unreachable", prefix, "metric", str(SAFETY_METRIC)]


def _acquire_safety_route() -> None:
    global _safety_users, _safety_added
    with _lock:
        if _safety_users == 0:
            shown = _ip("route", "show", "type", "unreachable", str(TEST_RANGE)).stdout
            if f"metric {SAFETY_METRIC}" not in shown:
                _ip(*_safety_route("add", str(TEST_RANGE)))
                _safety_added = True
        _safety_users += 1


def _release_safety_route() -> None:
    global _safety_users, _safety_added
    with _lock:
        _safety_users -= 1
        if _safety_users == 0 and _safety_added:
            _ip(*_safety_route("del", str(TEST_RANGE)), check=False)
            _safety_added = False


def _free_subnet() -> ipaddress.IPv4Network:
    rng = random.SystemRandom()
    for _ in range(100):
        index = rng.randrange(1, TEST_RANGE.num_addresses // 4 - 1)
        subnet = ipaddress.IPv4Network((int(TEST_RANGE.network_address) + 4 * index, 30))
        if not _ip("-o", "-4", "addr", "show", "to", str(subnet)).stdout.strip():
            return subnet
    raise NetnsUnavailable("no free /30 in 198.18.0.0/15")


@dataclass(frozen=True, slots=True)
class VethNamespace:
    """A namespace ``name`` at ``far_address``, reached from the host over ``host_link``."""

    name: str
    host_link: str
    far_link: str
    host_address: str
    far_address: str
    subnet: str

    def far_down(self) -> None:
        """Take the namespace's end down: the host still routes there and hears nothing (timeouts)."""
        _ip("-n", self.name, "link", "set", self.far_link, "down")

    def far_up(self) -> None:
        """Bring the namespace's end back up."""
        _ip("-n", self.name, "link", "set", self.far_link, "up")

    def host_down(self) -> None:
        """Take the host's end down: the connected route goes, sends fail at once with no route."""
        _ip("link", "set", self.host_link, "down")

    def host_up(self) -> None:
        """Bring the host's end back up (its address and connected route come back)."""
        _ip("link", "set", self.host_link, "up")

    def up(self) -> None:
        """Both ends up."""
        self.far_up()
        self.host_up()

    def wait_carrier(self, within: float = 3.0) -> None:
        """Wait (bounded) until the host's end is operationally up again after ``up``."""
        state = Path(f"/sys/class/net/{self.host_link}/operstate")
        deadline = time.monotonic() + within
        while state.read_text().strip() != "up":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.host_link} still {state.read_text().strip()} after {within:g} s")
            time.sleep(0.01)

    def disable_ipv6(self) -> None:
        """Turn IPv6 off inside the namespace (no link-local addresses for snmpd to re-read)."""
        for scope in ("all", "default"):
            command = ["sysctl", "-q", "-w", f"net.ipv6.conf.{scope}.disable_ipv6=1"]
            subprocess.run(
                ["ip", "netns", "exec", self.name, *command],
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            )

    def add_loss(self, percent: int) -> None:
        """Drop that share of echo requests arriving in the namespace, at random (nftables numgen)."""
        rules = (
            f"table ip {LOSS_TABLE} {{\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"    ip daddr {self.far_address} numgen random mod 100 < {percent} drop\n"
            "  }\n"
            "}\n"
        )
        self._nft("-f", "-", stdin=rules)

    def clear_loss(self) -> None:
        """Remove the loss rule."""
        self._nft("delete", "table", "ip", LOSS_TABLE)

    def _nft(self, *args: str, stdin: str | None = None) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, "nft", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )


@contextmanager
def veth_namespace() -> Iterator[VethNamespace]:
    """Create a namespace behind a veth pair on a fresh /30; tear it all down on exit.

    Raises NetnsUnavailable when the machine refuses ``ip netns add`` or veth links.
    """
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    token = os.urandom(3).hex()
    name = f"netwatch-test-{token}"
    try:
        _ip("netns", "add", name)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise NetnsUnavailable(f"ip netns add refused: {getattr(exc, 'stderr', exc)}".strip()) from exc
    host_link, far_link = f"nwh{token}", f"nwf{token}"
    subnet: ipaddress.IPv4Network | None = None
    _acquire_safety_route()
    try:
        subnet = _free_subnet()
        host, far = (str(a) for a in subnet.hosts())
        try:
            _ip("link", "add", host_link, "type", "veth", "peer", "name", far_link, "netns", name)
        except subprocess.CalledProcessError as exc:
            raise NetnsUnavailable(f"veth pair refused: {exc.stderr.strip()}") from exc
        _ip(*_safety_route("add", str(subnet)))
        _ip("addr", "add", f"{host}/30", "dev", host_link)
        _ip("link", "set", host_link, "up")
        _ip("-n", name, "addr", "add", f"{far}/30", "dev", far_link)
        _ip("-n", name, "link", "set", far_link, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield VethNamespace(name, host_link, far_link, host, far, str(subnet))
    finally:
        with suppress(subprocess.SubprocessError):
            _ip("link", "del", host_link, check=False)
            if subnet is not None:
                _ip(*_safety_route("del", str(subnet)), check=False)
            _ip("netns", "del", name, check=False)
        _release_safety_route()
