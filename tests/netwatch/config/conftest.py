"""Shared fixtures: run from the repository root so error messages carry relative paths."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TESTDATA = Path("tests/testdata/config")
QUANGNAM = Path("config/quangnam.example.yaml")
LOOPBACK = Path("config/loopback.example.yaml")
QNM_ENV = {
    "QNM_SNMP_COMMUNITY": "qnm-community-for-tests",
    "QNM_SNMP_AUTH_KEY": "qnm-auth-key-for-tests",
    "QNM_SNMP_PRIV_KEY": "qnm-priv-key-for-tests",
}


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


@pytest.fixture
def qnm_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment the Quang Nam example's ${…} secrets need."""
    for name, value in QNM_ENV.items():
        monkeypatch.setenv(name, value)
    return QNM_ENV
