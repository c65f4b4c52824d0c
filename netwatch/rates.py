"""Device counters → rates, and netwatch's own monotonic totals.

netwatch never exports a device's raw counter: a 32-bit counter wraps every 34 s on a 1 Gb/s link, a reboot
or a cleared counter starts it again at zero, and Prometheus' ``rate()`` over such a series shows spikes.
Each counter series gets a :class:`CounterTracker` that turns raw readings into a total that only grows,
by the bytes (or packets) that really passed, and a rate over the last poll interval:

- The first reading after start gives no rate and starts the total at 0: netwatch's totals count what
  it saw happen, not the device's history (a restart of netwatch is a counter reset to Prometheus).
- A lower reading of a 32-bit counter is a wrap when the implied delta is plausible: at most ``max_rate``
  × 1.1 over the interval when a link speed is known, else only when sysUpTime shows no reboot.
  A 64-bit counter that goes back was reset (2^64 octets take 468 years at 10 Gb/s).
- A reboot (sysUpTime went back, or is shorter than the time since the last poll) or a changed
  ifCounterDiscontinuityTime is a reset: no rate this time, the total keeps its value, a new baseline.
- A delta that implies more than ``max_rate`` × 1.1 is a spike: dropped, new baseline.
- Time deltas are monotonic (a wall-clock step must not make a rate); a late or early poll only
  changes the interval the delta is divided by.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Iterator
from typing import Final, Literal, NamedTuple

SPIKE_MARGIN: Final = 1.1
"""A rate up to 10 % over the link speed is believable (counter timing jitter); above it, a spike."""
UPTIME_MODULUS: Final = 2**32
"""sysUpTime is TimeTicks (1/100 s, 32 bits): it wraps after 497 days without a reboot."""
UPTIME_SLACK_SECONDS: Final = 2.0
"""How much sysUpTime may lag the poll interval before it counts as a reboot (agent caching, jitter)."""

Reason = Literal["first", "wrap", "reboot", "discontinuity", "reset", "spike", "no_time"]
_MODULI: Final = {32: 2**32, 64: 2**64}


class CounterUpdate(NamedTuple):
    """What one reading did: the running total, the rate (None when none can be trusted), and why.

    ``reason`` is None for an ordinary delta; ``wrap`` comes with a rate; every other reason means no rate.
    """

    total: float
    rate: float | None
    reason: Reason | None


class CounterTracker:
    """The state of one counter series: last reading, its times, and netwatch's total."""

    __slots__ = ("_discontinuity", "_raw", "_time", "_uptime", "rate", "total")

    def __init__(self) -> None:
        self.total: float = 0.0
        self.rate: float | None = None
        """The rate of the last reading (per second), None when it gave none (first, reboot, spike…)."""
        self._raw: int | None = None
        self._time = 0.0
        self._uptime: int | None = None
        self._discontinuity: int | None = None

    def update(
        self,
        raw: int,
        *,
        bits: int,
        sample_monotonic: float,
        device_uptime_ticks: int | None = None,
        discontinuity: int | None = None,
        max_rate: float | None = None,
    ) -> CounterUpdate:
        """Take one reading of the counter (``bits`` 32 or 64) taken at ``sample_monotonic`` seconds.

        ``max_rate`` is the most the counter can grow per second (e.g. ifSpeed / 8 for octets), if known.
        """
        modulus = _MODULI.get(bits)
        if modulus is None:
            raise ValueError("bits must be 32 or 64")
        if not 0 <= raw < modulus:
            raise ValueError(f"a {bits}-bit counter cannot read {raw}")
        last = self._raw
        if last is None:
            self._rebase(raw, sample_monotonic, device_uptime_ticks, discontinuity)
            return CounterUpdate(self.total, None, "first")
        elapsed = sample_monotonic - self._time
        if elapsed <= 0:
            # The same poll seen twice (or a clock that did not move): nothing to divide by; keep the baseline.
            return CounterUpdate(self.total, None, "no_time")
        # Ordinary readings (no reboot or discontinuity check can apply, not lower) skip the classification.
        if raw >= last and device_uptime_ticks is None and discontinuity is None:
            reason: Reason | None = None
        else:
            reason = self._classify(raw, bits, elapsed, device_uptime_ticks, discontinuity, max_rate)
        delta = (raw - last) % modulus
        self._raw, self._time, self._uptime = raw, sample_monotonic, device_uptime_ticks
        if discontinuity is not None:
            self._discontinuity = discontinuity
        if reason is not None and reason != "wrap":
            return CounterUpdate(self.total, None, reason)
        if not delta:
            # An idle counter (errors, discards, unused ports: most series of a device) keeps its
            # total object and shares one zero: no new floats per series per poll to allocate and hold.
            return CounterUpdate(self.total, 0.0, reason)
        rate = delta / elapsed
        if max_rate is not None and rate > max_rate * SPIKE_MARGIN:
            return CounterUpdate(self.total, None, "spike")
        self.total += delta
        return CounterUpdate(self.total, rate, reason)

    def _classify(
        self,
        raw: int,
        bits: int,
        elapsed: float,
        uptime: int | None,
        discontinuity: int | None,
        max_rate: float | None,
    ) -> Reason | None:
        assert self._raw is not None
        if self._rebooted(uptime, elapsed):
            return "reboot"
        if (
            discontinuity is not None
            and self._discontinuity is not None
            and discontinuity != self._discontinuity
        ):
            return "discontinuity"
        if raw >= self._raw:
            return None
        if bits == 64:
            return "reset"
        wrapped = raw + 2**32 - self._raw
        if max_rate is not None:
            return "wrap" if wrapped / elapsed <= max_rate * SPIKE_MARGIN else "reset"
        # No link speed to judge by: trust a wrap only when sysUpTime vouches there was no reboot.
        return "wrap" if uptime is not None and self._uptime is not None else "reset"

    def _rebooted(self, uptime: int | None, elapsed: float) -> bool:
        if uptime is None:
            return False
        if self._uptime is not None and uptime < self._uptime:
            # Gone back: a reboot, unless sysUpTime itself wrapped by about the time that passed.
            advanced = (uptime - self._uptime) % UPTIME_MODULUS / 100
            return abs(advanced - elapsed) > max(UPTIME_SLACK_SECONDS, elapsed * 0.1)
        # Up for less time than has passed since the last poll: it rebooted in between.
        return uptime / 100 + UPTIME_SLACK_SECONDS < elapsed

    def _rebase(self, raw: int, when: float, uptime: int | None, discontinuity: int | None) -> None:
        self._raw = raw
        self._time = when
        self._uptime = uptime
        if discontinuity is not None:
            self._discontinuity = discontinuity


class Rates:
    """Counter trackers by series key (e.g. ``(device, ifindex, "in_octets")``), and how each reading went.

    ``reasons`` counts every non-ordinary reading by reason (``spike``, ``reboot``…) for self-metrics.
    """

    def __init__(self) -> None:
        self._trackers: dict[Hashable, CounterTracker] = {}
        self.reasons: Counter[str] = Counter()

    def update(
        self,
        key: Hashable,
        raw: int,
        *,
        bits: int,
        sample_monotonic: float,
        device_uptime_ticks: int | None = None,
        discontinuity: int | None = None,
        max_rate: float | None = None,
    ) -> CounterUpdate:
        """Feed one reading to the tracker of ``key`` (created on first use)."""
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = CounterTracker()
        result = tracker.update(
            raw,
            bits=bits,
            sample_monotonic=sample_monotonic,
            device_uptime_ticks=device_uptime_ticks,
            discontinuity=discontinuity,
            max_rate=max_rate,
        )
        tracker.rate = result.rate
        if result.reason is not None:
            self.reasons[result.reason] += 1
        return result

    def items(self) -> Iterator[tuple[Hashable, CounterTracker]]:
        """Every series key with its tracker (its ``total`` and last ``rate``)."""
        return iter(self._trackers.items())

    def get(self, key: Hashable) -> CounterTracker | None:
        """The tracker of ``key``, or None when it has never been read."""
        return self._trackers.get(key)

    def total(self, key: Hashable) -> float | None:
        """The running total of ``key``, or None when it has never been read."""
        tracker = self._trackers.get(key)
        return None if tracker is None else tracker.total

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` (an interface or device that is gone); a new reading starts it afresh."""
        self._trackers.pop(key, None)

    def retain(self, keys: Iterable[Hashable]) -> int:
        """Keep only ``keys``; returns how many series were dropped."""
        keep = keys if isinstance(keys, set | frozenset) else set(keys)
        if len(keep) == len(self._trackers) and all(k in self._trackers for k in keep):
            return 0
        gone = [k for k in self._trackers if k not in keep]
        for key in gone:
            del self._trackers[key]
        return len(gone)

    def __len__(self) -> int:
        return len(self._trackers)
