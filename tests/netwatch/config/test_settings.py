"""Settings come from NETWATCH_* variables, with safe defaults."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from netwatch.config import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NETWATCH_DB", "NETWATCH_LISTEN", "NETWATCH_LOG_LEVEL", "NETWATCH_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.db == "sqlite:///netwatch.db"
    assert settings.listen == "127.0.0.1:9555"
    assert settings.log_level == "INFO"
    assert settings.instance == socket.gethostname()


def test_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETWATCH_DB", "postgresql+psycopg://netwatch@127.0.0.1/netwatch")
    monkeypatch.setenv("NETWATCH_LISTEN", "[::1]:9600")
    monkeypatch.setenv("NETWATCH_LOG_LEVEL", "debug")
    monkeypatch.setenv("NETWATCH_INSTANCE", "qnm-1")
    monkeypatch.setenv("NETWATCH_SNMP_AUTH_KEY", "not-a-setting")
    settings = Settings()
    assert (settings.db, settings.listen, settings.log_level, settings.instance) == (
        "postgresql+psycopg://netwatch@127.0.0.1/netwatch",
        "[::1]:9600",
        "DEBUG",
        "qnm-1",
    )


@pytest.mark.parametrize(("name", "value"), [("NETWATCH_LISTEN", "9555"), ("NETWATCH_LOG_LEVEL", "chatty")])
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
