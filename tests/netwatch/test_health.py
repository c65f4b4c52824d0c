"""The rounds rule, table-tested with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collectors.base import CollectResult, Measurement
from netwatch.config.inventory import HealthRules
from netwatch.health import RoundOutcome, State, TargetHealth, classify, combine_links

T0 = datetime(2026, 10, 1, tzinfo=UTC)
G, D, F = RoundOutcome.GOOD, RoundOutcome.DEGRADED, RoundOutcome.FAILED


def run(rounds: list[RoundOutcome], rules: HealthRules | None = None) -> tuple[TargetHealth, list]:
    health = TargetHealth(rules=rules or HealthRules())
    transitions = []
    for i, outcome in enumerate(rounds):
        t = health.observe(outcome, T0 + timedelta(seconds=10 * i))
        if t is not None:
            transitions.append((i, t.old, t.new, int((t.since - T0).total_seconds())))
    return health, transitions


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        # a first good round decides UP at once
        ([G], [(0, State.UNKNOWN, State.UP, 0)]),
        # two lost rounds are not an outage (down_after=3)
        ([G, F, F, G, F, F, G], [(0, State.UNKNOWN, State.UP, 0)]),
        # three failed rounds: DOWN, backdated to the first failed round's start
        ([G, F, F, F], [(0, State.UNKNOWN, State.UP, 0), (3, State.UP, State.DOWN, 10)]),
        # first good round ends the outage, at its own start
        (
            [G, F, F, F, F, G],
            [(0, State.UNKNOWN, State.UP, 0), (3, State.UP, State.DOWN, 10), (5, State.DOWN, State.UP, 50)],
        ),
        # never seen up: still DOWN after three failures, from the first
        ([F, F, F], [(2, State.UNKNOWN, State.DOWN, 0)]),
        # degraded rounds degrade at once and recover at once
        (
            [G, D, D, G],
            [
                (0, State.UNKNOWN, State.UP, 0),
                (1, State.UP, State.DEGRADED, 10),
                (3, State.DEGRADED, State.UP, 30),
            ],
        ),
        # coming back degraded from DOWN
        ([F, F, F, D], [(2, State.UNKNOWN, State.DOWN, 0), (3, State.DOWN, State.DEGRADED, 30)]),
    ],
)
def test_rounds_rule(rounds: list[RoundOutcome], expected: list) -> None:
    _, transitions = run(rounds)
    assert transitions == expected


def test_up_after_needs_consecutive_good_rounds_and_backdates_to_the_first() -> None:
    health, transitions = run([F, F, F, G, G, F, G, G, G], HealthRules(up_after=3))
    assert transitions == [(2, State.UNKNOWN, State.DOWN, 0), (8, State.DOWN, State.UP, 60)]
    assert health.state is State.UP


def icmp_result(sent: int, received: int, avg: float | None = 0.001) -> CollectResult:
    ms = [
        Measurement("icmp_packets_sent", sent, kind="delta"),
        Measurement("icmp_packets_received", received, kind="delta"),
    ]
    if avg is not None and received:
        ms.append(Measurement("icmp_rtt_avg_seconds", avg))
    return CollectResult(success=received > 0, measurements=tuple(ms), reason=None if received else "timeout")


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        (icmp_result(5, 5), G),
        (icmp_result(5, 4), G),  # 20 % is the threshold: 1 of 5 lost is below it only when < 0.2
        (icmp_result(5, 3), D),
        (icmp_result(5, 1), D),
        (icmp_result(5, 0), F),
        (icmp_result(5, 5, avg=0.6), D),
        (CollectResult.failed("timeout", "no answer"), F),
    ],
)
def test_classify(result: CollectResult, outcome: RoundOutcome) -> None:
    assert classify(result, HealthRules(degraded_loss_ratio=0.25, degraded_rtt_seconds=0.5)) is outcome


@pytest.mark.parametrize(
    ("links", "site"),
    [
        ([State.UP], State.UP),
        ([State.DOWN], State.DOWN),
        ([State.UP, State.DOWN], State.DEGRADED),
        ([State.DOWN, State.DOWN], State.DOWN),
        ([State.UNKNOWN, State.DOWN], State.DOWN),
        ([State.UNKNOWN], State.UNKNOWN),
        ([State.DEGRADED, State.UP], State.DEGRADED),
    ],
)
def test_site_from_links(links: list[State], site: State) -> None:
    assert combine_links(links) is site
