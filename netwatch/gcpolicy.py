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
  and is still alive), a full one every hour, and none in between;
- once every job has run twice (the steady state: counter trackers, static caches, label memos all
  exist) the heap is collected and frozen once more, so a full collection scans only what changed
  since, a few hundred thousand objects, not millions.

A frozen object is still freed by reference counting; only a reference cycle alive at a freeze and
dead later is never collected, a bounded one-off (two freezes per run), never a growing leak.

Why no middle collections: reference cycles are rare here. A 7-minute province soak freed 400 to
450 objects in all (``netwatch_gc_collected_objects_total``), whatever the schedule, and middle
passes forced into a run without them freed 10 objects each (cycles that outlive a young pass are
not piling up in the middle generation). So a pass is almost pure cost: about 2 µs per object it
finds alive. What decides is how long each pass holds the loop, because an ICMP poll is late
past a tenth of its 10 s interval. Soaks of the same load, 7 minutes each (``benchmarks/soak.py``):

- young every 5 s, middle every minute, full every 10 minutes: 41.3 s of pauses, middle ones
  1.5 s; 98.2 % of polls on time;
- young every 30 s, middle every minute: 21.0 s, passes of 1.2 and 1.7 s; 97.5 % on time;
- one pass every minute: 13.9 s, passes of 2.0 s; 97.6 % on time;
- young every 5 s, no middle: 35.9 s, passes of 0.46 s; **99.5 % on time**; 6 wake-ups of the
  loop more than 1 s late in the whole run (``netwatch_event_loop_lag_seconds``), the start-up
  freeze and warm-up included.

Why 5 s and not 1 s: an ICMP round's objects live about 4 s: collected every second, nearly all
of them were found alive and scanned (16.5 % of the loop in the collector). The hourly full pass
takes about 3 s: the price of freeing cycles that outlived a young pass within the hour. Each
pass is timed into :data:`STATS` (``netwatch_gc_seconds_total`` on /metrics).
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field

PASS_SECONDS = 5.0
"""Seconds between young collections: each scans what was allocated since and is still alive."""
FULL_EVERY = 720
"""Young collections per full one (every hour): reference cycles that outlived a young pass, such as
an exception and its traceback kept by a slow poll, are freed within the hour."""


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
            STATS.collect(2 if count % FULL_EVERY == 0 else 0)
    finally:
        gc.enable()
