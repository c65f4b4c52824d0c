"""The pipeline owns failure: a collector that raises or hangs becomes a counted, failed poll."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from collectors.base import CollectContext, CollectorParams, CollectorSpec, CollectResult, Measurement, Target
from netwatch.config.inventory import Device, HealthRules, Inventory, Job, Province, Site
from netwatch.exporter import make_registry
from netwatch.health import State
from netwatch.pipeline import Pipeline, PollRecord
from netwatch.state import LatestState


class FakeParams(CollectorParams):
    """Params of the fake kind."""


def inventory_with(job: Job) -> Inventory:
    site = Site(
        code="TK",
        name="Thành ủy Tam Kỳ",
        kind="district",
        district="TK",
        parent=None,
        rules=HealthRules(down_after=2),
    )
    device = Device(name=job.target.key, site="TK", address=job.target.address, role="router", jobs=(job,))
    return Inventory(province=Province("QNM", "Quảng Nam"), sites={"TK": site}, devices={device.name: device})


def make(behaviour: Any, start: Any = None) -> tuple[Pipeline, LatestState, Job, list[PollRecord]]:
    """A pipeline with one fake kind: ``behaviour`` is its collect; with ``start`` (a
    ``CollectorSpec.start``) it also polls without a coroutine."""

    async def collect(target: Target, params: FakeParams, ctx: CollectContext) -> CollectResult:
        return await behaviour()

    spec = CollectorSpec(kind="fake", params_model=FakeParams, collect=collect, start=start)
    job = Job(
        target=Target(key="r1", address="127.0.0.1", labels={"site": "TK", "district": "TK", "device": "r1"}),
        kind="fake",
        params=FakeParams(interval=0.3, timeout=0.1),
    )
    state = LatestState(inventory=inventory_with(job))
    records: list[PollRecord] = []

    class Sink:
        def on_poll(self, record: PollRecord) -> None:
            records.append(record)

    class BrokenSink:
        def on_poll(self, record: PollRecord) -> None:
            raise RuntimeError("sink bug")

    return Pipeline({"fake": spec}, CollectContext(), state, [BrokenSink(), Sink()]), state, job, records


async def test_a_collector_that_raises_is_a_failed_poll_counted_by_reason() -> None:
    async def boom() -> CollectResult:
        raise ValueError("garbage from agent")

    pipeline, state, job, records = make(boom)
    for _ in range(2):
        record = await pipeline.run_once(job, datetime.now(UTC))
    assert not record.result.success and record.result.reason == "internal"
    assert state.poll_errors[("fake", "internal")] == 2
    assert state.jobs[job.key].health.state is State.DOWN  # down_after=2
    assert len(records) == 2  # the broken sink did not stop the good one


async def test_a_collector_that_hangs_fails_at_its_interval() -> None:
    async def hang() -> CollectResult:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    pipeline, _, job, _ = make(hang)
    record = await pipeline.run_once(job, datetime.now(UTC))
    assert record.result.reason == "deadline"
    assert 0.3 <= record.result.duration < 1.0


async def test_delta_measurements_add_up_into_totals_and_metrics() -> None:
    async def ok() -> CollectResult:
        return CollectResult(
            success=True,
            measurements=(
                Measurement("icmp_packets_sent", 5, kind="delta"),
                Measurement("icmp_packets_received", 4, kind="delta"),
            ),
        )

    pipeline, state, job, _ = make(ok)
    for _ in range(3):
        await pipeline.run_once(job, datetime.now(UTC))
    assert state.jobs[job.key].counters["icmp_packets_sent"] == 15
    registry = make_registry(state)
    assert (
        registry.get_sample_value(
            "netwatch_up", {"site": "TK", "district": "TK", "device": "r1", "collector": "fake"}
        )
        == 1.0
    )
    assert registry.get_sample_value("netwatch_polls_total") == 3
    assert registry.get_sample_value("netwatch_poll_lag_seconds_count") == 3


@pytest.mark.parametrize("late_by", [0.0, 0.5])
async def test_late_polls_are_counted(late_by: float) -> None:
    async def ok() -> CollectResult:
        return CollectResult(success=True)

    pipeline, state, job, _ = make(ok)
    from datetime import timedelta

    await pipeline.run_once(job, datetime.now(UTC) - timedelta(seconds=late_by))
    assert state.polls_late_total == (1 if late_by > job.params.interval / 10 else 0)


async def test_the_latest_state_keeps_gauges_and_lets_spent_counter_readings_go() -> None:
    labels = (("ifname", "ge-0/0/0"),)
    key = ("if_in_octets", labels)

    async def ok() -> CollectResult:
        return CollectResult(
            success=True,
            measurements=(
                Measurement("if_in_octets", 1000, labels, "counter"),
                Measurement("if_oper_status", 1, labels),
            ),
            details={"counter_bits": {key: 64}, "uptime_ticks": 500, "info": {"sysname": "r1"}},
        )

    pipeline, state, job, records = make(ok)
    await pipeline.run_once(job, datetime.now(UTC))
    # The sinks (storage) got the whole poll; the counter book holds the counter from now on.
    assert [m.name for m in records[-1].result.measurements] == ["if_in_octets", "if_oper_status"]
    assert [k for k, _, _ in state.jobs[job.key].book.scaled()] == [key]
    kept = state.jobs[job.key].last_result
    assert kept is not None and kept.success
    assert [m.name for m in kept.measurements] == ["if_oper_status"]
    assert "counter_bits" not in kept.details
    assert kept.details["info"] == {"sysname": "r1"}  # what /metrics reads for netwatch_device_info


async def test_a_started_poll_is_recorded_when_the_collector_calls_back() -> None:
    loop = asyncio.get_running_loop()

    def start(target: Target, params: FakeParams, ctx: CollectContext, done: Any) -> None:
        result = CollectResult(
            success=True, measurements=(Measurement("icmp_packets_sent", 5, kind="delta"),)
        )
        loop.call_later(0.05, done, result)

    pipeline, state, job, records = make(None, start)
    finished: list[int] = []
    assert pipeline.start(job, datetime.now(UTC), lambda: finished.append(len(records)))
    assert not records and not finished, "nothing is recorded before the collector calls back"
    await asyncio.sleep(0.2)
    assert finished == [1], "finished once, after the sinks had the poll"
    assert records[0].result.success and 0.04 <= records[0].result.duration < 0.2
    assert state.polls_total == 1 and state.jobs[job.key].counters["icmp_packets_sent"] == 5


async def test_a_started_collector_that_raises_or_calls_back_twice_is_one_failed_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def start(target: Target, params: FakeParams, ctx: CollectContext, done: Any) -> None:
        done(CollectResult.failed("timeout", "no reply"))
        done(CollectResult(success=True))
        raise ValueError("garbage from agent")

    pipeline, state, job, records = make(None, start)
    finished: list[bool] = []
    assert pipeline.start(job, datetime.now(UTC), lambda: finished.append(True))
    assert [r.result.reason for r in records] == ["timeout"] and finished == [True]
    assert "reported r1/fake twice" in caplog.text

    def broken(target: Target, params: FakeParams, ctx: CollectContext, done: Any) -> None:
        raise ValueError("garbage from agent")

    pipeline, state, job, records = make(None, broken)
    assert pipeline.start(job, datetime.now(UTC), lambda: finished.append(True))
    assert [r.result.reason for r in records] == ["internal"] and len(finished) == 2
    assert state.poll_errors[("fake", "internal")] == 1


async def test_kinds_without_start_are_not_started() -> None:
    async def ok() -> CollectResult:
        return CollectResult(success=True)

    pipeline, _, job, records = make(ok)
    assert not pipeline.start(job, datetime.now(UTC), lambda: None)
    assert not records
