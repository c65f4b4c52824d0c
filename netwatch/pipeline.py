"""Run one poll: call the collector under a deadline, catch what it should not have raised,
update the latest state and hand the result to the sinks (storage, later alerting).

This module holds the one broad ``except`` in netwatch's polling path: a misbehaving target or
a collector bug becomes a failed result with a reason, never the end of the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from collectors.base import BackoffParams, CollectContext, CollectorSpec, CollectResult
from netwatch.config.inventory import Job
from netwatch.counters import CounterBook
from netwatch.health import RoundOutcome, State, TargetHealth, Transition, classify
from netwatch.state import JobState, LatestState

log = logging.getLogger(__name__)


_SPENT_DETAILS = frozenset({"counter_bits", "counter_scale", "discontinuity", "decode_messages"})
"""Details the sinks and the counter book have used by the time a poll is recorded."""


def retained(result: CollectResult) -> CollectResult:
    """What the latest state keeps of a poll: its gauges and the details /metrics reads.

    Counter readings live on in the :class:`CounterBook`, so their measurements and per-series maps
    (bits, scale, discontinuity) are spent once applied; kept, they cost about 20 KB per SNMP device,
    a third of the daemon's heap in the province soak, and gave the garbage collector more to scan.
    """
    details = result.details
    if not any(key in details for key in _SPENT_DETAILS):
        return result
    return CollectResult(
        success=result.success,
        measurements=tuple(m for m in result.measurements if m.kind != "counter"),
        error=result.error,
        reason=result.reason,
        duration=result.duration,
        details={key: value for key, value in details.items() if key not in _SPENT_DETAILS},
    )


@dataclass(frozen=True, slots=True)
class PollRecord:
    """One finished poll, as the sinks see it."""

    job: Job
    result: CollectResult
    scheduled_at: datetime
    started_at: datetime
    outcome: RoundOutcome
    transition: Transition | None
    health: TargetHealth
    counters: CounterBook


class ResultSink(Protocol):
    """Something that wants every finished poll (the storage recorder, later alerting)."""

    def on_poll(self, record: PollRecord) -> None:
        """Take one poll; must not block the event loop."""


class _StartedPoll:
    """A poll started through ``CollectorSpec.start``: the ``done`` its collector calls, once.

    One slotted object per poll rather than a closure (a function and seven cells): a thousand
    rounds a second live about 4 s each, and the garbage collector scans what is alive at a pass.
    """

    __slots__ = ("called", "finished", "job", "pipeline", "scheduled_at", "started", "started_at")

    def __init__(
        self, pipeline: Pipeline, job: Job, scheduled_at: datetime, finished: Callable[[], None]
    ) -> None:
        self.pipeline = pipeline
        self.job = job
        self.scheduled_at = scheduled_at
        self.finished = finished
        self.started_at = datetime.now(UTC)
        self.started = time.monotonic()
        self.called = False

    def __call__(self, result: CollectResult) -> None:
        job = self.job
        if self.called:
            log.error("collector %s reported %s twice: the second result is ignored", job.kind, job.key)
            return
        self.called = True
        try:
            self.pipeline._finish(job, result, self.scheduled_at, self.started_at, self.started)
        except Exception:
            log.exception("recording the poll of %s failed", job.key)
        finally:
            self.finished()


class Pipeline:
    """Runs polls and fans their results out."""

    def __init__(
        self,
        specs: Mapping[str, CollectorSpec[Any]],
        ctx: CollectContext,
        state: LatestState,
        sinks: Sequence[ResultSink] = (),
    ) -> None:
        self._specs = specs
        self._ctx = ctx
        self._state = state
        self._sinks = list(sinks)

    async def run_once(self, job: Job, scheduled_at: datetime) -> PollRecord | None:
        """Poll ``job`` now; ``scheduled_at`` is the grid time it was due (for lag and replay keys).
        None, with nothing polled, for a slot its target's backoff leaves out."""
        if self._waiting(job, scheduled_at):
            return None
        started_at = datetime.now(UTC)
        started = time.monotonic()
        result = await self._collect(job)
        return self._finish(job, result, scheduled_at, started_at, started)

    def start(self, job: Job, scheduled_at: datetime, finished: Callable[[], None]) -> bool:
        """Start polling ``job`` without a task when its kind can (``CollectorSpec.start``); call
        ``finished`` once the poll is recorded. False (nothing started) for the other kinds."""
        spec = self._specs.get(job.kind)
        if spec is None or spec.start is None:
            return False
        if self._waiting(job, scheduled_at):
            finished()
            return True
        poll = _StartedPoll(self, job, scheduled_at, finished)
        try:
            spec.start(job.target, job.params, self._ctx, poll)
        except Exception as exc:
            log.exception("collector %s failed on %s (%s)", job.kind, job.target.key, job.target.address)
            if not poll.called:
                poll(CollectResult.failed("internal", f"{type(exc).__name__} in collector {job.kind}"))
        return True

    def _waiting(self, job: Job, scheduled_at: datetime) -> bool:
        """Whether this slot of ``job`` is left out: its target does not answer and is spaced out."""
        job_state = self._state.jobs.get(job.key)
        if job_state is None or job_state.resume_at is None or scheduled_at >= job_state.resume_at:
            return False
        self._state.backed_off_total[job.kind] += 1
        return True

    def _space_out(
        self, job: Job, job_state: JobState, result: CollectResult, scheduled_at: datetime
    ) -> None:
        """Count polls without an answer; past ``backoff_after`` of them, wait twice as long after
        each, up to ``backoff_max``. Any answer (even an error) polls every slot again."""
        params = job.params
        if not isinstance(params, BackoffParams):
            return
        if result.reason == "timeout" and params.backoff_after:
            job_state.unanswered += 1
            beyond = job_state.unanswered - params.backoff_after
            if beyond >= 0:
                interval = job.params.interval
                gap = min(interval * 2 ** min(beyond + 1, 32), max(params.backoff_max, interval))
                job_state.resume_at = scheduled_at + timedelta(seconds=gap)
        elif job_state.unanswered or job_state.resume_at is not None:
            job_state.unanswered = 0
            job_state.resume_at = None

    def _end_waits(self, job: Job) -> None:
        """The device answers again (its ping came back): its other jobs that wait are polled at
        their next slot. Read off the inventory: a transition to UP is rare, a second index is not needed."""
        device = self._state.inventory.devices.get(job.target.key)
        for other in device.jobs if device is not None else ():
            waiting = self._state.jobs.get(other.key)
            if waiting is not None:
                waiting.resume_at = None

    def _finish(
        self, job: Job, result: CollectResult, scheduled_at: datetime, started_at: datetime, started: float
    ) -> PollRecord:
        finished = time.monotonic()
        result = result.timed(finished - started)
        record = self._record(job, result, scheduled_at, started_at, finished)
        for sink in self._sinks:
            try:
                sink.on_poll(record)
            except Exception:
                log.exception("sink %s failed on %s", type(sink).__name__, job.key)
        return record

    async def _collect(self, job: Job) -> CollectResult:
        spec = self._specs.get(job.kind)
        if spec is None:
            return CollectResult.failed("config", f"no collector kind {job.kind!r}")
        # The deadline is the interval: a poll still running when the next is due is a failure.
        deadline = job.params.interval
        try:
            # asyncio.timeout runs the collector in this task; wait_for would start a task per poll.
            async with asyncio.timeout(deadline):
                return await spec.collect(job.target, job.params, self._ctx)
        except TimeoutError:
            return CollectResult.failed("deadline", f"poll did not finish within {deadline:g} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("collector %s failed on %s (%s)", job.kind, job.target.key, job.target.address)
            return CollectResult.failed("internal", f"{type(exc).__name__} in collector {job.kind}")

    def _record(
        self,
        job: Job,
        result: CollectResult,
        scheduled_at: datetime,
        started_at: datetime,
        finished_monotonic: float,
    ) -> PollRecord:
        state = self._state
        job_state = state.job_state(job)
        lag = max(0.0, (started_at - scheduled_at).total_seconds())
        state.lag.observe(lag)
        state.polls_total += 1
        if lag > job.params.interval / 10:
            state.polls_late_total += 1
        if not result.success:
            state.poll_errors[(job.kind, result.reason or "unknown")] += 1
        for m in result.measurements:
            if m.kind == "delta" and not m.labels:
                job_state.counters[m.name] = job_state.counters.get(m.name, 0.0) + m.value
        job_state.book.apply(result, result.details.get("sample_monotonic", finished_monotonic))
        outcome = classify(result, job_state.health.rules)
        transition = job_state.health.observe(outcome, scheduled_at)
        self._space_out(job, job_state, result, scheduled_at)
        if transition is not None and transition.new is State.UP:
            self._end_waits(job)
        if transition is not None:
            log.log(
                logging.DEBUG if transition.old is State.UNKNOWN else logging.INFO,
                "%s %s: %s → %s since %s",
                job.target.key,
                job.kind,
                transition.old,
                transition.new,
                transition.since.isoformat(timespec="seconds"),
            )
        job_state.last_result = retained(result)
        job_state.recorded += 1
        job_state.last_scheduled_at = scheduled_at
        job_state.last_started_at = started_at
        return PollRecord(
            job, result, scheduled_at, started_at, outcome, transition, job_state.health, job_state.book
        )
