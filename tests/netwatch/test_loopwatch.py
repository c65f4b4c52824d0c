"""The event loop's wake-up lag: a stall of the loop shows on /metrics as a late wake-up."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

from netwatch.exporter import make_registry
from netwatch.loopwatch import watch_loop
from tests.netwatch.test_pipeline import make


async def test_a_stalled_loop_is_seen_as_one_late_wake_up_on_metrics() -> None:
    _, state, _, _ = make(None)
    watch = asyncio.create_task(watch_loop(state.loop_lag, tick=0.02))
    try:
        await asyncio.sleep(0.2)
        quiet = state.loop_lag.count
        time.sleep(0.4)  # what a long garbage collection pass does to the loop
        await asyncio.sleep(0.1)
    finally:
        watch.cancel()
        with suppress(asyncio.CancelledError):
            await watch
    registry = make_registry(state)
    count = registry.get_sample_value("netwatch_event_loop_lag_seconds_count")
    under_quarter = registry.get_sample_value("netwatch_event_loop_lag_seconds_bucket", {"le": "0.25"})
    assert quiet >= 5, "the watch wakes up every tick"
    assert count is not None and under_quarter is not None
    assert count - under_quarter == 1, "exactly the one stall was later than 0.25 s"
    total = registry.get_sample_value("netwatch_event_loop_lag_seconds_sum")
    assert total is not None and 0.35 <= total < 1.0
