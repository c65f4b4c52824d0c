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
- automatic collection is off; once a minute a pass collects the young and middle generations
  together (what was allocated since the last pass and is still alive), and every 10 minutes a
  full one;
- once every job has run twice (the steady state: counter trackers, static caches, label memos all
  exist) the heap is collected and frozen once more, so a full collection scans only what changed
  since, a few hundred thousand objects, not millions.

A frozen object is still freed by reference counting; only a reference cycle alive at a freeze and
dead later is never collected, a bounded one-off (two freezes per run), never a growing leak.

Why a minute: a pass costs about 2 µs per object it finds alive, and what it frees is next to
nothing. Reference cycles are rare here: a 7-minute province soak freed 453 objects in all
(``netwatch_gc_collected_objects_total``). The objects a pass finds are the polls in flight and the
latest results, which live 5 to 60 s: the rarer the pass, the more of them are already freed by
reference counting. Soaks of the same load, 7 minutes each: a young pass every 1 s put 16.5 % of
the loop in the collector; every 5 s, 41.3 s of pauses (young 69 × 422 ms, middle 6 × 1.5 s);
every 30 s with a middle one each minute, 21.0 s (young 6 × 1.2 s, middle 6 × 1.7 s). Each pass
is timed into :data:`STATS` (``netwatch_gc_seconds_total`` on /metrics).
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field

PASS_SECONDS = 60.0
"""Seconds between two passes over the young and middle generations."""
FULL_EVERY = 10
"""Passes per full collection (every 10 minutes): reference cycles that lived long enough to be
promoted, such as an exception and its traceback kept by a slow poll, are freed within minutes."""


@dataclass
class CollectionStats:
    """Collections the schedule ran and the seconds they took, by generation (0 young, 2 full)."""

    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    collected: list[int] = field(default_factory=lambda: [0, 0, 0])
    """Unreachable objects (reference cycles) each generation's passes found and freed."""

    def collect(self, generation: int) -> None:
        """Run one collection of ``generation`` and count it."""
        started = time.perf_counter()
        found = gc.collect(generation)
        self.seconds[generation] += time.perf_counter() - started
        self.collections[generation] += 1
        self.collected[generation] += found


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


async def run_collections(settle_seconds: float, *, pass_seconds: float = PASS_SECONDS) -> None:
    """Run the collector on the loop's clock until cancelled, then hand it back to CPython.

    Each pass is counted and timed in :data:`STATS`.
    """
    loop = asyncio.get_running_loop()
    settle_at: float | None = loop.time() + settle_seconds
    count = 0
    try:
        while True:
            await asyncio.sleep(pass_seconds)
            if settle_at is not None and loop.time() >= settle_at:
                STATS.collect(2)
                gc.freeze()
                settle_at = None
                continue
            count += 1
            STATS.collect(2 if count % FULL_EVERY == 0 else 1)
    finally:
        gc.enable()
