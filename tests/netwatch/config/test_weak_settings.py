"""Weak security settings are warned about, located to the line, never refused and never quoted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netwatch.config import load_inventory
from netwatch.config.warnings import weak_settings

REPO = Path(__file__).resolve().parents[3]
INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
site_kinds: {district: {}}
sites:
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district, links: [{device: tk}]}
devices:
  - {name: tk, site: TK, address: 198.51.100.1}
credentials:
  factory:
    version: 2c
    community: ${NW_TEST_COMMUNITY}
  strong:
    version: 2c
    community: Kx9-long-random-7f1a
  old-switch:
    version: 3
    username: ops
    security_level: authPriv
    auth_protocol: MD5
    auth_key: md5-auth-key-91
    priv_protocol: DES
    priv_key: des-priv-key-91
  modern:
    version: 3
    username: ops2
    auth_protocol: SHA-256
    auth_key: sha-auth-key-91
    priv_protocol: AES
    priv_key: aes-priv-key-91
  open:
    version: 3
    username: guest
    security_level: noAuthNoPriv
alerting:
  channels:
    relay:
      type: email
      host: 127.0.0.1
      port: 25
      starttls: false
      from: netwatch <noc@example.org>
      to: [noc@example.org]
    tls-relay:
      type: email
      host: 127.0.0.1
      from: netwatch <noc@example.org>
      to: [noc@example.org]
    chat:
      type: webhook
      url: http://127.0.0.1:9/hook
      bearer_token: bearer-token-91
"""
EXPECTED = [
    (10, "credentials.factory.community", "a factory-default community (public/private)"),
    (18, "credentials.old-switch.auth_protocol", "MD5 is broken as a hash"),
    (20, "credentials.old-switch.priv_protocol", "DES (56-bit) encryption can be brute-forced"),
    (32, "credentials.open.security_level", "noAuthNoPriv: requests are neither authenticated nor encrypted"),
    (39, "alerting.channels.relay.starttls", "mail goes to the relay without TLS"),
    (49, "alerting.channels.chat.url", "credentials are sent over plain http"),
]
SECRETS = ("Kx9-long-random-7f1a", "md5-auth-key-91", "des-priv-key-91", "bearer-token-91")


@pytest.fixture
def inventory_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NW_TEST_COMMUNITY", "Public")
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY, encoding="utf-8")
    return path


def test_each_weak_setting_is_located_to_its_line(inventory_file: Path) -> None:
    warnings = weak_settings(load_inventory(inventory_file))
    found = [(w.file, w.line, w.field) for w in warnings]
    assert found == [(str(inventory_file), line, field) for line, field, _ in EXPECTED]
    for warning, (_, _, message) in zip(warnings, EXPECTED, strict=True):
        assert warning.message.startswith(message)
        assert not any(secret in str(warning) for secret in (*SECRETS, "Public"))


def test_a_strong_inventory_has_no_warnings(tmp_path: Path) -> None:
    strong = (
        INVENTORY.split("  factory:")[0] + "  strong:\n    version: 2c\n    community: Kx9-long-random-7f1a\n"
    )
    path = tmp_path / "strong.yaml"
    path.write_text(strong, encoding="utf-8")
    assert weak_settings(load_inventory(path)) == []


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NW_TEST_COMMUNITY": "private"}
    return subprocess.run(
        [sys.executable, "-m", "netwatch", "check", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_check_prints_warnings_on_stderr_and_still_exits_0(inventory_file: Path) -> None:
    done = _check(inventory_file)
    assert done.returncode == 0, done.stderr
    assert "ok — 1 sites, 1 devices" in done.stdout
    lines = done.stderr.strip().splitlines()
    assert [line.split(": ", 3)[:3] for line in lines] == [
        ["warning", f"{inventory_file}:{line}", field] for line, field, _ in EXPECTED
    ]
    assert not any(secret in done.stdout + done.stderr for secret in SECRETS)


def test_errors_still_fail_check_without_warnings_mixed_in(inventory_file: Path) -> None:
    inventory_file.write_text(
        INVENTORY.replace("kind: district, links", "kind: nope, links"), encoding="utf-8"
    )
    done = _check(inventory_file)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{inventory_file}:4: sites[0].kind: unknown site kind 'nope'")
    assert "warning:" not in done.stderr
