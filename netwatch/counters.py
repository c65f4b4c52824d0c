"""Apply a poll's device counters to netwatch's own totals and rates.

The collector reports raw device counters and, in ``details``, what the rates step needs to read
them honestly: each series' width (``counter_bits``), scale (``counter_scale``), the agent's
sysUpTime (``uptime_ticks``) and ifCounterDiscontinuityTime (``discontinuity``). This module feeds
them to :mod:`netwatch.rates` and keeps, per series, the total netwatch exports and the last rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collectors.base import CollectResult
from netwatch.rates import Rates

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
"""(measurement name, its labels): one counter series of one target."""

SPEED_METRIC = "if_speed_bps"


@dataclass(slots=True)
class CounterBook:
    """One target's counter series: trackers, the totals to export and the rates of the last interval."""

    rates: Rates = field(default_factory=Rates)
    totals: dict[SeriesKey, float] = field(default_factory=dict)
    last_rates: dict[SeriesKey, float | None] = field(default_factory=dict)

    def apply(self, result: CollectResult, sample_monotonic: float) -> None:
        """Feed every counter of ``result``; series the device no longer reports are forgotten
        after a complete (successful) poll."""
        details: Mapping[str, Any] = result.details
        bits: Mapping[SeriesKey, int] = details.get("counter_bits", {})
        scales: Mapping[SeriesKey, float] = details.get("counter_scale", {})
        discontinuities: Mapping[SeriesKey, int] = details.get("discontinuity", {})
        uptime = details.get("uptime_ticks")
        speeds = {m.labels: m.value for m in result.measurements if m.name == SPEED_METRIC and m.value > 0}
        totals, last_rates, update_rate = self.totals, self.last_rates, self.rates.update
        seen: set[SeriesKey] = set()
        for m in result.measurements:
            if m.kind != "counter":
                continue
            key: SeriesKey = (m.name, m.labels)
            # Hashing a series key walks its labels: skip the lookups that cannot hit.
            scale = scales.get(key, 1) if scales else 1
            speed = speeds.get(m.labels)
            # An octet counter cannot honestly move faster than its link: anything more is a spike.
            max_rate = speed / 8 / scale if speed and m.name.endswith("_octets") else None
            update = update_rate(
                key,
                int(m.value // scale) if scale != 1 else int(m.value),
                bits=bits.get(key, 64),
                sample_monotonic=sample_monotonic,
                device_uptime_ticks=uptime,
                discontinuity=discontinuities.get(key) if discontinuities else None,
                max_rate=max_rate,
            )
            totals[key] = update.total * scale
            last_rates[key] = None if update.rate is None else update.rate * scale
            seen.add(key)
        # Only a complete poll says a series is gone; every series it read is in the books, so
        # equal sizes mean nothing to forget (the usual case: skip the scans).
        if result.success and (len(totals) != len(seen) or len(self.rates) != len(seen)):
            self.rates.retain(seen)
            for book in (totals, last_rates):
                for key in [k for k in book if k not in seen]:
                    del book[key]
