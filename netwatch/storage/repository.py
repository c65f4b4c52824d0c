"""Reads and writes outside the hot path: start-up, shutdown and command-line queries."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, delete, func, insert, select, update

from netwatch.config.inventory import Inventory
from netwatch.sharding import parse_shard, shard_of_district
from netwatch.sitehealth import link_id
from netwatch.storage.dml import statement_for, table_named
from netwatch.storage.models import (
    InstanceRun,
    LinkOutage,
    NotificationSent,
    Outage,
    Poll,
    Site,
    SiteLink,
    SiteState,
    TargetState,
)

__all__ = [
    "heartbeat",
    "live_shards",
    "load_site_states",
    "load_target_states",
    "monitoring_gaps",
    "notifications_sent",
    "open_link_outages",
    "open_outages",
    "outages",
    "recent_polls",
    "shard_runs",
    "site_monitoring_gaps",
    "site_overview",
    "start_run",
    "stop_run",
    "sync_inventory",
    "uncovered",
]

Interval = tuple[datetime, datetime]


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _upsert(engine: Engine, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = statement_for(engine.dialect, table, rows[0].keys())
    with engine.begin() as conn:
        conn.execute(stmt, list(rows))


def sync_inventory(engine: Engine, inventory: Inventory, *, now: datetime | None = None) -> None:
    """Upsert the inventory's sites and devices; rows no longer in the inventory are kept."""
    stamp = _now(now)
    sites = [
        {
            "code": s.code,
            "name": s.name,
            "kind": s.kind,
            "district": s.district,
            "parent": s.parent,
            "sla_target": s.rules.sla_target,
            "updated_at": stamp,
        }
        for s in inventory.sites.values()
    ]
    devices = [
        {
            "name": d.name,
            "site": d.site,
            "address": d.address,
            "role": d.role,
            "upstream": d.upstream,
            "updated_at": stamp,
        }
        for d in inventory.devices.values()
    ]
    _upsert(engine, table_named("sites"), sites)
    _upsert(engine, table_named("devices"), devices)
    _sync_links(engine, inventory, stamp)


def _sync_links(engine: Engine, inventory: Inventory, stamp: datetime) -> None:
    """Mirror each inventory site's ``links:`` exactly (a link taken off a site is forgotten there)."""
    rows = [
        {
            "site": site.code,
            "link": link_id(link.device, link.interface),
            "position": position,
            "name": link.name or link_id(link.device, link.interface),
            "device": link.device,
            "interface": link.interface,
            "contracted_bps": link.contracted_bps,
            "updated_at": stamp,
        }
        for site in inventory.sites.values()
        for position, link in enumerate(site.links)
    ]
    rows = list({(r["site"], r["link"]): r for r in rows}.values())
    codes = list(inventory.sites)
    with engine.begin() as conn:
        for chunk in range(0, len(codes), 500):
            conn.execute(delete(SiteLink).where(SiteLink.site.in_(codes[chunk : chunk + 500])))
        if rows:
            conn.execute(insert(SiteLink), rows)


def load_target_states(
    engine: Engine, targets: Collection[str] | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every persisted target state (or those of ``targets``), keyed by (target, kind)."""
    query = select(TargetState.__table__)
    if targets is not None:
        query = query.where(TargetState.target.in_(list(targets)))
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {(row["target"], row["kind"]): dict(row) for row in rows}


def load_site_states(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every persisted site state, keyed by site code."""
    with engine.connect() as conn:
        rows = conn.execute(select(SiteState.__table__)).mappings().all()
    return {row["site"]: dict(row) for row in rows}


def start_run(engine: Engine, *, instance: str, shard: str, version: str, now: datetime | None = None) -> str:
    """Record a daemon start and return its run id (a fresh uuid4)."""
    run_id = str(uuid.uuid4())
    stamp = _now(now)
    row = {
        "run_id": run_id,
        "instance": instance,
        "shard": shard,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "version": version,
        "started_at": stamp,
        "heartbeat_at": stamp,
        "stopped_at": None,
    }
    with engine.begin() as conn:
        conn.execute(insert(InstanceRun), [row])
    return run_id


def heartbeat(engine: Engine, run_id: str, *, now: datetime | None = None) -> None:
    """Say the run is still measuring, up to now."""
    with engine.begin() as conn:
        conn.execute(update(InstanceRun).where(InstanceRun.run_id == run_id).values(heartbeat_at=_now(now)))


def stop_run(engine: Engine, run_id: str, *, now: datetime | None = None) -> None:
    """Record a clean stop of the run."""
    stamp = _now(now)
    with engine.begin() as conn:
        conn.execute(
            update(InstanceRun)
            .where(InstanceRun.run_id == run_id)
            .values(heartbeat_at=stamp, stopped_at=stamp)
        )


def uncovered(covered: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The parts of [start, end) that no interval in ``covered`` overlaps, in order."""
    gaps: list[Interval] = []
    cursor = start
    for begin, finish in sorted(covered):
        if finish <= cursor or begin >= end:
            continue
        if begin > cursor:
            gaps.append((cursor, begin))
        cursor = max(cursor, finish)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def monitoring_gaps(engine: Engine, start: datetime, end: datetime) -> list[Interval]:
    """Intervals in [start, end) when no netwatch run was measuring (not started, or dead)."""
    run = InstanceRun.__table__.c
    last_seen = func.coalesce(run.stopped_at, run.heartbeat_at)
    query = select(run.started_at, run.stopped_at, run.heartbeat_at).where(
        run.started_at < end, last_seen > start
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    covered = [(row.started_at, row.stopped_at or row.heartbeat_at) for row in rows]
    return uncovered(covered, start.astimezone(UTC), end.astimezone(UTC))


def _run_shard(spec: str) -> tuple[int, int]:
    try:
        return parse_shard(spec)
    except ValueError:  # a run recorded before sharding, or by hand: it measured everything
        return 0, 1


def site_monitoring_gaps(
    engine: Engine, start: datetime, end: datetime, districts: Mapping[str, str | None]
) -> dict[str, list[Interval]]:
    """Per site, intervals in [start, end) when no live run of the shard owning it was measuring.

    ``districts`` maps each site code to its district key (None: province level, shard 0), as
    :func:`netwatch.sharding.district_key` gives it. A run of shard ``K/N`` covers the sites whose
    district hashes to K among N; an unsharded run (``0/1``) covers every site. A run covers
    from its start to its clean stop, or to its last heartbeat when it died.
    """
    run = InstanceRun.__table__.c
    last_seen = func.coalesce(run.stopped_at, run.heartbeat_at)
    query = select(run.shard, run.started_at, run.stopped_at, run.heartbeat_at).where(
        run.started_at < end, last_seen > start
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    runs = [(_run_shard(row.shard), (row.started_at, row.stopped_at or row.heartbeat_at)) for row in rows]
    lo, hi = start.astimezone(UTC), end.astimezone(UTC)
    by_key: dict[str | None, list[Interval]] = {}
    for key in set(districts.values()):
        covered = [span for (k, n), span in runs if shard_of_district(key, n) == k]
        by_key[key] = uncovered(covered, lo, hi)
    return {code: by_key[key] for code, key in districts.items()}


def shard_runs(engine: Engine) -> list[dict[str, Any]]:
    """The latest run of each shard label (``K/N``), newest first: who measures what, and since when."""
    run = InstanceRun.__table__.c
    with engine.connect() as conn:
        rows = conn.execute(select(InstanceRun.__table__).order_by(run.started_at.desc())).mappings().all()
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest.setdefault(row["shard"], dict(row))
    return list(latest.values())


def live_shards(runs: Iterable[Mapping[str, Any]], count: int, stale_before: datetime) -> frozenset[int]:
    """Indexes K of the shards ``K/count`` measuring now, from :func:`shard_runs`: the latest run of
    each neither stopped nor silent (no heartbeat since ``stale_before``: killed, hung or cut off)."""
    live: set[int] = set()
    for run in runs:
        index, n = _run_shard(run["shard"])
        if n == count and run["stopped_at"] is None and run["heartbeat_at"] >= stale_before:
            live.add(index)
    return frozenset(live)


def recent_polls(engine: Engine, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The latest polls, newest first, optionally of one target only."""
    query = select(Poll.__table__).order_by(Poll.scheduled_at.desc(), Poll.id.desc()).limit(limit)
    if target is not None:
        query = query.where(Poll.target == target)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings().all()]


def site_overview(engine: Engine) -> list[dict[str, Any]]:
    """Every known site with its persisted state (``state`` None when never evaluated)."""
    site, state = Site.__table__.c, SiteState.__table__.c
    query = (
        select(
            site.code, site.name, site.kind, site.district, site.parent, state.state, state.since, state.cause
        )
        .select_from(Site.__table__.outerjoin(SiteState.__table__, state.site == site.code))
        .order_by(site.district, site.code)
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings().all()]


def outages(
    engine: Engine,
    *,
    only_open: bool = False,
    site: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Ledger rows, newest first: all, open ones, one site's, or those still open or ending after ``since``."""
    o = Outage.__table__.c
    query = select(Outage.__table__).order_by(o.started_at.desc(), o.id.desc()).limit(limit)
    if only_open:
        query = query.where(o.ended_at.is_(None))
    if site is not None:
        query = query.where(o.site == site)
    if since is not None:
        query = query.where((o.ended_at.is_(None)) | (o.ended_at >= since.astimezone(UTC)))
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings().all()]


def open_outages(engine: Engine) -> dict[str, dict[str, Any]]:
    """The open ledger interval of each site that has one (to resume it after a restart)."""
    return {row["site"]: row for row in reversed(outages(engine, only_open=True, limit=1_000_000))}


def notifications_sent(engine: Engine, since: datetime) -> dict[str, datetime]:
    """Notification keys sent at or after ``since``, with when."""
    n = NotificationSent.__table__.c
    with engine.connect() as conn:
        rows = conn.execute(select(n.key, n.sent_at).where(n.sent_at >= since.astimezone(UTC))).all()
    return {row.key: row.sent_at for row in rows}


def open_link_outages(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """The open link-ledger interval of each (site, link) that has one (to resume it after a restart)."""
    o = LinkOutage.__table__.c
    query = select(LinkOutage.__table__).where(o.ended_at.is_(None)).order_by(o.started_at, o.id)
    with engine.connect() as conn:
        return {(row["site"], row["link"]): dict(row) for row in conn.execute(query).mappings().all()}
