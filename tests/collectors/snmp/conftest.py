"""Fixtures for SNMP client tests: one real snmpd for the session, a fresh client per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from collectors.snmp import SnmpClient, SnmpCredentials, SnmpTarget
from tests.support.snmpd import SnmpAgent, running_snmpd


@pytest.fixture(scope="session")
def snmpd() -> Iterator[SnmpAgent]:
    """A net-snmp agent on a loopback port, with the v3 users of tests.support.snmpd.USERS."""
    with running_snmpd() as agent:
        yield agent


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    """A client with its own engine, closed after the test."""
    async with SnmpClient() as snmp:
        yield snmp


@pytest.fixture
def v2c_target(snmpd: SnmpAgent) -> SnmpTarget:
    """The session agent, reached with its v2c community."""
    return SnmpTarget(
        snmpd.address, SnmpCredentials.v2c(snmpd.community), port=snmpd.port, timeout=1.0, retries=1
    )
