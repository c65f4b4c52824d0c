"""Counter deltas → rates and totals: table-driven cases and properties over arbitrary traffic."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netwatch.rates import CounterColumns, CounterUpdate

WRAP = 2**32
GBIT_BYTES = 1e9 / 8  # max_rate of a 1 Gb/s link's octet counter


@dataclass(frozen=True)
class Reading:
    raw: int
    at: float
    uptime: int | None = None
    discontinuity: int | None = None


class Series:
    """One counter series: a slot of its own columns, read one reading at a time."""

    def __init__(self) -> None:
        self.columns = CounterColumns()
        self.slot = self.columns.add()

    def update(self, raw: int, **options: Any) -> CounterUpdate:
        return self.columns.update(self.slot, raw, **options)


def feed(readings: list[Reading], *, bits: int = 32, max_rate: float | None = None) -> list[CounterUpdate]:
    tracker = Series()
    return [
        tracker.update(
            r.raw,
            bits=bits,
            sample_monotonic=r.at,
            device_uptime_ticks=r.uptime,
            discontinuity=r.discontinuity,
            max_rate=max_rate,
        )
        for r in readings
    ]


CASES: dict[str, tuple[list[Reading], dict[str, Any], list[CounterUpdate]]] = {
    "first sample gives no rate and a zero total": (
        [Reading(123_456, 10.0)], {}, [CounterUpdate(0.0, None, "first")],
    ),
    "ordinary delta": (
        [Reading(1000, 0.0), Reading(7000, 60.0)], {}, [CounterUpdate(0.0, None, "first"), CounterUpdate(6000.0, 100.0, None)],
    ),
    "32-bit wrap within the link speed": (
        [Reading(WRAP - 1000, 0.0), Reading(2000, 60.0)], {"max_rate": GBIT_BYTES},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(3000.0, 50.0, "wrap")],
    ),
    "32-bit wrap without a link speed, uptime vouches for it": (
        [Reading(WRAP - 1000, 0.0, uptime=100_000), Reading(2000, 60.0, uptime=106_000)], {},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(3000.0, 50.0, "wrap")],
    ),
    "32-bit going back without speed or uptime is a reset, not a 4 GB burst": (
        [Reading(WRAP - 1000, 0.0), Reading(2000, 60.0), Reading(2600, 120.0)], {},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(0.0, None, "reset"), CounterUpdate(600.0, 10.0, None)],
    ),
    "32-bit going back by more than the link could carry is a reset": (
        [Reading(3_000_000_000, 0.0), Reading(5, 1.0)], {"max_rate": 1e6},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(0.0, None, "reset")],
    ),
    "64-bit counter going back is always a reset": (
        [Reading(10**12, 0.0), Reading(500, 60.0), Reading(1100, 120.0)], {"bits": 64, "max_rate": GBIT_BYTES},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(0.0, None, "reset"), CounterUpdate(600.0, 10.0, None)],
    ),
    "reboot: uptime went back, the total keeps its value": (
        [Reading(1000, 0.0, uptime=500_000), Reading(4000, 60.0, uptime=506_000), Reading(300, 120.0, uptime=2_000),
         Reading(900, 180.0, uptime=8_000)],
        {"max_rate": GBIT_BYTES},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(3000.0, 50.0, None), CounterUpdate(3000.0, None, "reboot"),
         CounterUpdate(3600.0, 10.0, None)],
    ),
    "reboot: up for less time than since the last poll, counter higher than before": (
        [Reading(1000, 0.0, uptime=1_000), Reading(90_000, 300.0, uptime=5_000)], {},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(0.0, None, "reboot")],
    ),
    "sysUpTime wrapping after 497 days is not a reboot": (
        [Reading(1000, 0.0, uptime=WRAP - 3_000), Reading(4000, 60.0, uptime=3_000)], {},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(3000.0, 50.0, None)],
    ),
    "changed ifCounterDiscontinuityTime is a reset": (
        [Reading(1000, 0.0, discontinuity=0), Reading(5000, 60.0, discontinuity=4200), Reading(5600, 120.0, discontinuity=4200)],
        {},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(0.0, None, "discontinuity"), CounterUpdate(600.0, 10.0, None)],
    ),
    "spike above the link speed is dropped, baseline moves on": (
        [Reading(0, 0.0), Reading(10**9, 1.0), Reading(10**9 + 500, 2.0)], {"max_rate": 1e6},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(0.0, None, "spike"), CounterUpdate(500.0, 500.0, None)],
    ),
    "late poll: same counter delta, longer interval": (
        [Reading(0, 0.0), Reading(6000, 60.0), Reading(12_000, 180.0)], {},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(6000.0, 100.0, None), CounterUpdate(12_000.0, 50.0, None)],
    ),
    "the same poll fed twice divides by nothing": (
        [Reading(0, 5.0), Reading(100, 5.0), Reading(200, 7.0)], {},
        [CounterUpdate(0.0, None, "first"), CounterUpdate(0.0, None, "no_time"), CounterUpdate(200.0, 100.0, None)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_counter_cases(name: str) -> None:
    readings, options, expected = CASES[name]
    assert feed(readings, **options) == expected


@pytest.mark.parametrize("name", list(CASES))
def test_a_poll_fed_in_one_batch_reads_each_case_the_same(name: str) -> None:
    readings, options, expected = CASES[name]
    columns = CounterColumns()
    slot = columns.add()
    modulus = 2 ** options.get("bits", 32)
    got, reasons = [], Counter[str]()
    for r in readings:
        reading = (slot, r.raw, modulus, r.discontinuity, options.get("max_rate"))
        reasons += columns.update_poll([reading], sample_monotonic=r.at, device_uptime_ticks=r.uptime)
        got.append((columns.total[slot], columns.rate_of(slot)))
    assert got == [(u.total, u.rate) for u in expected]
    assert reasons == Counter(u.reason for u in expected if u.reason is not None)


def test_a_reboot_is_judged_against_each_series_own_last_reading() -> None:
    """One poll, one sysUpTime: a series last read before the reboot restarts, one first read after
    it keeps counting. A verdict shared by the whole poll would get one of them wrong."""
    columns = CounterColumns()
    old, new = columns.add(), columns.add()
    columns.update_poll([(old, 1_000, WRAP, None, None)], sample_monotonic=0.0, device_uptime_ticks=1_000_000)
    # the device reboots at t=50; a new interface is first read at t=100, 50 s after
    columns.update_poll([(new, 5_000, WRAP, None, None)], sample_monotonic=100.0, device_uptime_ticks=5_000)
    both = [(old, 3_000, WRAP, None, None), (new, 11_000, WRAP, None, None)]
    reasons = columns.update_poll(both, sample_monotonic=160.0, device_uptime_ticks=11_000)
    assert (columns.total[old], columns.rate_of(old)) == (0.0, None)
    assert (columns.total[new], columns.rate_of(new)) == (6_000.0, 100.0)
    assert reasons == Counter({"reboot": 1})


def test_slots_keep_series_apart() -> None:
    columns = CounterColumns()
    a, b = columns.add(), columns.add()
    for slot, raw in ((a, 0), (b, 100)):
        columns.update(slot, raw, bits=64, sample_monotonic=0.0)
    assert columns.update(a, 600, bits=64, sample_monotonic=60.0) == CounterUpdate(600.0, 10.0, None)
    assert columns.update(b, 50, bits=64, sample_monotonic=60.0) == CounterUpdate(0.0, None, "reset")
    moved = columns.taken([b, None, a])
    assert list(moved.total) == [0.0, 0.0, 600.0]
    assert moved.update(2, 1_200, bits=64, sample_monotonic=120.0) == CounterUpdate(1_200.0, 10.0, None)
    assert moved.update(1, 7, bits=64, sample_monotonic=120.0) == CounterUpdate(0.0, None, "first")


def test_a_discontinuity_time_that_is_not_timeticks_is_ignored() -> None:
    """An agent answering garbage in ifCounterDiscontinuityTime neither crashes the columns nor
    resets the series."""
    series = Series()
    series.update(1_000, bits=64, sample_monotonic=0.0, discontinuity=-1)
    got = series.update(7_000, bits=64, sample_monotonic=60.0, discontinuity=2**70)
    assert got == CounterUpdate(6_000.0, 100.0, None)


def test_an_idle_counter_reads_zero_and_keeps_its_total_then_counts_on() -> None:
    tracker = Series()
    tracker.update(1_000, bits=32, sample_monotonic=0.0)
    tracker.update(1_500, bits=32, sample_monotonic=60.0)
    for t in (120.0, 180.0):  # idle: the same reading, a rate of zero and the total unchanged
        assert tracker.update(1_500, bits=32, sample_monotonic=t) == CounterUpdate(500.0, 0.0, None)
    assert tracker.update(1_800, bits=32, sample_monotonic=240.0) == CounterUpdate(800.0, 5.0, None)


def test_impossible_readings_are_refused() -> None:
    with pytest.raises(ValueError, match="32-bit"):
        Series().update(WRAP, bits=32, sample_monotonic=0.0)
    with pytest.raises(ValueError, match="bits"):
        Series().update(1, bits=16, sample_monotonic=0.0)


# -- properties -----------------------------------------------------------------------------------

MAX_RATE = 1e8  # bytes/s: at most ~40 s per 32-bit wrap, so intervals stay below one wrap
intervals = st.lists(
    st.tuples(st.floats(min_value=0.5, max_value=40.0), st.floats(min_value=0.0, max_value=1.0)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, WRAP - 1), uptime0=st.integers(0, WRAP - 1), steps=intervals, use_speed=st.booleans()
)
def test_a_wrapping_counter_polled_often_enough_gives_exact_totals_and_rates(
    start: int, uptime0: int, steps: list[tuple[float, float]], use_speed: bool
) -> None:
    tracker = Series()
    first = tracker.update(
        start, bits=32, sample_monotonic=1000.0, device_uptime_ticks=uptime0, max_rate=MAX_RATE
    )
    assert first.rate is None
    now, true_total, uptime = 1000.0, 0, uptime0
    for dt, share in steps:
        increment = int(share * min(MAX_RATE * dt, WRAP - 1))
        before, now = now, now + dt
        uptime = (uptime + round(dt * 100)) % WRAP
        true_total += increment
        update = tracker.update(
            (start + true_total) % WRAP,
            bits=32,
            sample_monotonic=now,
            device_uptime_ticks=uptime,
            max_rate=MAX_RATE if use_speed else None,
        )
        assert update.total == true_total
        assert update.rate == increment / (now - before)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.5, max_value=40.0),
            st.floats(min_value=0.0, max_value=1.0),
            st.booleans(),  # reboot before this reading
            st.integers(0, WRAP - 1),  # where the counter restarts after it
        ),
        min_size=1,
        max_size=60,
    ),
    bits=st.sampled_from([32, 64]),
)
def test_with_reboots_the_total_never_decreases_and_no_rate_exceeds_the_link(
    steps: list[tuple[float, float, bool, int]], bits: int
) -> None:
    tracker = Series()
    raw, now, uptime = 0, 0.0, 360_000
    previous = tracker.update(
        raw, bits=bits, sample_monotonic=now, device_uptime_ticks=uptime, max_rate=MAX_RATE
    )
    assert previous.rate is None
    for dt, share, reboot, restart in steps:
        if reboot:
            # Up for less than the interval by more than the slack (2 s) a reboot needs to be told apart.
            dt += 3.0
            raw, uptime = restart % 2**bits, int(share * (dt - 2.5) * 100)
        else:
            raw = (raw + int(share * min(MAX_RATE * dt, WRAP - 1))) % 2**bits
            uptime += round(dt * 100)
        now += dt
        update = tracker.update(
            raw, bits=bits, sample_monotonic=now, device_uptime_ticks=uptime, max_rate=MAX_RATE
        )
        assert update.total >= previous.total
        assert update.rate is None or 0 <= update.rate <= MAX_RATE * (
            1 + 1e-9
        )  # float rounding of delta / dt
        if reboot:
            assert update.rate is None
        previous = update
