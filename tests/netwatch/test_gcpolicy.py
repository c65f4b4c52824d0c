"""The daemon's collector schedule: start-up and steady state frozen, collections on the loop's clock."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from netwatch.gcpolicy import (
    SETTLE_BOUNDS,
    STATS,
    run_collections,
    settle_after,
    tune_for_daemon,
)


@pytest.fixture(autouse=True)
def restored_gc() -> Iterator[None]:
    """Give the rest of the test session its collector back."""
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A reference cycle nobody holds: only the cyclic collector can free it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_start_up_objects_are_frozen_and_automatic_collection_is_off() -> None:
    gc.unfreeze()
    built_at_start = [{"device": f"r{i}"} for i in range(1000)]  # like the inventory: alive for the run
    tune_for_daemon()
    assert gc.get_freeze_count() >= len(built_at_start)
    assert not gc.isenabled()
    gone = cycle()
    _ = [[] for _ in range(100_000)]  # allocation that would have started automatic collections
    assert gone() is not None, "automatic collection still runs"


def test_settling_waits_two_rounds_of_the_longest_interval() -> None:
    assert settle_after([10.0, 60.0, 300.0]) == 600.0
    assert settle_after([10.0]) == SETTLE_BOUNDS[0]
    assert settle_after([86_400.0]) == SETTLE_BOUNDS[1]
    assert settle_after([]) == SETTLE_BOUNDS[0]


async def test_the_schedule_collects_cycles_freezes_the_steady_state_and_hands_back() -> None:
    tune_for_daemon()
    steady = [Node() for _ in range(5_000)]  # like the trackers the first polls make
    frozen_at_start = gc.get_freeze_count()
    counted = list(STATS.collections)
    collected = sum(STATS.collected)
    task = asyncio.create_task(run_collections(0.05, pass_seconds=0.01))
    try:
        # The steady-state freeze comes once the settle time has passed.
        for _ in range(200):
            await asyncio.sleep(0.01)
            if gc.get_freeze_count() >= frozen_at_start + len(steady):
                break
        assert gc.get_freeze_count() >= frozen_at_start + len(steady)
        # A cycle made while polling is freed by the schedule's young collections.
        gone = cycle()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if gone() is None:
                break
        assert gone() is None, "a cycle made after the freeze was never collected"
        assert not gc.isenabled()
        assert STATS.collections[0] > counted[0] and STATS.collections[2] > counted[2], "passes are counted"
        assert STATS.seconds[0] > 0
        assert STATS.collections[1] == counted[1], "no middle passes: each held the loop 1.5 s"
        assert sum(STATS.collected) > collected, "the freed cycle is counted"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert gc.isenabled(), "a stopped daemon must leave automatic collection on"
