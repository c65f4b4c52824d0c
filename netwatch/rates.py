"""Device counters → rates, and netwatch's own monotonic totals.

netwatch never exports a device's raw counter: a 32-bit counter wraps every 34 s on a 1 Gb/s link, a reboot
or a cleared counter starts it again at zero, and Prometheus' ``rate()`` over such a series shows spikes.
Each counter series gets a slot of :class:`CounterColumns` that turns raw readings into a total that
only grows, by the bytes (or packets) that really passed, and a rate over the last poll interval:

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

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final, Literal, NamedTuple

SPIKE_MARGIN: Final = 1.1
"""A rate up to 10 % over the link speed is believable (counter timing jitter); above it, a spike."""
UPTIME_MODULUS: Final = 2**32
"""sysUpTime is TimeTicks (1/100 s, 32 bits): it wraps after 497 days without a reboot."""
UPTIME_SLACK_SECONDS: Final = 2.0
"""How much sysUpTime may lag the poll interval before it counts as a reboot (agent caching, jitter)."""

Reason = Literal["first", "wrap", "reboot", "discontinuity", "reset", "spike", "no_time"]
_MODULI: Final = {32: 2**32, 64: 2**64}


Reading = tuple[int, int, int, int | None, float | None]
"""One counter reading of a poll, for :meth:`CounterColumns.update_poll`: (slot, raw value, modulus
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


_NONE: Final = -1
"""sysUpTime or ifCounterDiscontinuityTime not read (both are TimeTicks: never negative)."""
_NO_RATE: Final = math.nan


_FRESH: Final = {
    "_raw": 0,
    "_time": math.nan,
    "_uptime": _NONE,
    "_discontinuity": _NONE,
    "total": 0.0,
    "rate": _NO_RATE,
}
"""Each column's value in a slot not yet read."""


class CounterColumns:
    """The state of many counter series, a slot each, in typed arrays: last reading, its times, and
    netwatch's total and last rate.

    Columns, not an object per series: at province scale (600,000 series) an object, its floats and
    its dictionary entry cost about 200 bytes a series; six array cells cost 48.
    """

    __slots__ = ("_discontinuity", "_raw", "_time", "_uptime", "rate", "total")

    def __init__(self) -> None:
        self._raw = array("Q")
        self._time = array("d")
        """Monotonic time of the last reading; NaN before the first."""
        self._uptime = array("q")
        self._discontinuity = array("q")
        self.total = array("d")
        """netwatch's running total of each series, in the device's units."""
        self.rate = array("d")
        """Each series' rate over its last interval (per second); NaN when that reading gave none."""

    def __len__(self) -> int:
        return len(self.total)

    def add(self) -> int:
        """A new slot, not yet read; returns its index."""
        for name, fresh in _FRESH.items():
            getattr(self, name).append(fresh)
        return len(self.total) - 1

    def taken(self, slots: Sequence[int | None]) -> CounterColumns:
        """New columns holding ``slots`` of these in that order (None: a new, unread slot), each
        array its exact size (grown by appends, an array keeps up to an eighth more)."""
        out = CounterColumns()
        for name, fresh in _FRESH.items():
            column = getattr(self, name)
            setattr(out, name, array(column.typecode, [fresh if s is None else column[s] for s in slots]))
        return out

    def rate_of(self, slot: int) -> float | None:
        """The rate of the slot's last reading, None when it gave none (first, reboot, spike…)."""
        rate = self.rate[slot]
        return None if rate != rate else rate

    def update(
        self,
        slot: int,
        raw: int,
        *,
        bits: int,
        sample_monotonic: float,
        device_uptime_ticks: int | None = None,
        discontinuity: int | None = None,
        max_rate: float | None = None,
    ) -> CounterUpdate:
        """Take one reading of the slot's counter (``bits`` 32 or 64) taken at ``sample_monotonic``.

        ``max_rate`` is the most the counter can grow per second (e.g. ifSpeed / 8 for octets), if known.
        """
        reason = self.step(
            slot, raw, modulus_of(bits), sample_monotonic, device_uptime_ticks, discontinuity, max_rate
        )
        return CounterUpdate(self.total[slot], self.rate_of(slot), reason)

    def update_poll(
        self, readings: Iterable[Reading], *, sample_monotonic: float, device_uptime_ticks: int | None
    ) -> Counter[str]:
        """Feed every counter one poll read, all taken at ``sample_monotonic`` with one sysUpTime;
        returns how many readings had each reason.

        The same as :meth:`update` per reading, but the reboot check is made once per baseline
        (series read together last time share their sysUpTime and time) instead of once per series:
        a device's hundred series cost one check, not a hundred.
        """
        reasons: Counter[str] = Counter()
        times, uptimes = self._time, self._uptime
        seen_uptime, seen_time, rebooted = _NONE, math.nan, False
        for slot, raw, modulus, discontinuity, max_rate in readings:
            if uptimes[slot] != seen_uptime or times[slot] != seen_time:  # NaN (never read) never equals
                seen_uptime, seen_time = uptimes[slot], times[slot]
                rebooted = self.rebooted(slot, device_uptime_ticks, sample_monotonic)
            reason = self.step(
                slot, raw, modulus, sample_monotonic, device_uptime_ticks, discontinuity, max_rate, rebooted
            )
            if reason is not None:
                reasons[reason] += 1
        return reasons

    def rebooted(self, slot: int, uptime: int | None, sample_monotonic: float) -> bool:
        """Whether sysUpTime ``uptime`` at ``sample_monotonic`` shows a reboot since the slot's last
        reading."""
        if uptime is None:
            return False
        elapsed = sample_monotonic - self._time[slot]
        last = self._uptime[slot]
        if last != _NONE and uptime < last:
            # Gone back: a reboot, unless sysUpTime itself wrapped by about the time that passed.
            advanced = (uptime - last) % UPTIME_MODULUS / 100
            return abs(advanced - elapsed) > max(UPTIME_SLACK_SECONDS, elapsed * 0.1)
        # Up for less time than has passed since the last poll: it rebooted in between.
        return uptime / 100 + UPTIME_SLACK_SECONDS < elapsed

    def step(
        self,
        slot: int,
        raw: int,
        modulus: int,
        sample_monotonic: float,
        uptime: int | None,
        discontinuity: int | None,
        max_rate: float | None,
        rebooted: bool | None = None,
    ) -> Reason | None:
        """:meth:`update` with positional arguments, the counter's modulus (2**bits) and, when the
        caller judged it already, the reboot verdict; sets the slot's total and rate, returns the reason.

        The one implementation of the rules above: a poll feeds about 100 series through it.
        """
        if not 0 <= raw < modulus:
            raise ValueError(f"a {modulus.bit_length() - 1}-bit counter cannot read {raw}")
        if discontinuity is not None and not 0 <= discontinuity < UPTIME_MODULUS:
            discontinuity = None  # not TimeTicks (an agent's garbage): as if the column were absent
        last_time = self._time[slot]
        new_uptime = _NONE if uptime is None else uptime
        if last_time != last_time:  # never read
            self._rebase(slot, raw, sample_monotonic, new_uptime, discontinuity)
            self.rate[slot] = _NO_RATE
            return "first"
        elapsed = sample_monotonic - last_time
        if elapsed <= 0:
            # The same poll seen twice (or a clock that did not move): nothing to divide by; keep the
            # baseline.
            self.rate[slot] = _NO_RATE
            return "no_time"
        if rebooted is None:
            rebooted = self.rebooted(slot, uptime, sample_monotonic)
        last = self._raw[slot]
        # Ordinary readings (no reboot, same discontinuity time, not lower) skip the classification.
        same = discontinuity is None or discontinuity == self._discontinuity[slot]
        if raw >= last and not rebooted and same:
            reason: Reason | None = None
        else:
            reason = self._classify(slot, raw, modulus, elapsed, uptime, discontinuity, max_rate, rebooted)
        self._rebase(slot, raw, sample_monotonic, new_uptime, discontinuity)
        if reason is not None and reason != "wrap":
            self.rate[slot] = _NO_RATE
            return reason
        delta = (raw - last) % modulus
        if not delta:
            self.rate[slot] = 0.0
            return reason
        rate = delta / elapsed
        if max_rate is not None and rate > max_rate * SPIKE_MARGIN:
            self.rate[slot] = _NO_RATE
            return "spike"
        self.total[slot] += delta
        self.rate[slot] = rate
        return reason

    def _classify(
        self,
        slot: int,
        raw: int,
        modulus: int,
        elapsed: float,
        uptime: int | None,
        discontinuity: int | None,
        max_rate: float | None,
        rebooted: bool,
    ) -> Reason | None:
        if rebooted:
            return "reboot"
        last_discontinuity = self._discontinuity[slot]
        if discontinuity is not None and last_discontinuity != _NONE and discontinuity != last_discontinuity:
            return "discontinuity"
        last = self._raw[slot]
        if raw >= last:
            return None
        if modulus == _MODULI[64]:
            return "reset"
        wrapped = raw + modulus - last
        if max_rate is not None:
            return "wrap" if wrapped / elapsed <= max_rate * SPIKE_MARGIN else "reset"
        # No link speed to judge by: trust a wrap only when sysUpTime vouches there was no reboot.
        return "wrap" if uptime is not None and self._uptime[slot] != _NONE else "reset"

    def _rebase(self, slot: int, raw: int, when: float, uptime: int, discontinuity: int | None) -> None:
        self._raw[slot] = raw
        self._time[slot] = when
        self._uptime[slot] = uptime
        if discontinuity is not None:
            self._discontinuity[slot] = discontinuity
