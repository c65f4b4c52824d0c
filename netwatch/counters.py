"""Apply a poll's device counters to netwatch's own totals and rates.

The collector reports raw device counters and, in ``details``, what the rates step needs to read
them honestly: each series' width (``counter_bits``), scale (``counter_scale``), the agent's
sysUpTime (``uptime_ticks``) and ifCounterDiscontinuityTime (``discontinuity``). This module feeds
them to :mod:`netwatch.rates` and reads, per series, the total netwatch exports and the last rate.

A target's series keep their slots in the order its polls report them, so a poll finds each
series' slot by position, without a dictionary of series keys: at province scale (600,000 counter
series) a key tuple and a dictionary entry per series were about 60 MB of the daemon's memory.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from typing import Any, Final

from collectors.base import CollectResult, Measurement
from netwatch.rates import CounterColumns, Reading, modulus_of

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]
"""(measurement name, its labels): one counter series of one target."""

SPEED_METRIC = "if_speed_bps"


_NO_NAMES: Final[list[str]] = []
_NO_LABELS: Final[list[Labels]] = []
_NO_COLUMNS: Final = CounterColumns()


class CounterBook:
    """One target's counter series: their names and labels, by slot, and the slots' state."""

    __slots__ = ("columns", "labels", "names", "scales")

    def __init__(self) -> None:
        # A book starts with the shared empty layout: most are an ICMP target's, which never gets a
        # counter (16,000 of them at province scale). Nothing changes a layout in place when it is
        # empty; the first counters give the book one of its own (:meth:`_lay_out`).
        self.names: list[str] = _NO_NAMES
        self.labels: list[Labels] = _NO_LABELS
        self.columns = _NO_COLUMNS
        self.scales: array[float] | None = None
        """Each slot's scale (the columns count in the device's units), or None while every one is 1."""

    def scaled(self) -> Iterator[tuple[SeriesKey, float, float | None]]:
        """Every series with its total and last rate (None when that reading gave none), scaled:
        what /metrics and the interface samples write."""
        scales = self.scales
        columns = self.columns
        for slot, (name, labels, total, rate) in enumerate(
            zip(self.names, self.labels, columns.total, columns.rate, strict=True)
        ):
            scale = 1.0 if scales is None else scales[slot]
            yield (name, labels), total * scale, None if rate != rate else rate * scale

    def apply(self, result: CollectResult, sample_monotonic: float) -> None:
        """Feed every counter of ``result``; series the device no longer reports are forgotten
        after a complete (successful) poll."""
        counters = [m for m in result.measurements if m.kind == "counter"]
        if not counters and not self.names:
            return  # an ICMP round, a thousand a second: nothing to feed, nothing to forget
        if not self._in_place(counters):
            self._lay_out(counters, forget=result.success)
        details: Mapping[str, Any] = result.details
        bits: Mapping[SeriesKey, int] = details.get("counter_bits", {})
        scales: Mapping[SeriesKey, float] = details.get("counter_scale", {})
        discontinuities: Mapping[SeriesKey, int] = details.get("discontinuity", {})
        speeds = {m.labels: m.value for m in result.measurements if m.name == SPEED_METRIC and m.value > 0}
        readings: list[Reading] = []
        for slot, m in enumerate(counters):
            key: SeriesKey = (m.name, m.labels)
            # Hashing a series key walks its labels: skip the lookups that cannot hit.
            scale = scales.get(key, 1) if scales else 1
            speed = speeds.get(m.labels)
            # An octet counter cannot honestly move faster than its link: anything more is a spike.
            max_rate = speed / 8 / scale if speed and m.name.endswith("_octets") else None
            raw = int(m.value // scale) if scale != 1 else int(m.value)
            discontinuity = discontinuities.get(key) if discontinuities else None
            readings.append((slot, raw, modulus_of(bits.get(key, 64)), discontinuity, max_rate))
            if scale != 1 or self.scales is not None:
                self._set_scale(slot, scale)
        self.columns.update_poll(
            readings, sample_monotonic=sample_monotonic, device_uptime_ticks=details.get("uptime_ticks")
        )

    def _in_place(self, counters: list[Measurement]) -> bool:
        """Whether ``counters`` are the book's series in slot order (the usual poll)."""
        names, labels = self.names, self.labels
        if len(counters) != len(names):
            return False
        for slot, m in enumerate(counters):
            if names[slot] != m.name:
                return False
            held = labels[slot]
            if held is not m.labels:
                if held != m.labels:
                    return False
                labels[slot] = m.labels  # the poll's own tuple: the book holds no copy of it
        return True

    def _lay_out(self, counters: list[Measurement], *, forget: bool) -> None:
        """Give the book the slot order of ``counters``; series it held and they lack are kept
        after them, unless ``forget`` (only a complete poll says a series is gone)."""
        old = {key: slot for slot, key in enumerate(zip(self.names, self.labels, strict=True))}
        order: list[int | None] = []
        names: list[str] = []
        labels: list[Labels] = []
        for m in counters:
            order.append(old.pop((m.name, m.labels), None))
            names.append(m.name)
            labels.append(m.labels)
        if not forget:
            for (name, series), slot in old.items():
                order.append(slot)
                names.append(name)
                labels.append(series)
        scales = self.scales
        self.columns = self.columns.taken(order)
        self.names, self.labels = names, labels
        self.scales = None
        if scales is not None and any(slot is not None and scales[slot] != 1 for slot in order):
            self.scales = array("d", (1.0 if slot is None else scales[slot] for slot in order))

    def _set_scale(self, slot: int, scale: float) -> None:
        if self.scales is None:
            self.scales = array("d", [1.0] * len(self.names))
        self.scales[slot] = scale
