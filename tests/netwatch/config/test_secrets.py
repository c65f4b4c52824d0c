"""SNMP communities and keys never show in errors or in the resolved inventory's repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.config import check_inventory, load_inventory
from netwatch.config.models import Secret

COMMUNITY = "s3cr3t-community-QNM-7731"
AUTH_KEY = "auth-key-zebra-4419"
PRIV_KEY = "priv-key-walrus-8823"
ENV_KEY = "env-key-heron-5510"

CREDENTIALS = f"""
credentials:
  party:
    version: 2c
    community: {COMMUNITY}
  dc:
    version: "3"
    username: netwatch
    auth_protocol: SHA
    auth_key: {AUTH_KEY}
    priv_protocol: AES
    priv_key: {{file: priv.txt}}
  from-env:
    version: "3"
    username: other
    security_level: authNoPriv
    auth_protocol: SHA-512
    auth_key: ${{NETWATCH_TEST_AUTH_KEY}}
"""


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "priv.txt").write_text(PRIV_KEY + "\n", encoding="utf-8")
    path = tmp_path / "inventory.yaml"
    path.write_text("province: {code: QNM, name: Quảng Nam}\n" + body, encoding="utf-8")
    return path


def test_secrets_resolve_and_print_as_placeholder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETWATCH_TEST_AUTH_KEY", ENV_KEY)
    inventory = load_inventory(_write(tmp_path, CREDENTIALS))
    dc = inventory.credentials["dc"]
    assert dc.auth_key.get_secret_value() == AUTH_KEY
    assert dc.priv_key.get_secret_value() == PRIV_KEY
    assert inventory.credentials["from-env"].auth_key.get_secret_value() == ENV_KEY
    assert inventory.credentials["party"].community.get_secret_value() == COMMUNITY
    text = repr(inventory) + str(inventory) + repr(dict(inventory.credentials))
    for secret in (COMMUNITY, AUTH_KEY, PRIV_KEY, ENV_KEY):
        assert secret not in text
    assert "<secret>" in text
    assert str(Secret("x")) == "<secret>"


def test_secrets_never_appear_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETWATCH_TEST_AUTH_KEY", ENV_KEY)
    broken = CREDENTIALS.replace("security_level: authNoPriv", "security_level: authPriv") + (
        f"  short:\n    version: '3'\n    username: u\n    auth_protocol: MD5\n    auth_key: {COMMUNITY[:7]}\n"
        "    security_level: authNoPriv\n"
        f"  wrong-type:\n    version: 2c\n    community: [{COMMUNITY}]\n"
        "sites:\n  - {code: X, name: X, kind: nowhere}\n"
    )
    issues = check_inventory(_write(tmp_path, broken))
    text = "\n".join(str(i) for i in issues)
    assert len(issues) >= 4
    assert "priv_protocol is required when security_level is authPriv" in text
    for secret in (COMMUNITY[:7], AUTH_KEY, PRIV_KEY, ENV_KEY):
        assert secret not in text
