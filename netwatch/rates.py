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


Reading = tuple[Hashable, int, int, int | None, float | None]
"""One counter reading of a poll, for :meth:`Rates.update_poll`: (series key, raw value, modulus
``2**bits``, ifCounterDiscontinuityTime or None, the most it can grow per second or None). A plain
tuple: a poll builds about a hundred, and a named tuple costs ten times more to build."""


def modulus_of(bits: int) -> int:
    """``2**bits`` for a 32- or 64-bit counter; ValueError for any other width."""
    modulus = _MODULI.get(bits)
    if modulus is None:
        raise ValueError("bits must be 32 or 64")
    return modulus


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
        reason = self.step(
            raw, modulus_of(bits), sample_monotonic, device_uptime_ticks, discontinuity, max_rate
        )
        return CounterUpdate(self.total, self.rate, reason)

    @property
    def baseline(self) -> tuple[int | None, float]:
        """(sysUpTime, monotonic time) of the last reading: series read in the same poll share it,
        and so share the reboot verdict of the next one (see :meth:`Rates.update_poll`)."""
        return self._uptime, self._time

    def rebooted(self, uptime: int | None, sample_monotonic: float) -> bool:
        """Whether sysUpTime ``uptime`` at ``sample_monotonic`` shows a reboot since the last reading."""
        return self._rebooted(uptime, sample_monotonic - self._time)

    def step(
        self,
        raw: int,
        modulus: int,
        sample_monotonic: float,
        uptime: int | None,
        discontinuity: int | None,
        max_rate: float | None,
        rebooted: bool | None = None,
    ) -> Reason | None:
        """:meth:`update` with positional arguments, the counter's modulus (2**bits) and, when the
        caller judged it already, the reboot verdict; sets ``total`` and ``rate``, returns the reason.

        The one implementation of the rules above: a poll feeds about 100 series through it.
        """
        if not 0 <= raw < modulus:
            raise ValueError(f"a {modulus.bit_length() - 1}-bit counter cannot read {raw}")
        last = self._raw
        if last is None:
            self._rebase(raw, sample_monotonic, uptime, discontinuity)
            self.rate = None
            return "first"
        elapsed = sample_monotonic - self._time
        if elapsed <= 0:
            # The same poll seen twice (or a clock that did not move): nothing to divide by; keep the baseline.
            self.rate = None
            return "no_time"
        if rebooted is None:
            rebooted = self._rebooted(uptime, elapsed)
        # Ordinary readings (no reboot, same discontinuity time, not lower) skip the classification.
        if raw >= last and not rebooted and (discontinuity is None or discontinuity == self._discontinuity):
            reason: Reason | None = None
        else:
            reason = self._classify(raw, modulus, elapsed, uptime, discontinuity, max_rate, rebooted)
        delta = (raw - last) % modulus
        self._raw, self._time, self._uptime = raw, sample_monotonic, uptime
        if discontinuity is not None:
            self._discontinuity = discontinuity
        if reason is not None and reason != "wrap":
            self.rate = None
            return reason
        if not delta:
            # An idle counter (errors, discards, unused ports: most series of a device) keeps its
            # total object and shares one zero: no new floats per series per poll to allocate and hold.
            self.rate = 0.0
            return reason
        rate = delta / elapsed
        if max_rate is not None and rate > max_rate * SPIKE_MARGIN:
            self.rate = None
            return "spike"
        self.total += delta
        self.rate = rate
        return reason

    def _classify(
        self,
        raw: int,
        modulus: int,
        elapsed: float,
        uptime: int | None,
        discontinuity: int | None,
        max_rate: float | None,
        rebooted: bool,
    ) -> Reason | None:
        assert self._raw is not None
        if rebooted:
            return "reboot"
        if (
            discontinuity is not None
            and self._discontinuity is not None
            and discontinuity != self._discontinuity
        ):
            return "discontinuity"
        if raw >= self._raw:
            return None
        if modulus == _MODULI[64]:
            return "reset"
        wrapped = raw + modulus - self._raw
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
        tracker = self._tracker(key)
        reason = tracker.step(
            raw, modulus_of(bits), sample_monotonic, device_uptime_ticks, discontinuity, max_rate
        )
        if reason is not None:
            self.reasons[reason] += 1
        return CounterUpdate(tracker.total, tracker.rate, reason)

    def update_poll(
        self, readings: Iterable[Reading], *, sample_monotonic: float, device_uptime_ticks: int | None
    ) -> None:
        """Feed every counter one poll read, all taken at ``sample_monotonic`` with one sysUpTime.

        The same as :meth:`update` per reading, but the reboot check is made once per baseline
        (series read together last time share it) instead of once per series: a device's hundred
        series cost one check, not a hundred.
        """
        trackers, reasons = self._trackers, self.reasons
        verdicts: dict[tuple[int | None, float], bool] = {}
        for key, raw, modulus, discontinuity, max_rate in readings:
            tracker = trackers.get(key) or self._tracker(key)
            baseline = tracker.baseline
            rebooted = verdicts.get(baseline)
            if rebooted is None:
                rebooted = verdicts[baseline] = tracker.rebooted(device_uptime_ticks, sample_monotonic)
            reason = tracker.step(
                raw, modulus, sample_monotonic, device_uptime_ticks, discontinuity, max_rate, rebooted
            )
            if reason is not None:
                reasons[reason] += 1

    def _tracker(self, key: Hashable) -> CounterTracker:
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = CounterTracker()
        return tracker

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
