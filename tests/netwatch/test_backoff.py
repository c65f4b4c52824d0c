"""Targets that do not answer are polled less often, and every slot again once they answer.

An SNMP agent that does not answer holds a request slot for its whole timeout on every try; a
district cut off must not take those slots from the agents that answer, minute after minute.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from collectors.base import (
    BackoffParams,
    CollectContext,
    CollectorParams,
    CollectorSpec,
    CollectResult,
    Target,
)
from collectors.snmp import SnmpCredentials
from collectors.snmp.client import SnmpClient
from collectors.snmp.collector import SPEC as SNMP
from collectors.snmp.collector import SnmpParams, SnmpResources
from collectors.snmp.profiles import SHIPPED_PROFILE_DIR, load_profiles
from collectors.snmp.v2c import V2cTransport
from netwatch.config.inventory import Device, HealthRules, Inventory, Job, Province, Site
from netwatch.exporter import make_registry
from netwatch.health import State
from netwatch.pipeline import Pipeline
from netwatch.state import LatestState
from tests.support.snmpd import running_snmpd

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
LABELS = {"site": "TK", "district": "TK", "device": "r1"}


class SpacedParams(CollectorParams, BackoffParams):
    """A kind spaced out like SNMP."""


class PingParams(CollectorParams):
    """A kind that is never spaced out, like ICMP."""


def inventory_of(*jobs: Job) -> Inventory:
    site = Site(code="TK", name="Tam Kỳ", kind="district", district="TK", parent=None, rules=HealthRules())
    device = Device(name="r1", site="TK", address="127.0.0.1", role="router", jobs=jobs)
    return Inventory(province=Province("QNM", "Quảng Nam"), sites={"TK": site}, devices={"r1": device})


class Scripted:
    """A collector whose answers the test sets, counting the polls it was asked for."""

    def __init__(self) -> None:
        self.answering = False
        self.reason = "timeout"

    async def collect(self, target: Target, params: CollectorParams, ctx: CollectContext) -> CollectResult:
        if self.answering:
            return CollectResult(success=True)
        return CollectResult.failed(self.reason, "no answer")


def setup(params: SpacedParams) -> tuple[Pipeline, LatestState, Job, Job, Scripted, Scripted]:
    target = Target(key="r1", address="127.0.0.1", labels=LABELS)
    spaced = Job(target=target, kind="spaced", params=params)
    ping = Job(target=target, kind="ping", params=PingParams(interval=10))
    agent, pinged = Scripted(), Scripted()
    specs = {
        "spaced": CollectorSpec(kind="spaced", params_model=SpacedParams, collect=agent.collect),
        "ping": CollectorSpec(kind="ping", params_model=PingParams, collect=pinged.collect),
    }
    state = LatestState(inventory=inventory_of(spaced, ping))
    return Pipeline(specs, CollectContext(), state, []), state, spaced, ping, agent, pinged


async def slots(pipeline: Pipeline, job: Job, first: int, last: int) -> list[int]:
    """Run ``job``'s slots ``first``..``last`` (on its interval's grid from T0); the ones polled."""
    polled = []
    for k in range(first, last + 1):
        if await pipeline.run_once(job, T0 + timedelta(seconds=k * job.params.interval)) is not None:
            polled.append(k)
    return polled


async def test_a_target_that_does_not_answer_waits_twice_as_long_after_each_try_up_to_the_cap() -> None:
    pipeline, state, job, _, agent, _ = setup(SpacedParams(interval=60, backoff_after=2, backoff_max=600))
    # Two unanswered polls, then gaps of 2, 4, 8 intervals, then the 10-minute cap.
    assert await slots(pipeline, job, 0, 40) == [0, 1, 3, 7, 15, 25, 35]
    assert state.backed_off_total["spaced"] == 41 - 7
    registry = make_registry(state)
    labels = {**LABELS, "collector": "spaced"}
    assert registry.get_sample_value("netwatch_polls_backed_off_total", {"collector": "spaced"}) == 34
    assert registry.get_sample_value("netwatch_poll_backoff_seconds", labels) == 600
    assert registry.get_sample_value("netwatch_up", labels) == 0

    agent.answering = True  # the agent is back: seen at the next slot polled, then every slot
    assert await slots(pipeline, job, 41, 48) == [45, 46, 47, 48]
    assert make_registry(state).get_sample_value("netwatch_poll_backoff_seconds", labels) is None


async def test_an_agent_that_answers_with_an_error_is_polled_every_slot() -> None:
    pipeline, _, job, _, agent, _ = setup(SpacedParams(interval=60, backoff_after=1))
    agent.reason = "auth"  # it answers: a wrong key costs one round trip, not a timeout
    assert await slots(pipeline, job, 0, 5) == [0, 1, 2, 3, 4, 5]
    agent.reason = "timeout"
    assert await slots(pipeline, job, 6, 9) == [6, 8]
    agent.reason = "agent"  # an answer at the next slot polled ends the wait
    assert await slots(pipeline, job, 10, 15) == [12, 13, 14, 15]


async def test_backoff_off_polls_every_slot() -> None:
    pipeline, state, job, _, _, _ = setup(SpacedParams(interval=60, backoff_after=0))
    assert await slots(pipeline, job, 0, 9) == list(range(10))
    assert state.backed_off_total["spaced"] == 0


async def test_the_device_answering_ping_again_ends_the_wait_at_the_next_slot() -> None:
    pipeline, state, job, ping, _, pinged = setup(
        SpacedParams(interval=60, backoff_after=1, backoff_max=3600)
    )
    assert await slots(pipeline, job, 0, 6) == [0, 2, 6]  # now waiting until slot 14
    for k in range(4):  # ping: down, then up (its rounds rule) while SNMP waits
        await pipeline.run_once(ping, T0 + timedelta(seconds=365 + 10 * k))
    assert state.jobs[ping.key].health.state is State.DOWN
    pinged.answering = True
    for k in range(4, 10):
        await pipeline.run_once(ping, T0 + timedelta(seconds=365 + 10 * k))
    assert state.jobs[ping.key].health.state is State.UP
    assert await slots(pipeline, job, 7, 7) == [7]  # polled at once, not at slot 14


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process frozen (SIGSTOP): its socket takes datagrams, nothing answers."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_stopped_snmpd_gets_no_requests_while_spaced_out_and_is_polled_once_it_answers() -> None:
    """End to end with a real agent: frozen, it is asked after 2 unanswered polls only at the
    backoff's slots (counted on the wire, by what the client sent); thawed, it is polled again."""
    with running_snmpd() as agent:
        transport = V2cTransport()
        credentials = {"c": SnmpCredentials.v2c(agent.community)}
        resources = SnmpResources(
            SnmpClient(v2c_transport=transport), credentials, load_profiles([SHIPPED_PROFILE_DIR])
        )
        ctx = CollectContext({"snmp": resources})
        params = SnmpParams(
            credential="c",
            port=agent.port,
            interval=60,
            timeout=0.2,
            retries=0,
            backoff_after=2,
            backoff_max=300,
        )
        job = Job(target=Target(key="r1", address=agent.address, labels=LABELS), kind="snmp", params=params)
        state = LatestState(inventory=inventory_of(job))
        pipeline = Pipeline({"snmp": SNMP}, ctx, state, [])
        try:
            assert await slots(pipeline, job, 0, 1) == [0, 1]
            assert state.jobs[job.key].last_result.success  # type: ignore[union-attr]
            with stopped(agent.pid):
                sent = transport.counters.sent
                assert await slots(pipeline, job, 2, 19) == [2, 3, 5, 9, 14, 19]
                # One request a poll, and none for the 12 slots left out.
                assert transport.counters.sent - sent == 6
                assert state.backed_off_total["snmp"] == 12
                assert state.poll_errors[("snmp", "timeout")] == 6
            assert await slots(pipeline, job, 20, 24) == [24]  # the next slot the backoff allows
            assert state.jobs[job.key].last_result.success  # type: ignore[union-attr]
            assert await slots(pipeline, job, 25, 27) == [25, 26, 27]
        finally:
            await resources.close()
