"""Collector kinds: pure functions from a target and its params to a result.

``REGISTRY`` is the one place a collector kind is listed; the inventory's params union is built from it.
"""

from collectors.base import CollectContext, CollectorParams, CollectorSpec, CollectResult, Measurement, Target
from collectors.icmp import SPEC as ICMP_SPEC
from collectors.snmp.collector import SPEC as SNMP_SPEC

REGISTRY: dict[str, CollectorSpec] = {spec.kind: spec for spec in (ICMP_SPEC, SNMP_SPEC)}  # type: ignore[type-arg]

__all__ = [
    "REGISTRY",
    "CollectContext",
    "CollectResult",
    "CollectorParams",
    "CollectorSpec",
    "Measurement",
    "Target",
]
