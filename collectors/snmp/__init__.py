"""SNMP: credentials, targets and the client that talks to agents (the only user of pysnmp)."""

from collectors.snmp.client import SnmpClient, SnmpError, SystemInfo, Value
from collectors.snmp.credentials import SnmpCredentials, SnmpTarget

__all__ = ["SnmpClient", "SnmpCredentials", "SnmpError", "SnmpTarget", "SystemInfo", "Value"]
