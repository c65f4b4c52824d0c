"""Schedule every job on a fixed grid, spread over its interval, with one timer for all of them.

Each job's runs fall on ``anchor + offset + k × interval``, where ``offset`` is a stable hash
of the job key: restarts keep the rhythm, and polls of many targets are spread evenly instead of
bursting at the top of the interval. The grid time is the poll's ``scheduled_at``: lag is measured
against it, and it keys the sample so a replay after a crash is a no-op.

Due runs sit in one heap, woken by one event-loop timer on 10 ms ticks: APScheduler cost ~40 µs of
CPU and a task hand-off per run at province scale (the soak's profile). A run is a task, except for
kinds that ``start`` takes (ICMP rounds, 1,000 a second at province scale): those need no task, coroutine or
timer of their own, and report back through a callback. A run still going when its next slot comes
skips that slot, and a slot the loop reaches more than half an interval late is skipped too (both
reported to ``on_misfire``): polls never pile up behind a stall.

Timers run on the monotonic clock, slots on the wall clock. A watchdog compares the two every second
and, on a step, moves every job to its next grid point after the new wall time: polling recovers
within one interval either way. A job's ``scheduled_at`` never goes back: after a step back, a job's
runs are stamped one interval after its previous one until the wall grid catches up, so a target's
samples and ledger times stay in order and never collide with rows already written.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from netwatch.config.inventory import Job

log = logging.getLogger(__name__)

ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)

RunFn = Callable[[Job, datetime], Awaitable[object]]
StartFn = Callable[[Job, datetime, Callable[[], None]], bool]
"""Start a run without a task and call the given function when it is over; False if it cannot."""

CLOCK_CHECK_SECONDS = 1.0
"""How often the watchdog compares the wall clock with the monotonic clock."""
CLOCK_STEP_SECONDS = 1.0
"""A disagreement larger than this between the two clocks over one check is a step (NTP slews by
at most 0.5 ms/s, so only a step gets there)."""
# asyncio fires a timer up to its clock resolution early; entries that close are due
_TIMER_TOLERANCE = 1e-6
TICK = 0.01
"""Seconds of the timer's ticks: runs due within one tick start together, up to a tick late. At
province scale 1,100 runs a second fall due at distinct times, and a loop wake-up for each costs
about as much as firing the run: with 10 ms ticks, 39 µs of CPU per fire against 60 µs, lag 6 ms
at the median and 12 ms at p99 (``benchmarks/scheduler_fire.py``, 3,000 runs a second)."""


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


class _Entry:
    """One scheduled job: its grid, the slot it is due at next and its run in flight."""

    __slots__ = ("due", "generation", "job", "last_at", "origin", "start", "step", "task")

    def __init__(self, job: Job, generation: int) -> None:
        self.job = job
        self.generation = generation
        self.origin = grid_start(job.key, job.params.interval)
        self.start = self.origin.timestamp()
        self.step = 0
        self.due = 0.0
        self.task: asyncio.Task[None] | None = None
        self.last_at: datetime | None = None

    def slot(self, step: int) -> datetime:
        """The wall time of grid point ``step`` (as :func:`scheduled_time` computes it)."""
        return self.origin + timedelta(seconds=step * self.job.params.interval)


class PollScheduler:
    """Fires every target × collector job on its grid from one heap and one event-loop timer."""

    def __init__(
        self,
        run: RunFn,
        on_misfire: Callable[[str], None] | None = None,
        on_clock_step: Callable[[float], None] | None = None,
        start: StartFn | None = None,
        tick: float = TICK,
    ) -> None:
        self._run = run
        self._tick = tick  # 0: a wake-up for every due run
        self._start = start
        self._started: set[str] = set()  # keys of runs in flight through ``start``
        self._on_misfire = on_misfire
        self._on_clock_step = on_clock_step
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._running = False
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def runs_in_flight(self) -> int:
        """Runs started and not finished, as tasks or through ``start``."""
        tasks = sum(1 for e in self._entries.values() if e.task is not None and not e.task.done())
        return tasks + len(self._started)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every run in flight to finish (after :meth:`pause`)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout
        while self.runs_in_flight and loop.time() < until:
            tasks = {e.task for e in self._entries.values() if e.task is not None and not e.task.done()}
            if tasks:
                await asyncio.wait(tasks, timeout=min(0.05, max(0.0, until - loop.time())))
            else:
                await asyncio.sleep(0.05)

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs scheduled now, by key."""
        return {key: entry.job for key, entry in self._entries.items()}

    def start(self) -> None:
        """Start firing jobs (needs a running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._running = True
        now = time.time()
        for entry in self._entries.values():
            self._plan(entry, now)
        self._arm()
        self._watchdog = self._loop.create_task(self._watch_clock())

    def pause(self) -> None:
        """Fire no more runs; runs in flight go on (await them, then :meth:`shutdown`)."""
        self._running = False
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf

    def shutdown(self) -> None:
        """Stop firing and cancel runs still in flight (so :meth:`pause` and await them first)."""
        self.pause()
        for entry in self._entries.values():
            if entry.task is not None and not entry.task.done():
                entry.task.cancel()

    def sync(self, jobs: Iterable[Job]) -> tuple[int, int, int]:
        """Make the schedule match ``jobs``: add new, remove gone, replace changed; untouched
        jobs keep their timing. Returns (added, removed, changed)."""
        wanted = {job.key: job for job in jobs}
        added = removed = changed = 0
        for key in list(self._entries):
            if key not in wanted:
                del self._entries[key]  # its heap entries go stale and are skipped
                removed += 1
        now = time.time()
        for key, job in wanted.items():
            old = self._entries.get(key)
            if old is not None and old.job == job:
                continue
            if old is not None:
                changed += 1
            else:
                added += 1
            self._generation += 1
            entry = _Entry(job, self._generation)
            if old is not None:
                entry.task, entry.last_at = old.task, old.last_at
            self._entries[key] = entry
            if self._running:
                self._plan(entry, now)
        if self._running:
            self._arm()
        return added, removed, changed

    def realign(self, now: datetime) -> None:
        """Move every job's next run to its first grid point after ``now`` (after a clock step)."""
        wall = now.timestamp()
        self._heap.clear()
        for entry in self._entries.values():
            self._generation += 1
            entry.generation = self._generation
            self._plan(entry, wall)
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        if self._running:
            self._arm()

    # -- plumbing -------------------------------------------------------------------------------

    def _plan(self, entry: _Entry, wall: float) -> None:
        """Queue ``entry`` for its first grid point after ``wall`` (a wall-clock timestamp)."""
        interval = entry.job.params.interval
        entry.step = math.floor((wall - entry.start) / interval + 1e-9) + 1
        self._push(entry)

    def _push(self, entry: _Entry) -> None:
        assert self._loop is not None
        wall = entry.start + entry.step * entry.job.params.interval
        # monotonic due time: a wall-clock step cannot stall the timer (the watchdog realigns)
        entry.due = wall - time.time() + self._loop.time()
        heapq.heappush(self._heap, (entry.due, entry.generation, entry.job.key))

    def _arm(self) -> None:
        if not self._heap or self._loop is None:
            return
        first, tick = self._heap[0][0], self._tick
        wake = math.ceil(first / tick) * tick if tick > 0 else first
        if wake >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self._loop.call_at(wake, self._wake), wake

    def _wake(self) -> None:
        self._timer, self._timer_at = None, math.inf
        if not self._running or self._loop is None:
            return
        heap = self._heap
        now = self._loop.time() + _TIMER_TOLERANCE
        try:
            while heap and heap[0][0] <= now:
                _, generation, key = heapq.heappop(heap)
                entry = self._entries.get(key)
                if entry is None or entry.generation != generation:
                    continue
                self._due(entry, now)
        finally:
            self._arm()

    def _due(self, entry: _Entry, now: float) -> None:
        job = entry.job
        interval = job.params.interval
        late = now - entry.due
        behind = math.floor(late / interval)
        if behind > 0:  # coalesce: of the slots the loop slept through, only the latest may run
            entry.step += behind
            late -= behind * interval
        step = entry.step
        if late > max(1.0, float(int(interval / 2))):
            # coalesce: skip to the next grid point after now, report the slot as missed
            self._plan(entry, time.time())
            self._missed(job.key)
            return
        entry.step += 1
        self._push(entry)
        if job.key in self._started or (entry.task is not None and not entry.task.done()):
            self._missed(job.key)  # the previous run is still going: one run at a time
            return
        # The wall clock decides the slot only when it disagrees by more than a step (it stepped).
        wall_step = math.floor((time.time() - entry.start) / interval + 1e-9)
        at = entry.slot(wall_step if abs(wall_step - step) > 1 else step)
        if entry.last_at is not None and at <= entry.last_at:
            at = entry.last_at + timedelta(seconds=interval)
        entry.last_at = at
        if self._start is not None and self._begin(job, at):
            return
        assert self._loop is not None
        entry.task = self._loop.create_task(self._fire(job, at))

    def _begin(self, job: Job, at: datetime) -> bool:
        """Start ``job`` through ``start``, if it takes it: no task, coroutine or timer per run."""
        assert self._start is not None
        key = job.key
        self._started.add(key)
        try:
            taken = self._start(job, at, functools.partial(self._started.discard, key))
        except Exception:  # one job's bug must not stop its schedule
            log.exception("run of %s failed", key)
            self._started.discard(key)
            return True
        if not taken:
            self._started.discard(key)
        return taken

    async def _fire(self, job: Job, at: datetime) -> None:
        try:
            await self._run(job, at)
        except asyncio.CancelledError:
            raise
        except Exception:  # one job's bug must not stop its schedule
            log.exception("run of %s failed", job.key)

    async def _watch_clock(self) -> None:
        wall, mono = time.time(), time.monotonic()
        while True:
            await asyncio.sleep(CLOCK_CHECK_SECONDS)
            now_wall, now_mono = time.time(), time.monotonic()
            step = (now_wall - wall) - (now_mono - mono)
            wall, mono = now_wall, now_mono
            if abs(step) > CLOCK_STEP_SECONDS:
                with suppress(Exception):  # the watchdog must outlive a scheduler in shutdown
                    self.realign(datetime.now(UTC))
                log.warning("wall clock stepped by %+.1f s: jobs moved to their next grid point", step)
                if self._on_clock_step is not None:
                    self._on_clock_step(step)

    def _missed(self, key: str) -> None:
        log.warning("poll %s missed its slot", key)
        if self._on_misfire is not None:
            self._on_misfire(key)
