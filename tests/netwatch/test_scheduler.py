"""The poll grid: stable offsets, spread polls, add/remove without disturbing the others."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

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


async def test_started_runs_need_no_task_and_one_still_going_skips_its_slot() -> None:
    """Jobs ``start`` takes run without a task; the slot that comes while one is in flight is missed."""
    loop = asyncio.get_running_loop()
    started: dict[str, list[datetime]] = {}
    misfires: list[str] = []
    ran_as_task: list[str] = []

    def start(j: Job, at: datetime, finished: Any) -> bool:
        if j.key.startswith("task"):
            return False
        started.setdefault(j.key, []).append(at)
        # "slow" runs take 1.5 intervals: every other slot finds it still going
        loop.call_later(0.45 if j.key.startswith("slow") else 0.01, finished)
        return True

    async def run(j: Job, at: datetime) -> None:
        ran_as_task.append(j.key)

    scheduler = PollScheduler(run, on_misfire=misfires.append, start=start)
    scheduler.sync([job("fast", 0.3), job("slow", 0.3), job("task", 0.3)])
    tasks_before = len(asyncio.all_tasks())
    scheduler.start()
    try:
        await asyncio.sleep(2.0)
        # the watchdog is the one task of its own; no task per started run
        assert len(asyncio.all_tasks()) <= tasks_before + 2
        scheduler.pause()
        await scheduler.drain(1.0)
        assert scheduler.runs_in_flight == 0
    finally:
        scheduler.shutdown()
    assert len(started["fast/icmp"]) >= 5 and "fast/icmp" not in misfires
    assert 2 <= len(started["slow/icmp"]) <= len(started["fast/icmp"]) - 2
    assert misfires.count("slow/icmp") >= 2, "a run still in flight makes its next slot a misfire"
    assert ran_as_task.count("task/icmp") >= 5, "a job start declines runs as a task"


async def test_runs_due_within_a_tick_start_together_and_never_before_their_slot() -> None:
    """500 jobs spread over a 1 s interval wake the loop once per 10 ms tick, not once per job."""
    starts: dict[str, tuple[datetime, float]] = {}

    def start(j: Job, at: datetime, finished: Any) -> bool:
        starts.setdefault(j.key, (at, datetime.now(UTC).timestamp()))
        finished()
        return True

    async def run(j: Job, scheduled_at: datetime) -> None:
        raise AssertionError("every job here is started, none is a task")

    scheduler = PollScheduler(run, start=start)
    scheduler.sync([job(f"spread{i}", 1.0) for i in range(500)])
    wakes: list[float] = []
    wake = scheduler._wake

    def counted() -> None:
        wakes.append(asyncio.get_running_loop().time())
        wake()

    scheduler._wake = counted  # type: ignore[method-assign]
    scheduler.start()
    try:
        await asyncio.sleep(1.1)
    finally:
        scheduler.shutdown()
    assert len(starts) == 500, "every job ran within its first interval"
    early = [(k, at.timestamp() - t) for k, (at, t) in starts.items() if t < at.timestamp() - 1e-3]
    assert not early, f"runs started before their slot: {early[:3]}"
    assert len(wakes) <= 1.1 / 0.01 + 5, f"{len(wakes)} wake-ups for 500 runs: one per job, not per tick"
