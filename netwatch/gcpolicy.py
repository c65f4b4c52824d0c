"""When the cyclic garbage collector runs in a long-running poller with a large, steady heap.

At province scale the daemon holds millions of long-lived objects (counter trackers, cached static
columns, the latest gauges) and replaces hundreds of thousands of others every minute. CPython
3.11 starts a collection when *net* allocations pass a threshold: a poller that frees about as
much as it allocates rarely crosses it, so each young collection, when it came, found 50,000 to
600,000 objects; middle ones a million; a full one scanned everything. In the province soak
(``benchmarks/soak.py``) those were pauses of 0.7 s, 1.5 s and 2.9 s on the event loop, the
longest followed by a 23-second stall as every timer that had fallen due fired at once, and about
8 % of a core in the collector. Nearly all of that garbage is freed by reference counting anyway.

So the daemon runs the collector on the event loop's clock instead:

- at start, everything built so far (modules, inventory, profiles) is frozen: never scanned again;
- automatic collection is off; a young collection runs every 5 s (only what was allocated since
  and is still alive), a middle one every minute, a full one every 10 minutes;
- once every job has run twice (the steady state: counter trackers, static caches, label memos all
  exist) the heap is collected and frozen once more, so a full collection scans only what changed
  since, a few hundred thousand objects, not millions.

A frozen object is still freed by reference counting; only a reference cycle alive at a freeze and
dead later is never collected, a bounded one-off (two freezes per run), never a growing leak.

Why 5 s and not 1 s: a young collection's cost is the objects it finds alive, and an ICMP round's
objects live about 4 s: collected every second, nearly all of them were found alive and scanned;
every 5 s, many are gone first. Blocking py-spy profiles of the soak put 16.5 % of the loop's
samples in ``gc.collect`` with 1 s, 9 % with 5 s. Each pass is timed into :data:`STATS`
(``netwatch_gc_seconds_total`` on /metrics).
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field

YOUNG_SECONDS = 5.0
"""Seconds between young collections: each scans what was allocated since and is still alive."""
MIDDLE_EVERY = 12
"""Young collections per middle one (every minute)."""
FULL_EVERY = 10
"""Middle collections per full one (every 10 minutes): reference cycles that lived long enough to be
promoted, such as an exception and its traceback kept by a slow poll, are freed within minutes."""


@dataclass
class CollectionStats:
    """Collections the schedule ran and the seconds they took, by generation (0 young, 2 full)."""

    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def collect(self, generation: int) -> None:
        """Run one collection of ``generation`` and count it."""
        started = time.perf_counter()
        gc.collect(generation)
        self.seconds[generation] += time.perf_counter() - started
        self.collections[generation] += 1


STATS = CollectionStats()
"""The process's collections since start (one collector per process, like ``gc`` itself)."""
SETTLE_BOUNDS = (30.0, 900.0)
"""The steady-state freeze waits two rounds of the longest job interval, within these seconds."""


def tune_for_daemon() -> None:
    """Freeze what start-up built and switch automatic collection off: :func:`run_collections`
    takes over. Call once, when the daemon is about to poll."""
    gc.collect()
    gc.freeze()
    gc.disable()


def settle_after(intervals: list[float]) -> float:
    """Seconds until the steady state: two rounds of the longest interval, within ``SETTLE_BOUNDS``."""
    low, high = SETTLE_BOUNDS
    return min(max(2 * max(intervals, default=0.0), low), high)


async def run_collections(settle_seconds: float, *, young_seconds: float = YOUNG_SECONDS) -> None:
    """Run the collector on the loop's clock until cancelled, then hand it back to CPython.

    Each pass is counted and timed in :data:`STATS`.
    """
    loop = asyncio.get_running_loop()
    settle_at: float | None = loop.time() + settle_seconds
    count = 0
    try:
        while True:
            await asyncio.sleep(young_seconds)
            if settle_at is not None and loop.time() >= settle_at:
                STATS.collect(2)
                gc.freeze()
                settle_at = None
                continue
            count += 1
            generation = (
                2 if count % (MIDDLE_EVERY * FULL_EVERY) == 0 else 1 if count % MIDDLE_EVERY == 0 else 0
            )
            STATS.collect(generation)
    finally:
        gc.enable()
