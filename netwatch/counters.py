"""Apply a poll's device counters to netwatch's own totals and rates.

The collector reports raw device counters and, in ``details``, what the rates step needs to read
them honestly: each series' width (``counter_bits``), scale (``counter_scale``), the agent's
sysUpTime (``uptime_ticks``) and ifCounterDiscontinuityTime (``discontinuity``). This module feeds
them to :mod:`netwatch.rates` and reads, per series, the total netwatch exports and the last rate.

The totals and rates are views of the trackers, not copies: at province scale (600,000 counter
series) two more dictionaries of floats per series were about 90 MB of the daemon's memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from collectors.base import CollectResult
from netwatch.rates import CounterTracker, Rates, Reading, modulus_of

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
"""(measurement name, its labels): one counter series of one target."""

SPEED_METRIC = "if_speed_bps"


@dataclass(slots=True)
class CounterBook:
    """One target's counter series: trackers, the totals to export and the rates of the last interval."""

    rates: Rates = field(default_factory=Rates)
    scales: dict[SeriesKey, float] = field(default_factory=dict)
    """The scale of each series whose scale is not 1 (the trackers count in the device's units)."""

    @property
    def totals(self) -> Mapping[SeriesKey, float]:
        """netwatch's running total of each series, scaled."""
        return _Totals(self)

    @property
    def last_rates(self) -> Mapping[SeriesKey, float | None]:
        """Each series' rate over the last interval, scaled; None when that reading gave none."""
        return _LastRates(self)

    def scaled(self) -> Iterator[tuple[SeriesKey, float, float | None]]:
        """Every series with its total and last rate, scaled, in one pass (what /metrics and the
        interface samples write)."""
        for raw_key, tracker in self.rates.items():
            key = cast(SeriesKey, raw_key)
            scale = self.scale(key)
            rate = tracker.rate
            yield key, tracker.total * scale, None if rate is None else rate * scale

    def trackers(self) -> Iterator[tuple[SeriesKey, CounterTracker]]:
        """Every series with its tracker, unscaled (see :attr:`scales`): the scrape's loop, which
        reads a million of them and cannot afford a generator step per series."""
        return cast(Iterator[tuple[SeriesKey, CounterTracker]], self.rates.items())

    def scale(self, key: SeriesKey) -> float:
        """The factor from the device's units of ``key`` to the exported ones (1 for most)."""
        return self.scales.get(key, 1.0) if self.scales else 1.0

    def apply(self, result: CollectResult, sample_monotonic: float) -> None:
        """Feed every counter of ``result``; series the device no longer reports are forgotten
        after a complete (successful) poll."""
        if not self.rates and not any(m.kind == "counter" for m in result.measurements):
            return  # an ICMP round, a thousand a second: nothing to feed, nothing to forget
        details: Mapping[str, Any] = result.details
        bits: Mapping[SeriesKey, int] = details.get("counter_bits", {})
        scales: Mapping[SeriesKey, float] = details.get("counter_scale", {})
        discontinuities: Mapping[SeriesKey, int] = details.get("discontinuity", {})
        uptime = details.get("uptime_ticks")
        speeds = {m.labels: m.value for m in result.measurements if m.name == SPEED_METRIC and m.value > 0}
        book_scales = self.scales
        seen: set[SeriesKey] = set()
        readings: list[Reading] = []
        for m in result.measurements:
            if m.kind != "counter":
                continue
            key: SeriesKey = (m.name, m.labels)
            # Hashing a series key walks its labels: skip the lookups that cannot hit.
            scale = scales.get(key, 1) if scales else 1
            speed = speeds.get(m.labels)
            # An octet counter cannot honestly move faster than its link: anything more is a spike.
            max_rate = speed / 8 / scale if speed and m.name.endswith("_octets") else None
            raw = int(m.value // scale) if scale != 1 else int(m.value)
            discontinuity = discontinuities.get(key) if discontinuities else None
            readings.append((key, raw, modulus_of(bits.get(key, 64)), discontinuity, max_rate))
            if scale != 1:
                book_scales[key] = scale
            elif book_scales:
                book_scales.pop(key, None)
            seen.add(key)
        self.rates.update_poll(readings, sample_monotonic=sample_monotonic, device_uptime_ticks=uptime)
        # Only a complete poll says a series is gone; every series it read is in the book, so
        # equal sizes mean nothing to forget (the usual case: skip the scans).
        if result.success and len(self.rates) != len(seen):
            self.rates.retain(seen)
            for key in [k for k in book_scales if k not in seen]:
                del book_scales[key]


class _View(Mapping[SeriesKey, Any]):
    """A read-only view of a book's trackers."""

    __slots__ = ("_book",)

    def __init__(self, book: CounterBook) -> None:
        self._book = book

    def _value(self, key: SeriesKey, tracker: CounterTracker) -> Any:
        raise NotImplementedError

    def __getitem__(self, key: SeriesKey) -> Any:
        tracker = self._book.rates.get(key)
        if tracker is None:
            raise KeyError(key)
        return self._value(key, tracker)

    def __iter__(self) -> Iterator[SeriesKey]:
        return (key for key, _ in self._book.rates.items())  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self._book.rates)

    def items(self) -> Iterator[tuple[SeriesKey, Any]]:  # type: ignore[override]
        """(key, value) pairs in one pass over the trackers."""
        value = self._value
        for key, tracker in self._book.rates.items():
            yield key, value(key, tracker)  # type: ignore[misc,arg-type]


class _Totals(_View):
    def _value(self, key: SeriesKey, tracker: CounterTracker) -> float:
        return tracker.total * self._book.scale(key)


class _LastRates(_View):
    def _value(self, key: SeriesKey, tracker: CounterTracker) -> float | None:
        rate = tracker.rate
        return None if rate is None else rate * self._book.scale(key)
