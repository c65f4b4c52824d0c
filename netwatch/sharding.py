"""Split one inventory across ``netwatch run --shard K/N`` instances by whole district subtrees.

A district and its communes always land on the same shard, so parent suppression (a commune is
UNREACHABLE, not DOWN, behind its district) and one notification per district keep working inside
one process. Province-level sites (the data center, the hub and the core devices districts hang
from; sites whose district is the province itself) belong to shard 0; other shards read those
sites' target states from the database for their parent checks.

The assignment is a SHA-1 of the district code, never Python's ``hash()`` (salted per process):
the same district goes to the same shard on every restart and on every machine. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container

from netwatch.config.inventory import Inventory, Job, Site

__all__ = [
    "Shard",
    "district_key",
    "external_parents",
    "owned_devices",
    "owned_jobs",
    "owned_sites",
    "parse_shard",
    "shard_of_district",
    "shard_of_site",
]

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

Shard = tuple[int, int]
"""(index K, count N) with 0 ≤ K < N."""


def parse_shard(spec: str) -> Shard:
    """``"K/N"`` as (K, N); ValueError saying the expected form unless 0 ≤ K < N."""
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"shard {spec!r} is not of the form K/N (e.g. 0/3 for the first of three)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ValueError(f"shard {spec!r}: the number of shards N must be at least 1")
    if not 0 <= index < count:
        raise ValueError(f"shard {spec!r}: K must be between 0 and {count - 1} (shards count from 0)")
    return index, count


def shard_of_district(district: str | None, count: int) -> int:
    """The shard owning a district's subtree; None (province level) is always shard 0."""
    if district is None or count <= 1:
        return 0
    digest = hashlib.sha1(district.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % count


def district_key(district: str, site_codes: Container[str]) -> str | None:
    """The district code a site is sharded by, or None when the site is province level.

    A site's ``district`` names a district site, or the province itself (the loader's default for
    sites above any district); only the former is a district. Reports, which read sites from the
    database without the inventory, pass the set of site codes they know.
    """
    return district if district in site_codes else None


def shard_of_site(inventory: Inventory, site_code: str, count: int) -> int:
    """The shard owning ``site_code`` among ``count`` shards."""
    site = inventory.sites[site_code]
    return shard_of_district(district_key(site.district, inventory.sites), count)


def owned_sites(inventory: Inventory, shard: Shard) -> frozenset[str]:
    """Codes of the sites ``shard`` measures and writes."""
    index, count = shard
    return frozenset(code for code in inventory.sites if shard_of_site(inventory, code, count) == index)


def owned_devices(inventory: Inventory, shard: Shard) -> frozenset[str]:
    """Names of the devices ``shard`` polls: those of its sites (of an unknown site: shard 0's)."""
    sites = owned_sites(inventory, shard)
    return frozenset(
        name
        for name, device in inventory.devices.items()
        if device.site in sites or (device.site not in inventory.sites and shard[0] == 0)
    )


def owned_jobs(inventory: Inventory, shard: Shard) -> tuple[Job, ...]:
    """The polls ``shard`` runs: every job of every device it owns."""
    devices = owned_devices(inventory, shard)
    return tuple(job for job in inventory.jobs if job.target.key in devices)


def _parents(site: Site, inventory: Inventory) -> set[str]:
    """Sites ``site`` depends on: its parent chain and the sites of its devices' upstream chains."""
    found: set[str] = set()
    parent = site.parent
    while parent is not None and parent in inventory.sites and parent not in found:
        found.add(parent)
        parent = inventory.sites[parent].parent
    for device in inventory.devices.values():
        if device.site != site.code:
            continue
        upstream, seen = device.upstream, set[str]()
        while upstream is not None and upstream in inventory.devices and upstream not in seen:
            seen.add(upstream)
            found.add(inventory.devices[upstream].site)
            upstream = inventory.devices[upstream].upstream
    return found


def external_parents(inventory: Inventory, shard: Shard) -> frozenset[str]:
    """Sites another shard owns that a site of ``shard`` depends on (their state is read, not measured)."""
    mine = owned_sites(inventory, shard)
    needed: set[str] = set()
    for code in mine:
        needed |= _parents(inventory.sites[code], inventory)
    return frozenset(needed - mine)
