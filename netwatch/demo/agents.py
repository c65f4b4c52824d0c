"""Simulated SNMP agents for ``netwatch demo``: one snmpsim process answering for every SNMP device.

snmpsim listens on each SNMP device's own loopback address (an endpoint per address, all on one high
port, 1161 when free), so a device is polled at the same address it is pinged at, as on a real
network, and nothing competes with a system snmpd on port 161. snmpsim tells agents apart by
community (a data file per community), so each demo device has its own community and credential.
Data and index files live in the demo's temporary directory, deleted on exit.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from collectors.snmp.ber import BerError, decode_response, encode_get
from netwatch.demo import children

DEFAULT_PORT = 1161
READY_SECONDS = 60.0
INSTALL_HINT = "pip install 'netwatch[demo]' (from a checkout: .venv/bin/pip install '.[demo]')"
_SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)


def responder() -> Path | None:
    """snmpsim's agent program, or None when snmpsim is not installed."""
    beside = Path(sys.executable).with_name("snmpsim-command-responder")
    if beside.exists():
        return beside
    found = shutil.which("snmpsim-command-responder")
    return Path(found) if found else None


def _udp_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def choose_port(addresses: Sequence[str], preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` when it is free on every address, else a port free on all of them."""
    if all(_udp_free(a, preferred) for a in addresses):
        return preferred
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((addresses[0], 0))
            port = int(sock.getsockname()[1])
        if all(_udp_free(a, port) for a in addresses[1:]):
            return port
    raise OSError("no UDP port is free on every demo address")


def answers(address: str, port: int, community: str, timeout: float = 0.5) -> bool:
    """Whether an agent answers a GET of sysUpTime there."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(encode_get(1, community.encode(), [_SYS_UPTIME]), (address, port))
            data, _ = sock.recvfrom(65535)
            return decode_response(data).request_id == 1
        except (OSError, BerError):
            return False


@dataclass
class SnmpAgents(children.Child):
    """The running snmpsim: its process, log and port."""

    port: int


def start_agents(
    workdir: Path, recordings: Mapping[str, str], addresses: Sequence[str], port: int
) -> SnmpAgents:
    """Write ``recordings`` (community → snmprec text) and start snmpsim on ``address:port`` each.

    Raises:
        RuntimeError: snmpsim exited or did not answer within :data:`READY_SECONDS`.
    """
    program = responder()
    if program is None:
        raise RuntimeError(f"snmpsim is not installed: {INSTALL_HINT}")
    data, cache = workdir / "snmpsim-data", workdir / "snmpsim-cache"
    data.mkdir()
    cache.mkdir()
    for community, text in recordings.items():
        (data / f"{community}.snmprec").write_text(text, encoding="utf-8")
    log = workdir / "snmpsim.log"
    argv = [
        str(program),
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        "--log-level=error",
        *(f"--agent-udpv4-endpoint={a}:{port}" for a in addresses),
    ]
    proc = children.spawn(argv, log, env={"SNMPSIM_ALLOW_ROOT": "true"})
    agents = SnmpAgents(proc, log, port)
    probe = next(iter(recordings))
    give_up = time.monotonic() + READY_SECONDS
    while not answers(addresses[0], port, probe):
        if proc.poll() is not None or time.monotonic() > give_up:
            agents.stop()
            raise RuntimeError(f"snmpsim did not start answering:\n{children.tail(log)}")
        time.sleep(0.2)
    return agents
