"""The exceptions netwatch raises, and who raises them.

::

    NetwatchError                      base of everything below
    ├── ConfigError                    inventory or profile invalid; ``.issues`` lists every
    │                                  ``file:line: field: message`` (config loader, profile loader)
    ├── StorageError                   the database refused or is unreachable (storage)
    │   └── MigrationError             schema upgrade failed (storage.migrate)
    └── ProbeSetupError                a collector's shared resource cannot open, e.g. no ICMP
                                       permission; the message says how to fix it (daemon, cli)

Collectors never raise for a misbehaving target: they return a failed ``CollectResult``.
"""

from __future__ import annotations

from dataclasses import dataclass


class NetwatchError(Exception):
    """Base of every error netwatch raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file, located to the line."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class ConfigError(NetwatchError):
    """A configuration could not be used; ``issues`` says every place that is wrong."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class StorageError(NetwatchError):
    """The database could not be reached or refused a write."""


class MigrationError(StorageError):
    """The schema could not be brought to the version this netwatch needs."""


class ProbeSetupError(NetwatchError):
    """A collector's shared resource (raw socket, SNMP engine) could not be opened."""
