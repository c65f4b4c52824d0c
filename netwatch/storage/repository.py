"""Reads and writes outside the hot path: start-up, shutdown and command-line queries."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select, update

from netwatch.config.inventory import Inventory
from netwatch.storage.dml import statement_for, table_named
from netwatch.storage.models import InstanceRun, NotificationSent, Outage, Poll, Site, SiteState, TargetState

__all__ = [
    "heartbeat",
    "load_site_states",
    "load_target_states",
    "monitoring_gaps",
    "notifications_sent",
    "open_outages",
    "outages",
    "recent_polls",
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


def load_target_states(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """Every persisted target state, keyed by (target, kind)."""
    with engine.connect() as conn:
        rows = conn.execute(select(TargetState.__table__)).mappings().all()
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
