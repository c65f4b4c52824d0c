"""The poll grid: stable offsets, spread polls, add/remove without disturbing the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from collectors.base import Target
from collectors.icmp import IcmpParams
from netwatch.config.inventory import Job
from netwatch.scheduler import PollScheduler, grid_offset, grid_start, scheduled_time


def job(name: str, interval: float = 10.0) -> Job:
    params = IcmpParams(interval=interval, probes=1, timeout=min(1.0, interval / 2))
    return Job(target=Target(key=name, address="127.0.0.1"), kind="icmp", params=params)


def test_offsets_are_stable_and_spread() -> None:
    offsets = [grid_offset(f"dev{i}/icmp", 10.0) for i in range(1000)]
    assert offsets == [grid_offset(f"dev{i}/icmp", 10.0) for i in range(1000)]
    assert all(0 <= o < 10 for o in offsets)
    # spread: every second of the interval gets a fair share of the 1,000 jobs
    per_second = [sum(1 for o in offsets if s <= o < s + 1) for s in range(10)]
    assert min(per_second) > 60, per_second


def test_scheduled_time_is_the_grid_point_at_or_before_now() -> None:
    start = grid_start("r1/icmp", 10.0)
    now = start + timedelta(seconds=123_456.7)
    due = scheduled_time("r1/icmp", 10.0, now)
    assert due <= now < due + timedelta(seconds=10)
    assert abs(((due - start).total_seconds() / 10) - round((due - start).total_seconds() / 10)) < 1e-6
    # exactly on the grid point: that point itself
    assert scheduled_time("r1/icmp", 10.0, due) == due


async def test_jobs_fire_on_their_grid_and_sync_keeps_untouched_jobs() -> None:
    fired: dict[str, list[datetime]] = {}

    async def run(j: Job, scheduled_at: datetime) -> None:
        fired.setdefault(j.key, []).append(scheduled_at)

    scheduler = PollScheduler(run)
    assert scheduler.sync([job("a", 0.4), job("b", 0.4)]) == (2, 0, 0)
    scheduler.start()
    try:
        await asyncio.sleep(1.5)
        assert scheduler.sync([job("a", 0.4), job("c", 0.4)]) == (1, 1, 0)
        synced_at = datetime.now(UTC)
        await asyncio.sleep(1.0)
    finally:
        scheduler.shutdown()
    assert len(fired["a/icmp"]) >= 5  # 2.5 s at 0.4 s: ~6 rounds, none lost across the sync
    # Removed: no round of a later slot (one already due at the sync may still start).
    assert fired["b/icmp"] and max(fired["b/icmp"]) <= synced_at
    assert len(fired["c/icmp"]) >= 2
    for key, times in fired.items():
        start = grid_start(key, 0.4)
        steps = [(t - start).total_seconds() / 0.4 for t in times]
        assert all(abs(s - round(s)) < 1e-3 for s in steps), (key, steps)
        assert len(set(times)) == len(times)  # never the same slot twice
        assert all(t.tzinfo is UTC for t in times)
