"""A real net-snmp agent (Debian's snmpd) on a free loopback UDP port, for the length of a test session.

Services never start by themselves on these machines: this is how a test gets an SNMP agent. The agent
runs in the foreground from a temporary config (``-C`` ignores the system one) and is stopped by PID.
"""

from __future__ import annotations

import os
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


def _config(community: str, sys_name: str, users: Sequence[V3User]) -> str:
    lines = [
        f"rocommunity {community} 127.0.0.1",
        f"sysName {sys_name}",
        f"sysLocation {SYS_LOCATION}",
        "sysServices 72",
        # Load averages come from the ucd-snmp module; without a `load` line laTable still answers.
        "load 12 10 5",
    ]
    for user in users:
        lines += [user.create_line(), f"rouser {user.name} {user.level}"]
    return "\n".join(lines) + "\n"


def _answers(port: int, community: str) -> bool:
    probe = subprocess.run(
        [
            "snmpget",
            "-v2c",
            "-c",
            community,
            "-t",
            "0.3",
            "-r",
            "0",
            "-On",
            f"127.0.0.1:{port}",
            "1.3.6.1.2.1.1.3.0",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MIBS": ":"},
        check=False,
    )
    return probe.returncode == 0 and "Timeticks" in probe.stdout


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
) -> Iterator[SnmpAgent]:
    """Start snmpd on 127.0.0.1 at a free UDP port, wait until it answers, stop it by PID on exit."""
    if not Path(SNMPD).exists() or shutil.which("snmpget") is None:
        import pytest

        pytest.skip(f"{SNMPD} or snmpget not installed (Debian packages snmpd, snmp)")
    workdir = Path(tempfile.mkdtemp(prefix="netwatch-snmpd-"))
    try:
        conf = workdir / "snmpd.conf"
        conf.write_text(_config(community, sys_name, users))
        persistent = workdir / "persistent"
        persistent.mkdir()
        env = {**os.environ, "MIBS": ":", "SNMP_PERSISTENT_DIR": str(persistent)}
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = free_udp_port()
            log = workdir / f"snmpd-{port}.log"
            proc = subprocess.Popen(
                [SNMPD, "-f", "-C", "-c", str(conf), "-p", str(workdir / "snmpd.pid"), "-Lf", str(log),
                 "-M", "/dev/null", f"udp:127.0.0.1:{port}"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                give_up = time.monotonic() + ready_timeout
                while proc.poll() is None and time.monotonic() < give_up and not _answers(port, community):
                    time.sleep(0.05)
                if proc.poll() is None and _answers(port, community):
                    agent = SnmpAgent(
                        "127.0.0.1", port, community, sys_name, {u.name: u for u in users}, proc.pid, log
                    )
                    yield agent
                    return
            finally:
                _stop(proc)
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        raise RuntimeError(f"snmpd did not start answering:\n{text}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
