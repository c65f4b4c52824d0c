"""The latest state of every poll, read by the exporter at scrape time.

The pipeline writes here on the event loop; the exporter only reads (it may render off the loop,
so values are replaced, never mutated in place, and readers iterate over copies).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from collectors.base import CollectResult
from netwatch.config.inventory import Inventory, Job
from netwatch.counters import CounterBook
from netwatch.health import TargetHealth
from netwatch.sitehealth import SiteStatus

LAG_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(slots=True)
class JobState:
    """What netwatch knows now about one target × collector."""

    job: Job
    health: TargetHealth
    last_result: CollectResult | None = None
    last_scheduled_at: datetime | None = None
    last_started_at: datetime | None = None
    counters: dict[str, float] = field(default_factory=dict)
    book: CounterBook = field(default_factory=CounterBook)
    unanswered: int = 0
    """Polls in a row that got no answer (reason ``timeout``)."""
    resume_at: datetime | None = None
    """While the target is polled less often (``BackoffParams``): its next slot polled; None otherwise."""
    recorded: int = 0
    """Polls recorded into this state since start: a new number means new values, so the exporter
    writes the target's samples again instead of reusing the text of its last scrape."""


@dataclass(slots=True)
class LagHistogram:
    """Cumulative histogram of poll start lag (actual start − scheduled start), in seconds."""

    buckets: tuple[float, ...] = LAG_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        """Count one poll's lag."""
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs ending with +Inf, as Prometheus wants them."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*map(str, self.buckets), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, float(running)))
        return out


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """One site's month to date as the availability report computes it, kept for the exporter."""

    month: str
    availability: float | None
    """(up + degraded) ÷ (period − maintenance − unknown); None when nothing could be judged."""
    down_seconds: float


@dataclass(slots=True)
class LatestState:
    """Every job's state plus netwatch's own counters."""

    inventory: Inventory
    jobs: dict[str, JobState] = field(default_factory=dict)
    poll_errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    lag: LagHistogram = field(default_factory=LagHistogram)
    loop_lag: LagHistogram = field(default_factory=LagHistogram)
    """How late the event loop woke up (netwatch.loopwatch)."""
    polls_total: int = 0
    polls_late_total: int = 0
    misfires_total: int = 0
    backed_off_total: Counter[str] = field(default_factory=Counter)
    """Slots not polled by collector kind, their target not answering (see ``BackoffParams``)."""
    clock_steps_total: int = 0
    """Wall-clock steps the scheduler's watchdog saw (each one realigned every job)."""
    config_last_reload_successful: bool = True
    disabled_kinds: dict[str, str] = field(default_factory=dict)
    sites: dict[str, SiteStatus] = field(default_factory=dict)
    notifications_failed: Mapping[str, int] = field(default_factory=dict)
    month_figures: Mapping[str, MonthFigures] = field(default_factory=dict)
    """This month's figures per site code, replaced whole by the daemon's periodic computation."""
    owned_sites: frozenset[str] | None = None
    """Sites this instance exports (``--shard``: its own); None: every site of the inventory."""
    owned_devices: frozenset[str] | None = None
    """Devices this instance exports (``--shard``: those it polls); None: every device."""

    def job_state(self, job: Job) -> JobState:
        """The state of ``job``, created on first use with the rules of its site."""
        state = self.jobs.get(job.key)
        if state is None or state.job != job:
            rules = self.inventory.site_of_device(job.target.key).rules
            health = state.health if state is not None else TargetHealth(rules=rules)
            health.rules = rules
            state = JobState(
                job=job,
                health=health,
                counters=state.counters if state else {},
                book=state.book if state else CounterBook(),
                unanswered=state.unanswered if state else 0,
                resume_at=state.resume_at if state else None,
                recorded=state.recorded if state else 0,
            )
            self.jobs[job.key] = state
        return state

    def replace_inventory(self, inventory: Inventory) -> None:
        """Swap in a new inventory, keeping the state of jobs that remain and dropping the rest."""
        self.inventory = inventory
        keep = {job.key: job for job in inventory.jobs}
        for key in list(self.jobs):
            if key not in keep:
                del self.jobs[key]
        for job in keep.values():
            self.job_state(job)
