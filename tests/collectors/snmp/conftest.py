"""Fixtures for SNMP client tests: a fresh client per test on the session's snmpd (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from collectors.snmp import SnmpClient, SnmpCredentials, SnmpTarget
from tests.support.snmpd import SnmpAgent


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
