"""`netwatch probe` against a real net-snmp agent: the table an operator reads, and errors that name
the cause but never the secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.snmpd import SnmpAgent

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the ICMP half of probe needs root (CI runs as root)"
)


def probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netwatch", "probe", *args, "--rate-seconds", "1", "--timeout", "0.5"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})},
        check=False,
        timeout=60,
    )


def test_v2c_shows_system_info_and_interfaces_with_rates(snmpd: SnmpAgent) -> None:
    done = probe(f"127.0.0.1:{snmpd.port}", "--snmp-community", snmpd.community)
    assert done.returncode == 0, done.stderr
    assert f"sysName: {snmpd.sys_name}" in done.stdout
    lo = next(line for line in done.stdout.splitlines() if " lo " in line)
    assert " up " in lo and "bit/s" in lo
    assert "ICMP round to 127.0.0.1" in done.stdout


def test_v3_with_keys_from_the_environment(snmpd: SnmpAgent) -> None:
    user = next(u for u in snmpd.users.values() if u.priv_protocol == "AES" and u.auth_protocol == "SHA")
    env = {"NETWATCH_SNMP_AUTH_KEY": user.auth_key, "NETWATCH_SNMP_PRIV_KEY": user.priv_key or ""}
    done = probe(
        f"127.0.0.1:{snmpd.port}",
        "--snmp-user",
        user.name,
        "--snmp-auth-protocol",
        "SHA",
        "--snmp-priv-protocol",
        "AES",
        env=env,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"sysName: {snmpd.sys_name}" in done.stdout
    assert user.auth_key not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("case", "expected"),
    [("wrong-key", "wrong digest"), ("unknown-user", "unknown user"), ("wrong-community", "wrong community")],
)
def test_errors_name_the_cause_never_the_secret(snmpd: SnmpAgent, case: str, expected: str) -> None:
    secret = "Zq-distinctive-secret-77"
    user = next(u for u in snmpd.users.values() if u.priv_protocol == "AES" and u.auth_protocol == "SHA")
    if case == "wrong-community":
        args = ["--snmp-community", secret]
        env = {}
    else:
        name = user.name if case == "wrong-key" else "nobody-here"
        args = ["--snmp-user", name, "--snmp-auth-protocol", "SHA", "--snmp-priv-protocol", "AES"]
        env = {"NETWATCH_SNMP_AUTH_KEY": secret, "NETWATCH_SNMP_PRIV_KEY": secret}
    done = probe(f"127.0.0.1:{snmpd.port}", *args, env=env)
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1
    assert expected in output
    assert secret not in output
