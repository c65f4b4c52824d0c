"""The shipped systemd unit: ``systemd-analyze verify`` accepts it, and it keeps the hardening an
operator relies on (its own user, CAP_NET_RAW and no other capability, a read-only system, SIGHUP
on reload).

systemd-analyze verify checks that ExecStart's binary exists, and /opt/netwatch does not exist on a
test machine: the test verifies a copy whose ExecStart names this venv's ``netwatch`` and asserts
the copy differs from the shipped unit in that path only. systemd need not be PID 1 for this.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "netwatch.service"
SYSUSERS = REPO / "deploy" / "systemd" / "netwatch.sysusers"
SHIPPED_BINARY = "/opt/netwatch/bin/netwatch"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# Exposure as `systemd-analyze security` scores it (0 = locked down, 10 = unprotected). A daemon
# that must send raw ICMP to the whole WAN cannot have PrivateNetwork or an IP allow list; 2.0 is
# the highest score that still reads "OK".
MAX_EXPOSURE = 2.0

needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")


def unit_settings(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of the [Service] section, each key's values in order."""
    settings: dict[str, list[str]] = defaultdict(list)
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings[key.strip()].append(value.strip())
    return settings


def local_copy(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart pointed at the netwatch of the venv running the tests."""
    binary = Path(sys.executable).parent / "netwatch"
    assert binary.exists(), f"{binary} missing: install the package into the test venv"
    copy = tmp_path / "netwatch.service"
    copy.write_text(UNIT.read_text(encoding="utf-8").replace(SHIPPED_BINARY, str(binary)), encoding="utf-8")
    shipped, local = (
        UNIT.read_text(encoding="utf-8").splitlines(),
        copy.read_text(encoding="utf-8").splitlines(),
    )
    changed = [(a, b) for a, b in zip(shipped, local, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith(f"ExecStart={SHIPPED_BINARY} ")
    assert changed[0][1] == changed[0][0].replace(SHIPPED_BINARY, str(binary))
    return copy


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """No unknown keys, bad values or missing binary: the unit loads as written."""
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(local_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


@needs_analyze
def test_security_exposure_is_low(tmp_path: Path) -> None:
    """``systemd-analyze security --offline`` scores the unit at most MAX_EXPOSURE."""
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", "--no-pager", str(local_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for netwatch\.service: ([\d.]+)", result.stdout)
    if match is None and "--offline" in result.stderr:
        pytest.skip("this systemd-analyze cannot score unit files offline")
    assert match is not None, result.stdout + result.stderr
    print(f"systemd-analyze security exposure: {match.group(1)}")
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_runs_as_its_own_user_with_cap_net_raw_only() -> None:
    """Not root, and raw ICMP is the one privilege: ambient and bounding set both CAP_NET_RAW."""
    settings = unit_settings(UNIT.read_text(encoding="utf-8"))
    assert settings["User"] == ["netwatch"] and settings["Group"] == ["netwatch"]
    assert settings.get("DynamicUser", ["no"]) == ["no"]
    assert settings["AmbientCapabilities"] == ["CAP_NET_RAW"]
    assert settings["CapabilityBoundingSet"] == ["CAP_NET_RAW"]
    assert settings["NoNewPrivileges"] == ["yes"]
    sysusers = [line.split() for line in SYSUSERS.read_text(encoding="utf-8").splitlines() if line[:1] == "u"]
    assert [fields[:2] for fields in sysusers] == [["u", "netwatch"]]


def test_filesystem_and_kernel_are_protected() -> None:
    """Read-only system, no home directories, private /tmp and /dev, no kernel tuning, and only
    the socket families polling and logging need."""
    settings = unit_settings(UNIT.read_text(encoding="utf-8"))
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "StateDirectory": "netwatch",
    }
    assert {key: settings[key][-1] for key in expected} == expected
    assert settings["SystemCallFilter"][0] == "@system-service"
    # A private network namespace would hide the WAN the daemon exists to watch.
    assert settings.get("PrivateNetwork", ["no"]) == ["no"]


def test_reload_restart_config_and_database_paths() -> None:
    """SIGHUP reloads, a crash restarts, the inventory and secrets live in /etc/netwatch and the
    SQLite database in the unit's StateDirectory."""
    settings = unit_settings(UNIT.read_text(encoding="utf-8"))
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["Restart"] == ["on-failure"]
    assert settings["EnvironmentFile"] == ["-/etc/netwatch/netwatch.env"]
    (exec_start,) = settings["ExecStart"]
    args = exec_start.split()
    assert args[:2] == [SHIPPED_BINARY, "run"]
    assert args[args.index("-c") + 1] == "/etc/netwatch/inventory.yaml"
    assert args[args.index("--db") + 1] == "sqlite:////var/lib/netwatch/netwatch.db"
    assert args[args.index("--listen") + 1].startswith("127.0.0.1:")


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers not installed")
def test_sysusers_creates_a_locked_system_user(tmp_path: Path) -> None:
    """systemd-sysusers, run on an empty root, creates the unit's user and group with no login shell."""
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (entry,) = (tmp_path / "etc" / "passwd").read_text(encoding="utf-8").splitlines()
    name, _, uid, _, _, home, shell = entry.split(":")
    assert (name, home, shell) == ("netwatch", "/var/lib/netwatch", "/usr/sbin/nologin")
    assert 0 < int(uid) < 1000, "a system user"
    assert (tmp_path / "etc" / "group").read_text(encoding="utf-8").startswith("netwatch:x:")
