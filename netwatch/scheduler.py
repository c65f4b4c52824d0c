"""Schedule every job on a fixed grid, spread over its interval, with APScheduler.

Each job's runs fall on ``anchor + offset + k × interval``, where ``offset`` is a stable hash
of the job key: restarts keep the rhythm, and polls of many targets are spread evenly instead of
bursting at the top of the interval. The grid time is the poll's ``scheduled_at``: lag is measured
against it, and it keys the sample so a replay after a crash is a no-op.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from netwatch.config.inventory import Job

log = logging.getLogger(__name__)

ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)

RunFn = Callable[[Job, datetime], Awaitable[object]]


def grid_offset(key: str, interval: float) -> float:
    """Seconds after each interval boundary at which ``key`` runs; stable across restarts."""
    return (zlib.crc32(key.encode()) / 2**32) * interval


def grid_start(key: str, interval: float) -> datetime:
    """The first point of ``key``'s grid (in the past; the trigger steps forward from it)."""
    return ANCHOR + timedelta(seconds=grid_offset(key, interval))


def scheduled_time(key: str, interval: float, now: datetime) -> datetime:
    """The grid point at or just before ``now``: when the current run of ``key`` was due."""
    start = grid_start(key, interval)
    steps = math.floor((now - start).total_seconds() / interval + 1e-9)
    return start + timedelta(seconds=steps * interval)


class PollScheduler:
    """One APScheduler job per target × collector."""

    def __init__(self, run: RunFn, on_misfire: Callable[[str], None] | None = None) -> None:
        self._run = run
        self._on_misfire = on_misfire
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._jobs: dict[str, Job] = {}
        self._scheduler.add_listener(self._missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs scheduled now, by key."""
        return dict(self._jobs)

    def start(self) -> None:
        """Start firing jobs (needs a running event loop)."""
        self._scheduler.start()

    def pause(self) -> None:
        """Fire no more runs; runs in flight go on (await them, then :meth:`shutdown`)."""
        if self._scheduler.running:
            self._scheduler.pause()

    def shutdown(self) -> None:
        """Stop the scheduler; APScheduler cancels runs still in flight, so :meth:`pause` and await first."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def sync(self, jobs: Iterable[Job]) -> tuple[int, int, int]:
        """Make the schedule match ``jobs``: add new, remove gone, replace changed; untouched
        jobs keep their timing. Returns (added, removed, changed)."""
        wanted = {job.key: job for job in jobs}
        added = removed = changed = 0
        for key in list(self._jobs):
            if key not in wanted:
                self._scheduler.remove_job(key)
                del self._jobs[key]
                removed += 1
        for key, job in wanted.items():
            old = self._jobs.get(key)
            if old == job:
                continue
            if old is not None:
                changed += 1
            else:
                added += 1
            self._add(job)
        return added, removed, changed

    def _add(self, job: Job) -> None:
        interval = job.params.interval
        trigger = IntervalTrigger(seconds=interval, start_date=grid_start(job.key, interval), timezone=UTC)
        self._scheduler.add_job(
            self._fire,
            trigger,
            args=(job,),
            id=job.key,
            name=job.key,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval / 2)),
            replace_existing=True,
        )
        self._jobs[job.key] = job

    async def _fire(self, job: Job) -> None:
        now = datetime.now(UTC)
        await self._run(job, scheduled_time(job.key, job.params.interval, now))

    def _missed(self, event: JobEvent) -> None:
        log.warning("poll %s missed its slot", event.job_id)
        if self._on_misfire is not None:
            self._on_misfire(event.job_id)
