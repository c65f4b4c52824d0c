"""Turn the inventory's SNMP credentials into the collector's :class:`SnmpCredentials`.

The inventory keeps secrets as pydantic secrets (validated, printed as ``<secret>``); the collector
takes plain frozen dataclasses that print the same way. This is the one place the two meet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.snmp.credentials import SnmpCredentials
from netwatch.config.models import SnmpV2cCredential, SnmpV3Credential


def _plain(secret: Any) -> str | None:
    return None if secret is None else str(secret.get_secret_value())


def to_snmp_credentials(model: SnmpV2cCredential | SnmpV3Credential) -> SnmpCredentials:
    """The collector's credentials for one inventory credential."""
    if isinstance(model, SnmpV2cCredential):
        return SnmpCredentials.v2c(str(model.community.get_secret_value()))
    return SnmpCredentials(
        version="3",
        username=model.username,
        security_level=model.security_level,
        auth_protocol=model.auth_protocol,
        auth_key=_plain(model.auth_key),
        priv_protocol=model.priv_protocol,
        priv_key=_plain(model.priv_key),
    )


def snmp_credentials(credentials: Mapping[str, Any]) -> dict[str, SnmpCredentials]:
    """Every SNMP credential of an inventory, by name."""
    return {
        name: to_snmp_credentials(model)
        for name, model in credentials.items()
        if isinstance(model, SnmpV2cCredential | SnmpV3Credential)
    }
