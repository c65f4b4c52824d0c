"""Per-target health: turn poll rounds into an UP/DEGRADED/DOWN verdict with the rounds rule.

A site goes DOWN after ``down_after`` consecutive failed rounds and UP after ``up_after`` good
ones (ARCHITECTURE.md, "Availability, defined once"). The outage starts at the start of the first
failed round and ends at the start of the first good round. Pure: no clock, no I/O; callers pass
each round's start time, so tests drive it with a fake clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from collectors.base import CollectResult
from netwatch.config.inventory import HealthRules


class State(enum.StrEnum):
    """A target's (later a site's) verdict."""

    UNKNOWN = "unknown"
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


class RoundOutcome(enum.StrEnum):
    """How one poll round went, before the rounds rule is applied."""

    GOOD = "good"
    DEGRADED = "degraded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """The collector discarded the round (e.g. it spanned a wall-clock step): no verdict either way."""


def classify(result: CollectResult, rules: HealthRules) -> RoundOutcome:
    """Good, degraded or failed: failed when every probe was lost, degraded on loss or slow RTT;
    skipped when the collector discarded the round as measuring nothing."""
    if result.details.get("discarded"):
        return RoundOutcome.SKIPPED
    if not result.success:
        return RoundOutcome.FAILED
    sent = result.value("icmp_packets_sent")
    received = result.value("icmp_packets_received")
    if sent and received is not None:
        if received <= 0:
            return RoundOutcome.FAILED
        if 1.0 - received / sent >= rules.degraded_loss_ratio:
            return RoundOutcome.DEGRADED
    rtt = result.value("icmp_rtt_avg_seconds")
    if rtt is not None and rtt >= rules.degraded_rtt_seconds:
        return RoundOutcome.DEGRADED
    return RoundOutcome.GOOD


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of verdict; ``since`` is when the new state began (backdated per the rounds rule)."""

    old: State
    new: State
    since: datetime


@dataclass(slots=True)
class TargetHealth:
    """The rounds rule for one target; persistable through its plain fields."""

    rules: HealthRules
    state: State = State.UNKNOWN
    since: datetime | None = None
    failed_rounds: int = 0
    good_rounds: int = 0
    first_failed_at: datetime | None = None
    first_good_at: datetime | None = None

    def observe(self, outcome: RoundOutcome, round_start: datetime) -> Transition | None:
        """Apply one round; return the transition it caused, if any."""
        if outcome is RoundOutcome.SKIPPED:
            return None  # neither breaks a run of failed rounds nor counts towards one
        if outcome is RoundOutcome.FAILED:
            self.good_rounds = 0
            self.first_good_at = None
            if self.failed_rounds == 0:
                self.first_failed_at = round_start
            self.failed_rounds += 1
            if self.state is not State.DOWN and self.failed_rounds >= self.rules.down_after:
                return self._move(State.DOWN, self.first_failed_at or round_start)
            return None
        self.failed_rounds = 0
        self.first_failed_at = None
        if self.good_rounds == 0:
            self.first_good_at = round_start
        self.good_rounds += 1
        new = State.DEGRADED if outcome is RoundOutcome.DEGRADED else State.UP
        if self.state is State.DOWN and self.good_rounds < self.rules.up_after:
            return None
        if new is self.state:
            return None
        since = self.first_good_at if self.state is State.DOWN else round_start
        return self._move(new, since or round_start)

    def _move(self, new: State, since: datetime) -> Transition:
        transition = Transition(old=self.state, new=new, since=since)
        self.state = new
        self.since = since
        return transition

    @property
    def is_up(self) -> bool:
        """True for UP and DEGRADED: the target answers."""
        return self.state in (State.UP, State.DEGRADED)


def combine_links(states: list[State]) -> State:
    """A site's state from its links' states: DOWN only when every link is down, DEGRADED while
    some are down or degraded, UNKNOWN when none is measured."""
    known = [s for s in states if s is not State.UNKNOWN]
    if not known:
        return State.UNKNOWN
    if all(s is State.DOWN for s in known):
        return State.DOWN
    if any(s in (State.DOWN, State.DEGRADED) for s in known):
        return State.DEGRADED
    return State.UP
