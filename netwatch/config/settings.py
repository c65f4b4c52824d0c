"""Process settings from ``NETWATCH_*`` environment variables (the inventory is a file, not settings)."""

from __future__ import annotations

import socket
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Where the database is, where to listen, how much to log, and this instance's name."""

    # Other NETWATCH_* variables (e.g. NETWATCH_SNMP_AUTH_KEY for `netwatch probe`) are not settings.
    model_config = SettingsConfigDict(env_prefix="NETWATCH_", extra="ignore", frozen=True)

    db: str = Field(default="sqlite:///netwatch.db", min_length=1, description="SQLAlchemy database URL.")
    listen: str = Field(
        default="127.0.0.1:9555", description="HOST:PORT of the HTTP server (metrics, status)."
    )
    log_level: LogLevel = Field(default="INFO", description="Least severe log level written.")
    instance: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="Name of this instance (default: host name).",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65_536:
            raise ValueError("listen must be HOST:PORT, e.g. 127.0.0.1:9555 or [::1]:9555")
        return value
