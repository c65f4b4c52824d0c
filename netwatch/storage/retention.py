"""Retention: delete old history in small transactions, never what a rollup or report still needs.

Raw samples go after ``raw_days`` — but never past the cursors of the rollups that read them (both
interface rollups read raw interface samples), so a rollup that fell behind (daemon stopped, database
down) still finds its input. 5-minute rollups go after ``five_minute_days``, never past the hourly
cursor; hourly ones only when ``hourly_days`` is set.
The poll log goes after ``polls_days``, never past the poll rollup's cursor; poll rollups, which the
availability report reads, are kept as long as the hourly rollups. ICMP rounds that measured something
are poll rows and raw samples at once: they go after the longer of ``polls_days`` and ``raw_days``,
never past the poll rollup's cursor nor the ICMP one.
The outage ledger, annotations and state tables are never touched. Each transaction deletes at
most ``batch_rows`` rows chosen by primary key, so the batched writer (SQLite allows one writer at a
time) waits at most one short transaction.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, delete, not_, select, true, tuple_

from netwatch.config.retention import RetentionPolicy
from netwatch.storage.dml import table_named
from netwatch.storage.rollups import HOUR, floor_to, icmp_rounds, progress

__all__ = ["apply_retention", "cutoffs"]

log = logging.getLogger(__name__)


def _older(
    days: int, now: datetime, cursor: datetime | None = None, *, needs_cursor: bool
) -> datetime | None:
    if needs_cursor and cursor is None:
        return None  # never rolled up: nothing is safe to delete yet
    limit = now - timedelta(days=days)
    if cursor is not None:
        limit = min(limit, cursor)
    # Whole hours, so a bucket is either kept whole or deleted whole.
    return floor_to(limit, HOUR)


def _behind(done: dict[str, datetime], *names: str) -> datetime | None:
    """The cursor furthest behind among ``names``; None while any of them never ran."""
    cursors = [done.get(name) for name in names]
    return None if None in cursors else min(c for c in cursors if c is not None)


def cutoffs(engine: Engine, policy: RetentionPolicy, now: datetime) -> dict[str, datetime | None]:
    """What each part of history is deleted before (None: nothing deleted), given the cursors."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    done = progress(engine)
    hourly = None if policy.hourly_days is None else floor_to(now - timedelta(days=policy.hourly_days), HOUR)
    return {
        "interface_samples": _older(
            policy.raw_days, now, _behind(done, "interface_5m", "interface_1h"), needs_cursor=True
        ),
        "icmp_rounds": _older(
            max(policy.raw_days, policy.polls_days),
            now,
            _behind(done, "icmp_5m", "polls_1h"),
            needs_cursor=True,
        ),
        "device_metric_samples": _older(policy.raw_days, now, needs_cursor=False),
        "polls": _older(policy.polls_days, now, done.get("polls_1h"), needs_cursor=True),
        "interface_rollups_5m": _older(
            policy.five_minute_days, now, done.get("interface_1h"), needs_cursor=True
        ),
        "icmp_rollups_5m": _older(policy.five_minute_days, now, done.get("icmp_1h"), needs_cursor=True),
        "interface_rollups_1h": hourly,
        "icmp_rollups_1h": hourly,
        "poll_rollups": hourly,
    }


def _targets() -> dict[str, tuple[Table, Any, ColumnElement[bool]]]:
    targets: dict[str, tuple[Table, Any, ColumnElement[bool]]] = {}
    for name in ("interface_samples", "device_metric_samples"):
        table = table_named(name)
        targets[name] = (table, table.c.scheduled_at, true())
    polls = table_named("polls")
    rounds = icmp_rounds()
    targets["icmp_rounds"] = (polls, polls.c.scheduled_at, rounds)
    targets["polls"] = (polls, polls.c.scheduled_at, not_(rounds))
    for name in ("interface_rollups", "icmp_rollups"):
        table = table_named(name)
        for res in ("5m", "1h"):
            targets[f"{name}_{res}"] = (table, table.c.bucket_start, table.c.resolution == res)
    poll_rollups = table_named("poll_rollups")
    targets["poll_rollups"] = (poll_rollups, poll_rollups.c.bucket_start, true())
    return targets


def _delete_batched(
    engine: Engine, table: Table, when: Any, where: ColumnElement[bool], cutoff: datetime, batch: int
) -> int:
    key = list(table.primary_key.columns)
    deleted = 0
    while True:
        with engine.begin() as conn:
            # Oldest first, so an interrupted run leaves history without holes.
            chosen = conn.execute(select(*key).where(where, when < cutoff).order_by(when).limit(batch)).all()
            if not chosen:
                return deleted
            if len(key) == 1:
                match = key[0].in_([row[0] for row in chosen])
            else:
                match = tuple_(*key).in_([tuple(row) for row in chosen])
            deleted += conn.execute(delete(table).where(where, match)).rowcount
        # Let the writer thread in between transactions.
        time.sleep(0)


def apply_retention(engine: Engine, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Delete history older than ``policy`` allows (see the module doc); rows deleted per part."""
    limits = cutoffs(engine, policy, now)
    counts: dict[str, int] = {}
    for name, (table, when, where) in _targets().items():
        cutoff = limits[name]
        counts[name] = (
            0 if cutoff is None else _delete_batched(engine, table, when, where, cutoff, policy.batch_rows)
        )
    if any(counts.values()):
        log.info("retention deleted %s", ", ".join(f"{n} {c}" for n, c in counts.items() if c))
    return counts
