"""Simulated faults for ``netwatch demo``: a commune, and now and then a district, "go down" on a schedule.

On loopback nothing really fails, so the demo wraps the ICMP and SNMP collectors: while a fault's
window is open, a poll of a faulted device reports every probe lost (ICMP) or no answer (SNMP), with
reason ``simulated_fault``, so /metrics, the outage ledger and the status page show the fault as what
it is. A district fault also takes the communes behind it, so parent suppression shows.

The schedule is deterministic: windows are offsets into a fixed period counted from the demo's start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from collectors import CollectContext, CollectorSpec, CollectResult, Target
from collectors.icmp import IcmpParams, RoundResult, round_measurements

REASON = "simulated_fault"
"""The ``reason`` label of polls failed by a simulated fault (``netwatch_poll_errors_total``)."""
DEFAULT_PERIOD = 240.0
MARK = "[SIMULATED FAULT / sự cố giả lập]"
"""Appended to the name of every site the demo fails on purpose."""


@dataclass(frozen=True)
class Fault:
    """One site that goes down in a window of every ``every``-th period (from the ``phase``-th)."""

    site: str
    devices: frozenset[str]
    start: float
    """Fraction of the period at which the window opens."""
    length: float
    """Fraction of the period the window stays open."""
    every: int = 1
    phase: int = 0

    def window(self, period: float, index: int) -> tuple[float, float] | None:
        """Start and end (seconds from the demo's start) of the window in period ``index``, if any."""
        if index % self.every != self.phase:
            return None
        opens = index * period + self.start * period
        return opens, opens + self.length * period

    def active(self, period: float, elapsed: float) -> bool:
        """Whether the fault is on ``elapsed`` seconds after the demo started."""
        window = self.window(period, int(elapsed // period))
        return window is not None and window[0] <= elapsed < window[1]


@dataclass
class FaultSchedule:
    """The demo's faults and the clock they run on."""

    faults: tuple[Fault, ...]
    period: float = DEFAULT_PERIOD
    clock: Callable[[], float] = time.monotonic
    origin: float | None = None

    def start(self) -> None:
        """Count windows from now."""
        self.origin = self.clock()

    def elapsed(self) -> float:
        """Seconds since :meth:`start` (0 before it)."""
        return 0.0 if self.origin is None else self.clock() - self.origin

    def fault_of(self, device: str) -> Fault | None:
        """The fault taking ``device`` down right now, or None."""
        if self.origin is None:
            return None
        elapsed = self.elapsed()
        for fault in self.faults:
            if device in fault.devices and fault.active(self.period, elapsed):
                return fault
        return None

    def describe(self) -> list[str]:
        """One line per fault, for the start-up text."""
        lines = []
        for fault in self.faults:
            opens, closes = fault.start * self.period, (fault.start + fault.length) * self.period
            which = (
                "every period"
                if fault.every == 1
                else f"one period in {fault.every} (periods {fault.phase}, {fault.phase + fault.every}, …)"
            )
            lines.append(
                f"{fault.site} ({len(fault.devices)} devices) down from +{opens:g} s to +{closes:g} s of "
                f"{which} ({self.period:g} s, counted from start)"
            )
        return lines


def faulted_registry(
    base: Mapping[str, CollectorSpec[Any]], schedule: FaultSchedule
) -> dict[str, CollectorSpec[Any]]:
    """``base`` with its ICMP and SNMP collectors failing faulted devices while their window is open."""
    specs = dict(base)
    if "icmp" in specs:
        specs["icmp"] = _wrap(specs["icmp"], schedule, _lost_round)
    if "snmp" in specs:
        specs["snmp"] = _wrap(specs["snmp"], schedule, _no_answer)
    return specs


def _message(fault: Fault) -> str:
    return f"simulated fault of {fault.site} (netwatch demo): nothing is really down"


def _lost_round(target: Target, params: Any, fault: Fault) -> CollectResult:
    probes = params.probes if isinstance(params, IcmpParams) else 1
    lost = RoundResult(target.address, probes, 0, reason=REASON, error=_message(fault))
    return CollectResult(
        success=False,
        measurements=round_measurements(lost),
        error=lost.error,
        reason=REASON,
    )


def _no_answer(target: Target, params: Any, fault: Fault) -> CollectResult:
    return CollectResult.failed(REASON, _message(fault))


def _wrap(
    spec: CollectorSpec[Any],
    schedule: FaultSchedule,
    failure: Callable[[Target, Any, Fault], CollectResult],
) -> CollectorSpec[Any]:
    async def collect(target: Target, params: Any, ctx: CollectContext) -> CollectResult:
        fault = schedule.fault_of(target.key)
        if fault is None:
            return await spec.collect(target, params, ctx)
        return failure(target, params, fault)

    return CollectorSpec(spec.kind, spec.params_model, collect, spec.description)


def subtree_devices(
    devices: Iterable[Mapping[str, Any]], root_site: str, parents: Mapping[str, str | None]
) -> frozenset[str]:
    """Names of the devices at ``root_site`` and at every site below it."""

    def below(site: str) -> bool:
        seen: set[str] = set()
        current: str | None = site
        while current is not None and current not in seen:
            if current == root_site:
                return True
            seen.add(current)
            current = parents.get(current)
        return False

    return frozenset(str(d["name"]) for d in devices if below(str(d["site"])))
