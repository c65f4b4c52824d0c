"""SNMPv3 against snmpd: every auth/priv combination, AES key-extension variants, and typed failures."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from collectors.snmp import SnmpClient, SnmpCredentials, SnmpError, SnmpTarget
from tests.support.snmpd import SnmpAgent, V3User


def _credentials(
    user: V3User,
    *,
    username: str | None = None,
    auth_key: str | None = None,
    priv_protocol: str | None = None,
) -> SnmpCredentials:
    protocols: dict[str, Any] = {
        "auth_protocol": user.auth_protocol,
        "priv_protocol": priv_protocol or user.priv_protocol,
    }  # net-snmp keyword strings, checked by SnmpCredentials itself
    return SnmpCredentials.v3(
        username or user.name, auth_key=auth_key or user.auth_key, priv_key=user.priv_key, **protocols
    )


def _target(
    snmpd: SnmpAgent, credentials: SnmpCredentials, timeout: float = 1.0, retries: int = 0
) -> SnmpTarget:
    return SnmpTarget(snmpd.address, credentials, port=snmpd.port, timeout=timeout, retries=retries)


def _assert_no_secret(secrets: tuple[str, ...], exc: SnmpError, caplog: pytest.LogCaptureFixture) -> None:
    shown = [str(exc), repr(exc), exc.message, caplog.text, *(r.getMessage() for r in caplog.records)]
    for secret in secrets:
        assert all(secret not in text for text in shown), "a secret leaked into an error or a log"


@pytest.mark.parametrize(
    "user",
    ["nw-sha-aes", "nw-sha256-aes256", "nw-sha512-aes256c", "nw-md5-des", "nw-sha256-auth", "nw-sha-aes256",
     "nw-sha-aes256c", "nw-sha-aes192", "nw-sha-aes192c"],
)  # fmt: skip
async def test_each_auth_and_priv_combination_reads_the_agent(
    client: SnmpClient, snmpd: SnmpAgent, user: str
) -> None:
    info = await client.system_info(_target(snmpd, _credentials(snmpd.users[user])))
    assert info.name == snmpd.sys_name


@pytest.mark.parametrize(
    ("user", "other"),
    [("nw-sha-aes256", "AES-256-C"), ("nw-sha-aes256c", "AES-256"), ("nw-sha-aes192", "AES-192-C"),
     ("nw-sha-aes192c", "AES-192")],
)  # fmt: skip
async def test_blumenthal_and_reeder_aes_are_told_apart(
    client: SnmpClient, snmpd: SnmpAgent, user: str, other: str, caplog: pytest.LogCaptureFixture
) -> None:
    """net-snmp's AES-256 is pysnmp's usmAesBlumenthalCfb256Protocol, AES-256-C its usmAesCfb256Protocol.

    With SHA-1 (a 20-byte key) the extended keys differ, so a user created with one does not answer the other;
    the same user name, right protocol, then works again on the same engine.
    """
    right = _credentials(snmpd.users[user])
    wrong = _credentials(snmpd.users[user], priv_protocol=other)
    with pytest.raises(SnmpError) as caught:
        await client.get(_target(snmpd, wrong, timeout=0.5), ["1.3.6.1.2.1.1.5.0"])
    # snmpd drops what it cannot decrypt: no report comes back, so it is a silent timeout.
    assert caught.value.reason == "timeout"
    assert "priv" in caught.value.message
    _assert_no_secret(wrong.secrets, caught.value, caplog)
    assert (await client.system_info(_target(snmpd, right))).name == snmpd.sys_name


async def test_wrong_auth_key_is_an_auth_error_naming_wrong_digest(
    client: SnmpClient, snmpd: SnmpAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = _credentials(snmpd.users["nw-sha-aes"], auth_key="not-the-auth-key-4242")
    with pytest.raises(SnmpError) as caught:
        await client.get(_target(snmpd, bad), ["1.3.6.1.2.1.1.5.0"])
    assert caught.value.reason == "auth"
    assert "usmStatsWrongDigests" in str(caught.value)
    _assert_no_secret((*bad.secrets, snmpd.users["nw-sha-aes"].auth_key), caught.value, caplog)


async def test_unknown_user_is_an_auth_error_naming_unknown_user(
    client: SnmpClient, snmpd: SnmpAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = _credentials(snmpd.users["nw-sha-aes"], username="nw-nobody")
    with pytest.raises(SnmpError) as caught:
        await client.get(_target(snmpd, bad), ["1.3.6.1.2.1.1.5.0"])
    assert caught.value.reason == "auth"
    assert "usmStatsUnknownUserNames" in str(caught.value)
    _assert_no_secret(bad.secrets, caught.value, caplog)


async def test_wrong_community_is_a_timeout_within_its_budget(
    client: SnmpClient, snmpd: SnmpAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = SnmpCredentials.v2c("wrong-c0mmunity-1234")
    target = _target(snmpd, bad, timeout=0.5, retries=1)
    started = time.monotonic()
    with pytest.raises(SnmpError) as caught:
        await client.walk(target, ["1.3.6.1.2.1.2.2.1.2"])
    elapsed = time.monotonic() - started
    assert caught.value.reason == "timeout"
    assert "wrong community" in str(caught.value)
    # An agent that never answered is given up after one request budget (2 × 0.5 s), plus slack.
    assert elapsed < target.budget + 0.5
    _assert_no_secret(bad.secrets, caught.value, caplog)


async def test_two_targets_sharing_a_user_name_with_different_keys_do_not_disturb_each_other(
    client: SnmpClient, snmpd: SnmpAgent
) -> None:
    import asyncio

    right = _target(snmpd, _credentials(snmpd.users["nw-sha-aes"]))
    wrong = _target(snmpd, _credentials(snmpd.users["nw-sha-aes"], auth_key="another-auth-key-77"))
    results = await asyncio.gather(
        *(client.get(t, ["1.3.6.1.2.1.1.5.0"]) for t in [right, wrong] * 5), return_exceptions=True
    )
    for i, result in enumerate(results):
        if i % 2 == 0:
            assert not isinstance(result, BaseException), result
            assert result["1.3.6.1.2.1.1.5.0"].value == snmpd.sys_name.encode()
        else:
            assert isinstance(result, SnmpError) and result.reason == "auth"


async def test_a_v3_poll_reads_its_scalars_in_the_walk_as_a_get_does(
    client: SnmpClient, snmpd: SnmpAgent
) -> None:
    """The scalars ride in the walk's first request over SNMPv3 too (pysnmp's GETBULK with
    non-repeaters), and read what a GET reads."""
    from collectors.snmp.client import Riders

    target = _target(snmpd, _credentials(snmpd.users["nw-sha-aes"]))
    oids = ["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.99.0"]  # sysName, sysObjectID, absent
    expected = await client.get(target, oids)
    riders = Riders(oids)
    walked = await client.walk(target, ["1.3.6.1.2.1.2.2.1.2"], riders=riders)
    assert riders.answered and riders.values == expected and len(expected) == 2
    again = await client.walk(target, ["1.3.6.1.2.1.2.2.1.2"])
    assert walked["1.3.6.1.2.1.2.2.1.2"] == again["1.3.6.1.2.1.2.2.1.2"] != {}
