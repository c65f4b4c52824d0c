"""Jobs that must run once across every netwatch instance writing one database.

Rollups and retention run in whichever shard gets there first: :func:`try_singleton` takes a
PostgreSQL session advisory lock (``pg_try_advisory_lock``, never waiting) on a connection of its
own, so two instances never run the job at the same time; :func:`run_once_per_period` adds a row in
``singleton_runs`` whose unique ``(name, period_start)`` makes the job run once per period even
when the instances' timers fire one after another. On SQLite there is one writer: always granted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from netwatch.storage.models import SingletonRun

__all__ = ["exclusive", "lock_key", "run_once_per_period", "try_singleton"]


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (the same in every process)."""
    digest = hashlib.sha1(f"netwatch:{name}".encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def try_singleton(engine: Engine, name: str) -> Iterator[bool]:
    """Yield True when this process holds the lock ``name`` for the block (False: another has it)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    # A session lock lives on its connection: keep that one connection until the unlock.
    with engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Hold the lock ``name`` for the block, waiting for it: for short work every instance must
    do, one at a time (shards upserting the same inventory at start-up would otherwise collide)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = lock_key(name)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


def run_once_per_period(
    engine: Engine,
    name: str,
    period_start: datetime,
    job: Callable[[], None],
    *,
    instance: str,
    run_id: str,
) -> bool:
    """Run ``job`` unless some instance already ran ``name`` for ``period_start``; True when run here.

    The row is claimed before the job runs, under the lock: an instance that dies mid-job leaves
    the period claimed (the next period catches up, as rollups resume from their cursor).
    """
    with try_singleton(engine, name) as granted:
        if not granted:
            return False
        table = SingletonRun.__table__.c
        try:
            with engine.begin() as conn:
                done = conn.execute(
                    select(table.id).where(table.name == name, table.period_start == period_start)
                ).first()
                if done is not None:
                    return False
                row_id = conn.execute(
                    insert(SingletonRun).returning(SingletonRun.id),
                    {
                        "name": name,
                        "period_start": period_start,
                        "instance": instance,
                        "run_id": run_id,
                        "started_at": datetime.now(UTC),
                        "finished_at": None,
                    },
                ).scalar_one()
        except IntegrityError:  # a second writer on a backend without advisory locks
            return False
        job()
        with engine.begin() as conn:
            conn.execute(
                update(SingletonRun).where(SingletonRun.id == row_id).values(finished_at=datetime.now(UTC))
            )
        return True
