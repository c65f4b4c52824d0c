"""A real net-snmp agent (Debian's snmpd) on a free loopback UDP port, for the length of a test session.

Services never start by themselves on these machines: this is how a test gets an SNMP agent. The agent
runs in the foreground from a temporary config (``-C`` ignores the system one) and is stopped by PID.
It can also run inside a test's network namespace (``netns``), listening on the namespace's address.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SNMPD = "/usr/sbin/snmpd"
COMMUNITY = "nw-c0mmunity-9f3e"
SYS_NAME = "netwatch-test-agent"
SYS_LOCATION = "Tam Ky test rack"
# NET-SNMP-AGENT-MIB nsCacheTimeout of the ifTable cache (the index is the cached table's OID, implied);
# ifXTable shares that cache.
IF_TABLE_CACHE_TIMEOUT = "1.3.6.1.4.1.8072.1.5.3.1.2.1.3.6.1.2.1.2.2"


@dataclass(frozen=True)
class V3User:
    """One USM user the agent knows, with net-snmp's protocol keywords."""

    name: str
    auth_protocol: str
    auth_key: str
    priv_protocol: str | None = None
    priv_key: str | None = None

    @property
    def level(self) -> str:
        """``priv`` or ``auth``, as ``rouser`` takes it."""
        return "priv" if self.priv_protocol else "auth"

    def create_line(self) -> str:
        """The ``createUser`` line for snmpd.conf."""
        line = f'createUser {self.name} {self.auth_protocol} "{self.auth_key}"'
        if self.priv_protocol:
            line += f' {self.priv_protocol} "{self.priv_key}"'
        return line


# Keys are distinctive so a test can look for them in messages and logs. SHA-1 with AES-192/256 is where
# Blumenthal and Reeder key extension differ (a SHA-1 key is 20 bytes, shorter than the AES key).
USERS: tuple[V3User, ...] = (
    V3User("nw-sha-aes", "SHA", "authKey-SHA-1a2b", "AES", "privKey-AES-1a2b"),
    V3User("nw-sha256-aes256", "SHA-256", "authKey-S256-3c4d", "AES-256", "privKey-A256-3c4d"),
    V3User("nw-sha512-aes256c", "SHA-512", "authKey-S512-5e6f", "AES-256-C", "privKey-A256C-5e6f"),
    V3User("nw-md5-des", "MD5", "authKey-MD5-7a8b", "DES", "privKey-DES-7a8b"),
    V3User("nw-sha256-auth", "SHA-256", "authKey-S256only-9c0d"),
    V3User("nw-sha-aes256", "SHA", "authKey-SHA-aes256-e1f2", "AES-256", "privKey-SHA-aes256-e1f2"),
    V3User("nw-sha-aes256c", "SHA", "authKey-SHA-aes256-e1f2", "AES-256-C", "privKey-SHA-aes256-e1f2"),
    V3User("nw-sha-aes192", "SHA", "authKey-SHA-aes192-a3b4", "AES-192", "privKey-SHA-aes192-a3b4"),
    V3User("nw-sha-aes192c", "SHA", "authKey-SHA-aes192-a3b4", "AES-192-C", "privKey-SHA-aes192-a3b4"),
)


@dataclass(frozen=True)
class SnmpAgent:
    """A running snmpd: where it listens and what it accepts."""

    address: str
    port: int
    community: str
    sys_name: str
    users: dict[str, V3User]
    pid: int
    log: Path

    @property
    def endpoint(self) -> str:
        """``address:port`` for net-snmp's command-line tools."""
        return f"{self.address}:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU the agent process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(
    community: str, sys_name: str, users: Sequence[V3User], manager: str, cache_writer: str | None
) -> str:
    lines = [
        f"rocommunity {community} {manager}",
        f"sysName {sys_name}",
        f"sysLocation {SYS_LOCATION}",
        "sysServices 72",
        # Load averages come from the ucd-snmp module; without a `load` line laTable still answers.
        "load 12 10 5",
    ]
    if cache_writer is not None:
        # A community that may write nsCacheTimeout and nothing else.
        lines += [
            "view nwcache included 1.3.6.1.4.1.8072.1.5.3.1.2",
            f"rwcommunity {cache_writer} {manager} -V nwcache",
        ]
    for user in users:
        lines += [user.create_line(), f"rouser {user.name} {user.level}"]
    return "\n".join(lines) + "\n"


def _net_snmp(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, "-v2c", "-t", "0.3", "-r", "0", "-On", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MIBS": ":"},
        check=False,
        timeout=10,
    )


def _answers(address: str, port: int, community: str) -> bool:
    probe = _net_snmp("snmpget", "-c", community, f"{address}:{port}", "1.3.6.1.2.1.1.3.0")
    return probe.returncode == 0 and "Timeticks" in probe.stdout


def _make_counters_live(address: str, port: int, cache_writer: str) -> None:
    # net-snmp re-reads the kernel's interface counters at most every 3 s by default; 0 = every request.
    target = f"{address}:{port}"
    done = _net_snmp(
        "snmpset", "-t", "1", "-r", "2", "-c", cache_writer, target, IF_TABLE_CACHE_TIMEOUT, "i", "0"
    )
    if done.returncode != 0:
        raise RuntimeError(f"snmpd refused to turn off its ifTable cache: {done.stderr.strip()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def running_snmpd(
    *,
    community: str = COMMUNITY,
    sys_name: str = SYS_NAME,
    users: Sequence[V3User] = USERS,
    ready_timeout: float = 15.0,
    netns: str | None = None,
    address: str = "127.0.0.1",
    manager: str = "127.0.0.1",
    live_counters: bool = False,
) -> Iterator[SnmpAgent]:
    """Start snmpd on ``address`` at a free UDP port, wait until it answers, stop it by PID on exit.

    ``netns`` runs it inside that network namespace (``address`` must be one of the namespace's);
    ``manager`` is the one source address the community is accepted from. ``live_counters`` turns
    off net-snmp's 3 s ifTable cache, so every poll reads the kernel's interface counters as they are.
    """
    if not Path(SNMPD).exists() or shutil.which("snmpget") is None:
        import pytest

        pytest.skip(f"{SNMPD} or snmpget not installed (Debian packages snmpd, snmp)")
    workdir = Path(tempfile.mkdtemp(prefix="netwatch-snmpd-"))
    try:
        conf = workdir / "snmpd.conf"
        cache_writer = secrets.token_hex(8) if live_counters else None
        conf.write_text(_config(community, sys_name, users, manager, cache_writer))
        in_netns = ["ip", "netns", "exec", netns] if netns else []  # ip execs snmpd: the PID stays snmpd's
        persistent = workdir / "persistent"
        persistent.mkdir()
        env = {**os.environ, "MIBS": ":", "SNMP_PERSISTENT_DIR": str(persistent)}
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = free_udp_port()
            log = workdir / f"snmpd-{port}.log"
            proc = subprocess.Popen(
                [*in_netns, SNMPD, "-f", "-C", "-c", str(conf), "-p", str(workdir / "snmpd.pid"),
                 "-Lf", str(log), "-M", "/dev/null", f"udp:{address}:{port}"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                give_up = time.monotonic() + ready_timeout
                while (
                    proc.poll() is None
                    and time.monotonic() < give_up
                    and not _answers(address, port, community)
                ):
                    time.sleep(0.05)
                if proc.poll() is None and _answers(address, port, community):
                    if cache_writer is not None:
                        _make_counters_live(address, port, cache_writer)
                    agent = SnmpAgent(
                        address, port, community, sys_name, {u.name: u for u in users}, proc.pid, log
                    )
                    yield agent
                    return
            finally:
                _stop(proc)
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        raise RuntimeError(f"snmpd did not start answering:\n{text}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
