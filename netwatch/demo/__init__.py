"""``netwatch demo``: the whole system on one machine — a simulated province on loopback.

ICMP targets in 127.0.0.0/8, simulated SNMP agents (snmpsim, when installed, from recordings of real
devices), simulated faults clearly marked as such, a temporary SQLite database, and optionally a
Prometheus scraping it all.
"""

from netwatch.demo.inventory import demo_inventory, write_demo_inventory
from netwatch.demo.run import run_demo

__all__ = ["demo_inventory", "run_demo", "write_demo_inventory"]
