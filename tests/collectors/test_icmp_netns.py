"""ICMP rounds over a real link to a network namespace: silence, no route, random loss, and health."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from collectors.base import CollectContext, CollectResult, Target
from collectors.icmp import IcmpEngine, IcmpParams, collect
from netwatch.config.inventory import HealthRules
from netwatch.health import RoundOutcome, State, TargetHealth, Transition, classify
from tests.support.netns import NetnsUnavailable, VethNamespace, veth_namespace

pytestmark = pytest.mark.netns

PARAMS = IcmpParams(probes=5, probe_spacing=0.02, timeout=0.2, interval=1)
ROUND_BOUND = (PARAMS.probes - 1) * PARAMS.probe_spacing + PARAMS.timeout
# what the event loop may add to a round's deadline timer on a busy 2-core CI machine
LOOP_SLACK = 0.03


@pytest.fixture
def far_end() -> Iterator[VethNamespace]:
    try:
        with veth_namespace() as ns:
            yield ns
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable here: {exc}")


@pytest.fixture
async def ctx() -> AsyncIterator[CollectContext]:
    async with await IcmpEngine.open() as engine:
        yield CollectContext({"icmp": engine})


async def timed_round(
    ns: VethNamespace, ctx: CollectContext, params: IcmpParams = PARAMS
) -> tuple[CollectResult, float]:
    started = time.monotonic()
    result = await collect(Target("far", ns.far_address), params, ctx)
    return result, time.monotonic() - started


async def test_silence_times_out_within_the_round_bound_and_recovers(
    far_end: VethNamespace, ctx: CollectContext
) -> None:
    result, _ = await timed_round(far_end, ctx)
    assert result.success and result.value("icmp_packets_received") == PARAMS.probes

    far_end.far_down()
    for _ in range(3):
        result, took = await timed_round(far_end, ctx)
        assert (result.success, result.reason) == (False, "timeout")
        assert result.value("icmp_packets_sent") == PARAMS.probes
        assert result.value("icmp_loss_ratio") == 1.0
        assert took <= ROUND_BOUND + LOOP_SLACK

    far_end.far_up()
    far_end.wait_carrier()
    result, _ = await timed_round(far_end, ctx)
    assert result.success and result.value("icmp_packets_received") == PARAMS.probes


async def test_host_side_down_is_unreachable_at_once_and_recovers(
    far_end: VethNamespace, ctx: CollectContext
) -> None:
    far_end.host_down()
    result, took = await timed_round(far_end, ctx)
    assert (result.success, result.reason) == (False, "unreachable")
    assert far_end.far_address in (result.error or "")
    # no probe waits for a reply that cannot come: only the probe spacing is spent
    assert took < PARAMS.timeout

    far_end.host_up()
    far_end.wait_carrier()
    result, _ = await timed_round(far_end, ctx)
    assert result.success and result.value("icmp_packets_received") == PARAMS.probes


class RoundsRule:
    """Real rounds fed through classify() and TargetHealth.observe(), as the daemon does."""

    def __init__(self, ns: VethNamespace, ctx: CollectContext, params: IcmpParams = PARAMS) -> None:
        self.rules = HealthRules()
        self.health = TargetHealth(self.rules)
        self.ns, self.ctx, self.params = ns, ctx, params

    async def round(self) -> tuple[RoundOutcome, Transition | None, datetime]:
        start = datetime.now(UTC)
        result = await collect(Target("far", self.ns.far_address), self.params, self.ctx)
        outcome = classify(result, self.rules)
        return outcome, self.health.observe(outcome, start), start


async def test_down_after_three_failed_rounds_and_up_after_one_good(
    far_end: VethNamespace, ctx: CollectContext
) -> None:
    rule = RoundsRule(far_end, ctx)
    outcome, _, _ = await rule.round()
    assert (outcome, rule.health.state) == (RoundOutcome.GOOD, State.UP)

    far_end.far_down()
    failed_starts: list[datetime] = []
    for n in range(1, rule.rules.down_after + 1):
        outcome, transition, start = await rule.round()
        failed_starts.append(start)
        assert outcome is RoundOutcome.FAILED
        if n < rule.rules.down_after:
            assert (transition, rule.health.state) == (None, State.UP)
    assert transition == Transition(State.UP, State.DOWN, since=failed_starts[0])

    far_end.far_up()
    far_end.wait_carrier()
    outcome, transition, start = await rule.round()
    assert outcome is RoundOutcome.GOOD
    assert transition == Transition(State.DOWN, State.UP, since=start)


async def test_twenty_percent_random_loss_degrades_but_never_downs(
    far_end: VethNamespace, ctx: CollectContext
) -> None:
    params = IcmpParams(probes=5, probe_spacing=0.02, timeout=0.1, interval=1)
    rule = RoundsRule(far_end, ctx, params)
    far_end.add_loss(20)
    outcomes: Counter[RoundOutcome] = Counter()
    states: set[State] = set()
    for _ in range(100):
        outcome, _, _ = await rule.round()
        outcomes[outcome] += 1
        states.add(rule.health.state)
    far_end.clear_loss()

    assert State.DOWN not in states
    assert outcomes[RoundOutcome.DEGRADED] > 0
    assert outcomes[RoundOutcome.GOOD] > 0
    result, _ = await timed_round(far_end, ctx, params)
    assert result.value("icmp_packets_received") == params.probes
