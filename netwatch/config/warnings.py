"""Weak security settings in a valid inventory: warned about, never refused.

A provincial WAN has old devices that speak only SNMPv2c or MD5/DES, and a relay on the LAN that
takes mail without TLS; refusing such an inventory would leave the network unwatched. So these are
warnings, each located like an error (``file:line: field: message``) so the operator can find the
line, printed by ``netwatch check`` and logged when the daemon starts and reloads. Messages name
the setting, never a secret's value.
"""

from __future__ import annotations

from collections.abc import Iterator

from collectors.yamlsource import DocPath, LocatedDoc, YamlSourceError, format_path, load_yaml_file
from netwatch.config.alerting import EmailChannel, WebhookChannel
from netwatch.config.inventory import Inventory
from netwatch.config.models import SnmpV2cCredential, SnmpV3Credential
from netwatch.errors import ConfigIssue

WELL_KNOWN_COMMUNITIES = frozenset({"public", "private"})
"""Communities every scanner tries first (factory defaults)."""


def weak_settings(inventory: Inventory) -> list[ConfigIssue]:
    """Every weak security setting of ``inventory``, located in its main file."""
    source = inventory.source_files[0] if inventory.source_files else "inventory"
    try:
        doc = load_yaml_file(source)
    except YamlSourceError:  # changed on disk since it was loaded: locate at line 1
        doc = LocatedDoc(file=source, data=None)
    return [
        ConfigIssue(doc.file, doc.line_of(path), format_path(path), message)
        for path, message in _findings(inventory)
    ]


def _findings(inventory: Inventory) -> Iterator[tuple[DocPath, str]]:
    for name, credential in inventory.credentials.items():
        yield from _snmp(("credentials", name), credential)
    alerting = inventory.alerting
    if alerting is not None:
        for name, channel in alerting.channels.items():
            yield from _channel(("alerting", "channels", name), channel)


def _snmp(path: DocPath, credential: object) -> Iterator[tuple[DocPath, str]]:
    if isinstance(credential, SnmpV2cCredential):
        if credential.community.get_secret_value().strip().lower() in WELL_KNOWN_COMMUNITIES:
            yield (
                (*path, "community"),
                "a factory-default community (public/private) that every scanner tries:"
                " set a long random community on the devices, or move them to SNMPv3",
            )
        return
    if not isinstance(credential, SnmpV3Credential):
        return
    if credential.security_level == "noAuthNoPriv":
        yield (
            (*path, "security_level"),
            "noAuthNoPriv: requests are neither authenticated nor encrypted; use authPriv",
        )
    if credential.auth_protocol == "MD5":
        yield (
            (*path, "auth_protocol"),
            "MD5 is broken as a hash; use SHA-256 (or SHA) where the device offers it",
        )
    if credential.priv_protocol == "DES":
        yield (
            (*path, "priv_protocol"),
            "DES (56-bit) encryption can be brute-forced; use AES where the device offers it",
        )


def _channel(path: DocPath, channel: object) -> Iterator[tuple[DocPath, str]]:
    if isinstance(channel, EmailChannel) and not (channel.starttls or channel.implicit_tls):
        yield (
            (*path, "starttls"),
            "mail goes to the relay without TLS: alerts can be read or altered on the way;"
            " set starttls: true (or implicit_tls: true)",
        )
    if not isinstance(channel, WebhookChannel):
        return
    plain_http = channel.url.lower().startswith("http://")
    if plain_http and (channel.basic_auth is not None or channel.bearer_token is not None):
        yield ((*path, "url"), "credentials are sent over plain http: use an https:// URL")
