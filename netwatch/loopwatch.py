"""How late the event loop wakes up: how long any poll may wait behind whatever holds the loop.

Every poll, probe and reply waits for the one event loop. A sleep of ``TICK`` seconds that comes
back late by *x* means every timer due in that window waited up to *x*: a garbage collection pass,
a long render step, a saturated loop. ``netwatch_event_loop_lag_seconds`` shows it before polls go
late (an ICMP poll is late past a tenth of its interval), and tells a stall from a slow target.
"""

from __future__ import annotations

import asyncio

from netwatch.state import LagHistogram

TICK = 0.1
"""Seconds between two wake-ups: often enough to catch a stall of a tenth of an ICMP interval."""


async def watch_loop(histogram: LagHistogram, tick: float = TICK) -> None:
    """Observe each wake-up's delay into ``histogram`` until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        asleep = loop.time()
        await asyncio.sleep(tick)
        histogram.observe(max(0.0, loop.time() - asleep - tick))
