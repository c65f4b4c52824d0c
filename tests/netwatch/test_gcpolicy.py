"""The daemon's collector settings: start-up objects frozen, thresholds raised (see netwatch.gcpolicy)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from netwatch.gcpolicy import MIDDLE_THRESHOLD, OLD_THRESHOLD, YOUNG_THRESHOLD, tune_for_daemon


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Give the rest of the test session its collector back."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_collections_are_rarer() -> None:
    gc.unfreeze()
    built_at_start = [{"device": f"r{i}"} for i in range(1000)]  # like the inventory: alive for the run
    tune_for_daemon()
    assert gc.get_freeze_count() >= len(built_at_start)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


@pytest.mark.usefixtures("restored_gc")
def test_cyclic_garbage_made_while_polling_is_collected_without_being_asked() -> None:
    tune_for_daemon()

    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    # As much allocation as one young collection waits for (a poll round's worth): no gc.collect().
    alive: list[list[int]] = [[] for _ in range(YOUNG_THRESHOLD + 1_000)]
    assert gone() is None, "a cycle made after the freeze was left for ever"
    assert len(alive) > YOUNG_THRESHOLD
