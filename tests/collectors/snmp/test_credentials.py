"""SNMP credentials: secrets never print, and wrong combinations are refused without showing them."""

from __future__ import annotations

import pytest

from collectors.snmp import SnmpCredentials, SnmpTarget

COMMUNITY = "s3cret-community-xyz"
AUTH = "s3cret-auth-key-xyz"
PRIV = "s3cret-priv-key-xyz"


@pytest.mark.parametrize(
    "credentials",
    [
        SnmpCredentials.v2c(COMMUNITY),
        SnmpCredentials.v3(
            "netwatch", auth_protocol="SHA-256", auth_key=AUTH, priv_protocol="AES-256-C", priv_key=PRIV
        ),
    ],
)
def test_secrets_print_as_secret(credentials: SnmpCredentials) -> None:
    target = SnmpTarget("198.51.100.7", credentials)
    for text in (repr(credentials), str(credentials), repr(target), str(target), f"{credentials}"):
        assert "<secret>" in text
        assert COMMUNITY not in text and AUTH not in text and PRIV not in text


def test_security_level_follows_the_protocols_given() -> None:
    assert SnmpCredentials.v3("u", auth_protocol="SHA", auth_key=AUTH).security_level == "authNoPriv"
    assert SnmpCredentials.v3("u").security_level == "noAuthNoPriv"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": "2c"}, "community is required"),
        ({"version": "3", "username": "u", "security_level": "authPriv", "auth_protocol": "SHA", "auth_key": AUTH},
         "priv_protocol is required when security_level is authPriv"),
        ({"version": "3", "username": "u", "security_level": "authNoPriv", "auth_protocol": "SHA", "auth_key": "short"},
         "auth_key must be at least 8 characters"),
        ({"version": "3", "username": "u", "security_level": "authNoPriv", "auth_protocol": "SHA-1", "auth_key": AUTH},
         "auth_protocol must be one of"),
        ({"version": "2c", "community": COMMUNITY, "auth_key": AUTH}, "version 2c takes only a community"),
    ],
)  # fmt: skip
def test_wrong_combinations_are_refused_without_showing_secrets(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        SnmpCredentials(**fields)  # type: ignore[arg-type]
    assert AUTH not in str(caught.value) and COMMUNITY not in str(caught.value)
