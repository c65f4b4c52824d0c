"""netwatch: a network-infrastructure monitoring daemon (ICMP and SNMP, SQL history, Prometheus)."""

__version__ = "0.1.0"
