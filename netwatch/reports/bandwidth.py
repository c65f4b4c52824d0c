"""The monthly bandwidth report: per link, average, peak and 95th percentile in and out.

Figures come from the interface rollups, never from raw samples:
- 5-minute rollups (the normal case): average = mean of the month's 5-minute averages; peak = the
  largest 5-minute average (not the largest single poll); 95th percentile = nearest-rank 95th
  percentile of the 5-minute averages (the carriers' "95th percentile billing"); hours above the
  threshold (80 % of the contracted rate, in or out) = 5-minute buckets above it × 5 min.
- hourly rollups, for months that start before the 5-minute rollups' retention, and for a link
  without a single 5-minute row in the month (5-minute rollups are kept only for interfaces that
  ``site_links`` names, so an interface the inventory made a link later, or whose rows retention
  took): average = mean of hourly averages; peak = the largest 5-minute average (each hour keeps it,
  see ``netwatch.storage.rollups``); 95th percentile = of the hourly averages; hours above = hours
  whose average is above the threshold. The report says so — ``fallback`` for the whole month,
  ``LinkBandwidth.resolution`` and ``BandwidthReport.hourly_links`` per link: these are
  approximations.
Utilisation is average ÷ contracted and p95 ÷ contracted. Month boundaries are local (``tz``).
Everything is computed in Python from the same fetched values, so SQLite and PostgreSQL give the
same report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, bindparam, func, select, tuple_

from netwatch.config.inventory import Inventory
from netwatch.config.retention import RetentionPolicy
from netwatch.reports.availability import month_bounds
from netwatch.storage.models import Device, Interface, InterfaceRollup, Site
from netwatch.storage.rollups import FIVE_MINUTES, HOUR, nearest_rank

__all__ = [
    "DEFAULT_THRESHOLD",
    "BandwidthReport",
    "Direction",
    "LinkBandwidth",
    "LinkRef",
    "Resolution",
    "bandwidth_report",
    "links_from_database",
    "links_from_inventory",
    "resolution_for",
]

Resolution = Literal["5m", "1h"]
DEFAULT_THRESHOLD = 0.8
"""Utilisation above which time is counted in "hours above"."""

_FETCH_CHUNK = 400


@dataclass(frozen=True, slots=True)
class LinkRef:
    """A site's link as the report names it: site, link name, device, interface and contract."""

    site: str
    site_name: str
    district: str
    device: str
    interface: str
    contracted_bps: float | None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Direction:
    """One direction's figures for a month, in bits per second, and utilisation ratios."""

    average_bps: float | None
    peak_bps: float | None
    p95_bps: float | None
    average_utilisation: float | None
    p95_utilisation: float | None


@dataclass(frozen=True, slots=True)
class LinkBandwidth:
    """One link's month: which interface, how many buckets had data, both directions."""

    link: LinkRef
    ifindex: int | None
    buckets: int
    inbound: Direction
    outbound: Direction
    hours_above: float | None
    resolution: Resolution = "5m"
    """The rollups the figures come from: 1h for the month's fallback or this link's own."""


@dataclass(frozen=True, slots=True)
class BandwidthReport:
    """The bandwidth report of one month."""

    month: str
    tz: str
    start: datetime
    end: datetime
    resolution: Resolution
    fallback: bool
    """True when the month is older than the 5-minute rollups' retention: hourly figures are used."""
    threshold: float
    generated_at: datetime
    links: tuple[LinkBandwidth, ...]

    @property
    def hourly_links(self) -> tuple[LinkBandwidth, ...]:
        """Links whose figures come from hourly rollups (every link when ``fallback``)."""
        return tuple(row for row in self.links if row.resolution == "1h")

    @property
    def expected_buckets(self) -> int:
        """Buckets the month holds at this resolution (for coverage)."""
        step = FIVE_MINUTES if self.resolution == "5m" else HOUR
        return int((self.end - self.start) / step)


def links_from_inventory(inventory: Inventory) -> list[LinkRef]:
    """Every link of every site that names its interface."""
    return [
        LinkRef(
            site.code, site.name, site.district, link.device, link.interface, link.contracted_bps, link.name
        )
        for site in inventory.sites.values()
        for link in site.links
        if link.interface
    ]


def links_from_database(engine: Engine) -> list[LinkRef]:
    """Links as the daemon mirrored them: interfaces with a contracted rate, with their site."""
    i, d, s = Interface.__table__.c, Device.__table__.c, Site.__table__.c
    query = (
        select(i.device, i.ifname, i.contracted_bps, d.site, s.name, s.district)
        .join_from(Interface.__table__, Device.__table__, d.name == i.device)
        .join(Site.__table__, s.code == d.site)
        .where(i.contracted_bps.is_not(None))
    )
    with engine.connect() as conn:
        return [
            LinkRef(site, site_name, district, device, ifname, contracted)
            for device, ifname, contracted, site, site_name, district in conn.execute(query)
        ]


def resolution_for(start: datetime, now: datetime, policy: RetentionPolicy) -> Resolution:
    """5m when the month's 5-minute rollups are all still kept, else 1h (the fallback)."""
    return "5m" if start >= now - timedelta(days=policy.five_minute_days) else "1h"


def _ifindexes(engine: Engine, links: Sequence[LinkRef]) -> dict[tuple[str, str], int]:
    i = Interface.__table__.c
    devices = sorted({link.device for link in links})
    found: dict[tuple[str, str], int] = {}
    with engine.connect() as conn:
        for start in range(0, len(devices), _FETCH_CHUNK):
            chunk = devices[start : start + _FETCH_CHUNK]
            for device, ifname, ifindex in conn.execute(
                select(i.device, i.ifname, i.ifindex).where(i.device.in_(chunk)).order_by(i.ifindex)
            ):
                found.setdefault((device, ifname), ifindex)
    return found


_Column = list[float | None]
_Values = dict[tuple[str, int], tuple[_Column, _Column]]
"""Per (device, ifindex), the buckets' in and out averages as two columns (None where NULL)."""


def _fetch(
    engine: Engine, keys: Sequence[tuple[str, int]], resolution: Resolution, start: datetime, end: datetime
) -> _Values:
    """Each link's bucket averages, one primary-key range per link (contiguous on disk).

    Read through the driver's own cursor: a month of 5-minute buckets for 250 links is 2.2 M values,
    and building a SQLAlchemy row for each cost more than the query itself."""
    r = InterfaceRollup.__table__.c
    query = select(r.in_bps_avg, r.out_bps_avg).where(
        r.device == bindparam("device"),
        r.ifindex == bindparam("ifindex"),
        r.resolution == bindparam("resolution"),
        r.bucket_start >= bindparam("lo"),
        r.bucket_start < bindparam("hi"),
    )
    values: _Values = {}
    with engine.connect() as conn:
        compiled = query.compile(dialect=conn.dialect)
        # The dialect's own form of the column's type (SQLite: the text SQLAlchemy stores).
        stamp = r.bucket_start.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        lo, hi = (start, end) if stamp is None else (stamp(start), stamp(end))
        bound: dict[str, Any] = {"resolution": resolution, "lo": lo, "hi": hi}
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for device, ifindex in keys:
                bound.update(device=device, ifindex=ifindex)
                params = tuple(bound[n] for n in compiled.positiontup or ()) if compiled.positional else bound
                cursor.execute(compiled.string, params)
                rows = cursor.fetchall()
                # Two lists of floats, not a tuple per bucket: millions of live tuples made the
                # garbage collector rescan them all, which cost more than the query.
                values[(device, ifindex)] = ([i for i, _ in rows], [o for _, o in rows])
        finally:
            cursor.close()
    return values


def _peaks(
    engine: Engine, keys: Sequence[tuple[str, int]], start: datetime, end: datetime
) -> dict[tuple[str, int], tuple[float | None, float | None]]:
    """Hourly fallback: the peak 5-minute average, kept by each hourly row as its p95."""
    r = InterfaceRollup.__table__.c
    peaks: dict[tuple[str, int], tuple[float | None, float | None]] = {}
    with engine.connect() as conn:
        for first in range(0, len(keys), _FETCH_CHUNK):
            query = (
                select(r.device, r.ifindex, func.max(r.in_bps_p95), func.max(r.out_bps_p95))
                .where(
                    tuple_(r.device, r.ifindex).in_(keys[first : first + _FETCH_CHUNK]),
                    r.resolution == "1h",
                    r.bucket_start >= start,
                    r.bucket_start < end,
                )
                .group_by(r.device, r.ifindex)
            )
            for device, ifindex, in_peak, out_peak in conn.execute(query):
                peaks[(device, ifindex)] = (in_peak, out_peak)
    return peaks


def _month_values(
    engine: Engine, keys: Sequence[tuple[str, int]], resolution: Resolution, start: datetime, end: datetime
) -> tuple[_Values, set[tuple[str, int]]]:
    """Each link's bucket averages at ``resolution``, and the links read from hourly rollups: all of
    them at 1h; at 5m, those with no 5-minute row in the month but hourly ones."""
    values = _fetch(engine, keys, resolution, start, end)
    if resolution == "1h":
        return values, set(keys)
    bare = [key for key in keys if not values[key][0]]
    found = _fetch(engine, bare, "1h", start, end) if bare else {}
    hourly = {key: columns for key, columns in found.items() if columns[0]}
    values.update(hourly)
    return values, set(hourly)


def _ratio(value: float | None, contracted: float | None) -> float | None:
    return None if value is None or not contracted else value / contracted


def _direction(values: Sequence[float], peak: float | None, contracted: float | None) -> Direction:
    if not values:
        return Direction(None, None, None, None, None)
    average = math.fsum(values) / len(values)
    p95 = nearest_rank(values)
    return Direction(average, peak, p95, _ratio(average, contracted), _ratio(p95, contracted))


def _rates(ins: _Column, outs: _Column) -> tuple[list[float], list[float]]:
    """The in and out averages of the buckets, NULLs (no honest rate) left out."""
    return [v for v in ins if v is not None], [v for v in outs if v is not None]


def _hours_above(
    ins: _Column,
    outs: _Column,
    contracted: float | None,
    threshold: float,
    step: timedelta,
) -> float | None:
    """Time in buckets where either direction was above ``threshold`` × contracted, in hours."""
    if not contracted or not ins:
        return None
    limit = threshold * contracted
    # NULL counts as no traffic here; a generator per bucket cost a second at 250 links × a month.
    over = sum(
        1
        for i, o in zip(ins, outs, strict=True)
        if (i is not None and i > limit) or (o is not None and o > limit)
    )
    return over * step / HOUR


def _keep(link: LinkRef, site: str | None, district: str | None) -> bool:
    return (site is None or link.site == site) and (district is None or link.district == district)


def bandwidth_report(
    engine: Engine,
    month: str,
    *,
    tz: str = "Asia/Ho_Chi_Minh",
    links: Iterable[LinkRef] | None = None,
    site: str | None = None,
    district: str | None = None,
    policy: RetentionPolicy | None = None,
    now: datetime | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[int, int], None] | None = None,
) -> BandwidthReport:
    """The bandwidth report of ``month`` (``YYYY-MM``, local to ``tz``) for ``links`` (default: the
    links mirrored in the database), optionally one site's or one district's; ``progress`` is told
    (steps done, steps) after reading the rollups (the first step) and after each link."""
    now = now or datetime.now(UTC)
    start, end = month_bounds(month, tz)
    chosen = [
        link
        for link in (links_from_database(engine) if links is None else links)
        if _keep(link, site, district)
    ]
    chosen.sort(key=lambda link: (link.district, link.site, link.name or "", link.device, link.interface))
    resolution = resolution_for(start, now, policy or RetentionPolicy())
    indexes = _ifindexes(engine, chosen)
    keys = sorted(
        {(k.device, indexes[(k.device, k.interface)]) for k in chosen if (k.device, k.interface) in indexes}
    )
    values, hourly = _month_values(engine, keys, resolution, start, end)
    peaks = _peaks(engine, sorted(hourly), start, end) if hourly else {}
    if progress is not None:
        progress(1, len(chosen) + 1)
    rows = []
    for link in chosen:
        ifindex = indexes.get((link.device, link.interface))
        key = (link.device, -1 if ifindex is None else ifindex)
        columns = values.get(key, ([], []))
        ins, outs = _rates(*columns)
        from_hourly = resolution == "1h" or key in hourly
        if from_hourly:
            in_peak, out_peak = peaks.get(key, (None, None))
        else:
            in_peak, out_peak = max(ins, default=None), max(outs, default=None)
        rows.append(
            LinkBandwidth(
                link=link,
                ifindex=ifindex,
                buckets=len(columns[0]),
                inbound=_direction(ins, in_peak, link.contracted_bps),
                outbound=_direction(outs, out_peak, link.contracted_bps),
                hours_above=_hours_above(
                    *columns, link.contracted_bps, threshold, HOUR if from_hourly else FIVE_MINUTES
                ),
                resolution="1h" if from_hourly else "5m",
            )
        )
        if progress is not None:
            progress(len(rows) + 1, len(chosen) + 1)
    return BandwidthReport(
        month=month,
        tz=tz,
        start=start,
        end=end,
        resolution=resolution,
        fallback=resolution == "1h",
        threshold=threshold,
        generated_at=now,
        links=tuple(rows),
    )
