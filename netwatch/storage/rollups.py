"""Rollups: raw samples → 5-minute buckets → hourly buckets, incremental, idempotent, resumable.

Each rollup (``interface_5m``, ``interface_1h``, ``icmp_5m``, ``icmp_1h``, ``polls_1h``) keeps a cursor in
``rollup_progress``: every bucket starting before ``done_until`` is complete. A run advances each
cursor batch by batch; a batch deletes the rollup rows of its time range, writes them afresh and moves
the cursor, all in one transaction, so an interrupted run leaves either the whole batch or none of it
and recomputing a bucket always gives the same row. A 5-minute bucket is rolled up once its end is a
grace period in the past (late rows from the batched writer); an hourly one of ICMP rounds once the
5-minute cursor has passed its end, an hourly one of raw samples (interfaces, polls) once its end is
the grace period in the past.

Which interfaces: 5-minute rollups only for link interfaces (a ``site_links`` row naming the device
and an ``interfaces`` row's ifname, as the recorder matches links), whose only reader is the
bandwidth report's 95th percentile of 5-minute averages; hourly ones for every interface. At 10,000
interfaces of which 250 are links, 5-minute rows for all of them cost ~18 GiB a month in SQLite. Which
interfaces are links is read when a bucket is rolled up: a link added later gets 5-minute rows from
then on (``rebuild`` gives them to its past while raw samples last); a link removed keeps the rows it
had until retention, or until a rebuild of their range while raw samples last.

What a bucket holds:
- interfaces, 5 minutes: ``samples`` polls; ``*_bps_avg`` the mean of the polls' rates and ``*_bps_max``
  the largest (NULL rates, where no honest rate existed, are left out); ``*_octets`` the traffic that
  average rate carries over the bucket (``avg × 300 / 8``); ``*_bps_p95`` is NULL.
- interfaces, hourly (from raw samples, through the same 5-minute grouping, so a link's hourly row is
  what its 5-minute rows would give): ``samples`` summed; ``*_bps_avg`` the mean of the 5-minute
  averages; ``*_bps_max`` the largest poll; ``*_octets`` summed; ``*_bps_p95`` the nearest-rank 95th
  percentile of the hour's 5-minute averages — with at most 12 of them the rank ⌈0.95·n⌉ is n, so it
  is their maximum, which is what the hourly fallback of the bandwidth report uses as the peak.
- ICMP (from the rounds' ``polls`` rows): rounds, probes sent and answered summed, RTT min of mins
  and max of maxes, RTT average weighted by answered probes (so the hourly average equals the
  average over all answered probes).
- polls, hourly straight from the poll log (``poll_rollups``, per target and collector kind): polls,
  those on time (``polls.on_time``, judged when recorded) and those without a verdict (recorded before
  revision 0008). The availability report reads these, since the poll log is kept only days. An
  hourly poll bucket is rolled up once its end is the grace period in the past.

The aggregation runs in SQL (GROUP BY an integer epoch bucket, one small dialect helper); Python only
turns bucket numbers into timestamps and writes the rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    true,
    tuple_,
)
from sqlalchemy import select as sa_select
from sqlalchemy.sql.expression import literal_column

from netwatch.storage.dml import statement_for, table_named
from netwatch.storage.models import (
    IcmpRollup,
    Interface,
    InterfaceRollup,
    InterfaceSample,
    Poll,
    PollRollup,
    RollupProgress,
    SiteLink,
)

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_GRACE",
    "FIVE_MINUTES",
    "HOUR",
    "POLL_ROLLUP",
    "ROLLUP_NAMES",
    "RollupResult",
    "ceil_to",
    "floor_to",
    "icmp_rounds",
    "nearest_rank",
    "progress",
    "rebuild",
    "roll_up",
]

log = logging.getLogger(__name__)

FIVE_MINUTES = timedelta(minutes=5)
HOUR = timedelta(hours=1)
DEFAULT_BATCH = timedelta(hours=6)
"""Time range written per transaction (a whole number of hours)."""
DEFAULT_GRACE = timedelta(minutes=3)
"""How long after a 5-minute bucket ends it is rolled up: 2 × the longest usual poll interval (60 s),
plus the writer's flush delay."""
POLL_ROLLUP = "polls_1h"
"""The hourly poll rollup (``poll_rollups``), which the availability report reads."""
ROLLUP_NAMES = ("interface_5m", "interface_1h", "icmp_5m", "icmp_1h", POLL_ROLLUP)
"""The rollups, in the order a run advances them (``icmp_1h`` after its source, ``icmp_5m``)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RES = {FIVE_MINUTES: "5m", HOUR: "1h"}

_Compute = Callable[[Connection, datetime, datetime], list[dict[str, Any]]]


@dataclass
class RollupResult:
    """What one run did: rows written and batches committed per rollup, and where each cursor stands."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLLUP_NAMES, 0))
    batches: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLLUP_NAMES, 0))
    done_until: dict[str, datetime | None] = field(default_factory=dict)


# -- time helpers ---------------------------------------------------------------------------


def floor_to(when: datetime, step: timedelta) -> datetime:
    """The start of the ``step``-long UTC bucket holding ``when`` (aware)."""
    seconds = int(step.total_seconds())
    epoch = math.floor((when - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=epoch - epoch % seconds)


def ceil_to(when: datetime, step: timedelta) -> datetime:
    """The first bucket boundary at or after ``when``."""
    start = floor_to(when, step)
    return start if start == when else start + step


def nearest_rank(values: Sequence[float], percentile: float = 95.0) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``percentile`` % of the values
    at or below it (rank ⌈p/100 · n⌉ of the sorted values); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    # Integer arithmetic for the rank, so 95 % of 20 is exactly 19 and not 19.000000000000004.
    rank = -(-round(percentile * 1000) * len(ordered) // 100_000)
    return ordered[max(rank, 1) - 1]


def _bucket(conn: Connection, column: Any, step: timedelta) -> ColumnElement[int]:
    """SQL for the bucket of ``column`` as whole seconds since the epoch, on SQLite or PostgreSQL."""
    seconds: ColumnElement[int] = literal_column(str(int(step.total_seconds())), Integer)
    epoch: ColumnElement[int]
    if conn.dialect.name == "sqlite":
        epoch = cast(func.strftime("%s", column), Integer)
    else:
        epoch = cast(func.floor(func.extract("epoch", column)), BigInteger)
    return (epoch // seconds) * seconds


def _at(epoch: int) -> datetime:
    return _EPOCH + timedelta(seconds=int(epoch))


# -- the computations -----------------------------------------------------------------------


def _link_interfaces() -> Select[Any]:
    """The (device, ifindex) of every link interface: a ``site_links`` row naming the interface."""
    i, k = Interface.__table__.c, SiteLink.__table__.c
    return sa_select(i.device, i.ifindex).join_from(
        Interface.__table__, SiteLink.__table__, and_(k.device == i.device, k.interface == i.ifname)
    )


def _five_minute_groups(conn: Connection, lo: datetime, hi: datetime, *, links_only: bool) -> Select[Any]:
    """Raw interface samples in [lo, hi) grouped per interface and 5-minute bucket (with its hour)."""
    s = InterfaceSample.__table__.c
    bucket = _bucket(conn, s.scheduled_at, FIVE_MINUTES).label("bucket")
    hour = _bucket(conn, s.scheduled_at, HOUR).label("hour")
    query = (
        sa_select(
            s.device,
            s.ifindex,
            bucket,
            hour,
            func.count().label("samples"),
            func.avg(s.in_bps).label("in_avg"),
            func.avg(s.out_bps).label("out_avg"),
            func.max(s.in_bps).label("in_max"),
            func.max(s.out_bps).label("out_max"),
        )
        .where(s.scheduled_at >= lo, s.scheduled_at < hi)
        .group_by(s.device, s.ifindex, bucket, hour)
    )
    # One semi-join against the few link interfaces, not a probe of site_links per sample.
    return query.where(tuple_(s.device, s.ifindex).in_(_link_interfaces())) if links_only else query


_PER_BUCKET = FIVE_MINUTES.total_seconds() / 8
"""Seconds of a 5-minute bucket over bits per byte: average bit/s × this = octets in the bucket."""


def _interface_row(
    device: str,
    ifindex: int,
    resolution: str,
    bucket: int,
    samples: int,
    averages: tuple[float | None, float | None],
    maxima: tuple[float | None, float | None],
    p95s: tuple[float | None, float | None],
    summed_averages: tuple[float | None, float | None],
) -> dict[str, Any]:
    """One ``interface_rollups`` row; octets are the 5-minute averages' sum × seconds per bucket / 8."""
    (in_avg, out_avg), (in_max, out_max), (in_p95, out_p95), (in_sum, out_sum) = (
        averages,
        maxima,
        p95s,
        summed_averages,
    )
    return {
        "device": device,
        "ifindex": ifindex,
        "resolution": resolution,
        "bucket_start": _at(bucket),
        "samples": int(samples),
        "in_bps_avg": in_avg,
        "out_bps_avg": out_avg,
        "in_bps_max": in_max,
        "out_bps_max": out_max,
        "in_bps_p95": in_p95,
        "out_bps_p95": out_p95,
        "in_octets": None if in_sum is None else in_sum * _PER_BUCKET,
        "out_octets": None if out_sum is None else out_sum * _PER_BUCKET,
    }


def _interface_5m(conn: Connection, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    query = _five_minute_groups(conn, lo, hi, links_only=True)
    return [
        _interface_row(
            device, ifindex, "5m", b, n, (in_avg, out_avg), (in_max, out_max), (None, None), (in_avg, out_avg)
        )
        for device, ifindex, b, _, n, in_avg, out_avg, in_max, out_max in conn.execute(query)
    ]


def _interface_1h(conn: Connection, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    g = _five_minute_groups(conn, lo, hi, links_only=False).subquery()
    query = sa_select(
        g.c.device,
        g.c.ifindex,
        g.c.hour,
        func.sum(g.c.samples),
        func.avg(g.c.in_avg),
        func.avg(g.c.out_avg),
        func.max(g.c.in_max),
        func.max(g.c.out_max),
        # Nearest-rank p95 of at most 12 five-minute averages is their maximum (see the module doc).
        func.max(g.c.in_avg),
        func.max(g.c.out_avg),
        func.sum(g.c.in_avg),
        func.sum(g.c.out_avg),
    ).group_by(g.c.device, g.c.ifindex, g.c.hour)
    return [
        _interface_row(device, ifindex, "1h", b, n, (ia, oa), (imx, omx), (ip, op), (isum, osum))
        for device, ifindex, b, n, ia, oa, imx, omx, ip, op, isum, osum in conn.execute(query)
    ]


def icmp_rounds() -> ColumnElement[bool]:
    """The ``polls`` rows of ICMP rounds that measured something (the ICMP rollups' raw samples)."""
    p = Poll.__table__.c
    return and_(p.kind == "icmp", p.sent.is_not(None))


def _icmp(conn: Connection, lo: datetime, hi: datetime, step: timedelta) -> list[dict[str, Any]]:
    rounds: ColumnElement[Any]
    where: ColumnElement[bool]
    if step == FIVE_MINUTES:
        s = Poll.__table__.c  # an ICMP round's figures are in its poll's row
        time_column, rounds = s.scheduled_at, func.count()
        where = icmp_rounds()
        rtt_min, rtt_max = s.rtt_min_seconds, s.rtt_max_seconds
    else:
        s = IcmpRollup.__table__.c
        time_column, rounds, where = s.bucket_start, func.sum(s.rounds), s.resolution == "5m"
        rtt_min, rtt_max = s.rtt_min_seconds, s.rtt_max_seconds
    bucket = _bucket(conn, time_column, step).label("bucket")
    answered = case((s.rtt_avg_seconds.is_not(None), s.received))
    query = (
        sa_select(
            s.target,
            bucket,
            rounds,
            func.sum(s.sent),
            func.sum(s.received),
            func.min(rtt_min),
            func.max(rtt_max),
            func.sum(s.rtt_avg_seconds * answered),
            func.sum(answered),
        )
        .where(where, time_column >= lo, time_column < hi)
        .group_by(s.target, bucket)
    )
    return [
        {
            "target": target,
            "resolution": _RES[step],
            "bucket_start": _at(b),
            "rounds": int(n),
            "sent": int(sent or 0),
            "received": int(received or 0),
            "rtt_min_seconds": low,
            "rtt_avg_seconds": weighted / weight if weight else None,
            "rtt_max_seconds": high,
        }
        for target, b, n, sent, received, low, high, weighted, weight in conn.execute(query)
    ]


def _polls(conn: Connection, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    p = Poll.__table__.c
    bucket = _bucket(conn, p.scheduled_at, HOUR).label("bucket")
    query = (
        sa_select(
            p.target,
            p.kind,
            bucket,
            func.count(),
            func.sum(case((p.on_time.is_(true()), 1), else_=0)),
            func.sum(case((p.on_time.is_(None), 1), else_=0)),
        )
        .where(p.scheduled_at >= lo, p.scheduled_at < hi)
        .group_by(p.target, p.kind, bucket)
    )
    return [
        {
            "target": target,
            "kind": kind,
            "bucket_start": _at(b),
            "polls": int(n),
            "on_time": int(on_time or 0),
            "unjudged": int(unjudged or 0),
        }
        for target, kind, b, n, on_time, unjudged in conn.execute(query)
    ]


@dataclass(frozen=True)
class _Spec:
    name: str
    table: Any
    step: timedelta
    compute: _Compute
    source_time: Any
    source_filter: Any = None
    source: str | None = None
    """The rollup this one is computed from (its cursor bounds this one), None for raw samples."""


def _specs() -> dict[str, _Spec]:
    ir, cr = InterfaceRollup.__table__, IcmpRollup.__table__
    return {
        "interface_5m": _Spec(
            "interface_5m", ir, FIVE_MINUTES, _interface_5m, InterfaceSample.__table__.c.scheduled_at
        ),
        # From raw samples, not from the 5-minute rows: those exist only for link interfaces.
        "interface_1h": _Spec(
            "interface_1h", ir, HOUR, _interface_1h, InterfaceSample.__table__.c.scheduled_at
        ),
        "icmp_5m": _Spec(
            "icmp_5m",
            cr,
            FIVE_MINUTES,
            lambda c, lo, hi: _icmp(c, lo, hi, FIVE_MINUTES),
            Poll.__table__.c.scheduled_at,
            icmp_rounds(),
        ),
        "icmp_1h": _Spec(
            "icmp_1h",
            cr,
            HOUR,
            lambda c, lo, hi: _icmp(c, lo, hi, HOUR),
            cr.c.bucket_start,
            cr.c.resolution == "5m",
            "icmp_5m",
        ),
        POLL_ROLLUP: _Spec(POLL_ROLLUP, PollRollup.__table__, HOUR, _polls, Poll.__table__.c.scheduled_at),
    }


# -- writing --------------------------------------------------------------------------------


def _replace(conn: Connection, spec: _Spec, lo: datetime, hi: datetime) -> int:
    """Recompute ``spec``'s buckets in [lo, hi) in the caller's transaction; returns rows written."""
    rows = spec.compute(conn, lo, hi)
    table: Table = spec.table
    # Tables holding one resolution (poll_rollups) have no resolution column.
    same = table.c.resolution == _RES[spec.step] if "resolution" in table.c else true()
    conn.execute(delete(table).where(same, table.c.bucket_start >= lo, table.c.bucket_start < hi))
    if rows:
        stmt = statement_for(conn.dialect, table, rows[0].keys())
        for start in range(0, len(rows), 5000):
            conn.execute(stmt, rows[start : start + 5000])
    return len(rows)


def _write_progress(conn: Connection, name: str, done_until: datetime) -> None:
    table = table_named("rollup_progress")
    row = {"name": name, "done_until": done_until, "updated_at": datetime.now(UTC)}
    conn.execute(statement_for(conn.dialect, table, row.keys()), [row])


def progress(engine: Engine) -> dict[str, datetime]:
    """Every rollup's cursor: buckets starting before it are complete."""
    table = RollupProgress.__table__
    with engine.connect() as conn:
        return {name: done for name, done in conn.execute(sa_select(table.c.name, table.c.done_until))}


def _earliest(engine: Engine, spec: _Spec) -> datetime | None:
    query = sa_select(func.min(spec.source_time))
    if spec.source_filter is not None:
        query = query.where(spec.source_filter)
    with engine.connect() as conn:
        value = conn.execute(query).scalar()
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's min() over a datetime column comes back as text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return floor_to(value, spec.step)


def _ranges(lo: datetime, hi: datetime, batch: timedelta) -> list[tuple[datetime, datetime]]:
    out = []
    while lo < hi:
        # Batch ends on the batch grid, so reruns and rebuilds cut the same ranges.
        end = min(floor_to(lo, batch) + batch, hi)
        out.append((lo, end))
        lo = end
    return out


def roll_up(
    engine: Engine,
    *,
    until: datetime,
    batch: timedelta = DEFAULT_BATCH,
    grace: timedelta = DEFAULT_GRACE,
    max_batches: int | None = None,
) -> RollupResult:
    """Advance every rollup's cursor towards ``until`` − ``grace`` (only complete buckets), one
    transaction per batch; stops after ``max_batches`` batches in all when given (a bounded run)."""
    if until.tzinfo is None:
        raise ValueError("until must be timezone-aware")
    if batch < HOUR or batch % HOUR:
        raise ValueError("batch must be a whole number of hours")
    result = RollupResult()
    cursors = progress(engine)
    budget = max_batches
    limit = until - grace
    for name, spec in _specs().items():
        end = floor_to(limit, spec.step)
        if spec.source is not None:
            end = min(end, floor_to(cursors.get(spec.source, _EPOCH), spec.step))
        start = cursors.get(name) or _earliest(engine, spec)
        if start is None or start >= end:
            result.done_until[name] = cursors.get(name)
            continue
        for lo, hi in _ranges(start, end, batch):
            if budget is not None and budget <= 0:
                break
            with engine.begin() as conn:
                result.rows[name] += _replace(conn, spec, lo, hi)
                _write_progress(conn, name, hi)
            cursors[name] = hi
            result.batches[name] += 1
            if budget is not None:
                budget -= 1
        result.done_until[name] = cursors.get(name)
    if any(result.batches.values()):
        log.info(
            "rollups: %s",
            ", ".join(f"{n} {result.rows[n]} rows to {result.done_until[n]}" for n in ROLLUP_NAMES),
        )
    return result


def rebuild(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    batch: timedelta = DEFAULT_BATCH,
    on_batch: Callable[[int, int], None] | None = None,
) -> RollupResult:
    """Recompute every rollup over [start, end) (widened to whole hours) from raw samples;
    ``on_batch`` is told (batches done, batches in all) after each batch. The total is first the
    most there can be, and shrinks once a rollup's input turns out to start later.

    Each rollup's range starts no earlier than its oldest input still kept (raw samples for interface
    and poll rollups and 5-minute ICMP ones, 5-minute ICMP rollups for hourly ICMP ones), so a rebuild
    never wipes rollups whose input retention has already deleted. Link interfaces are those of
    ``site_links`` now: a link added since gets 5-minute rows over the range, one removed loses its
    own there. Cursors are not moved.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    lo_hour, hi_hour = floor_to(start, HOUR), ceil_to(end, HOUR)
    result = RollupResult()
    specs = _specs()
    # icmp_1h's input is icmp_5m, rebuilt just before it: its start is known then; rollups of raw
    # samples know theirs now.
    most = len(_ranges(lo_hour, hi_hour, batch))

    def ranges_of(spec: _Spec) -> list[tuple[datetime, datetime]]:
        oldest = _earliest(engine, spec)
        return _ranges(max(lo_hour, oldest), hi_hour, batch) if oldest is not None else []

    known = {name: ranges_of(spec) for name, spec in specs.items() if spec.source is None}
    total = most * len(specs) - sum(most - len(r) for r in known.values())
    done = 0
    for name, spec in specs.items():
        ranges = known[name] if name in known else ranges_of(spec)
        if name not in known:
            total -= most - len(ranges)
        for a, b in ranges:
            with engine.begin() as conn:
                result.rows[name] += _replace(conn, spec, a, b)
            result.batches[name] += 1
            done += 1
            if on_batch is not None:
                on_batch(done, total)
    result.done_until.update(progress(engine))
    return result
