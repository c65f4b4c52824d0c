"""Routing, repeat suppression, flapping, retries and the queue, with a recording channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from netwatch.alerting.dispatcher import Dispatcher, MemoryStore, route
from netwatch.alerting.models import Notification, NotificationBuilder
from netwatch.alerting.notifier import DeliveryError
from netwatch.config.alerting import AlertingConfig
from netwatch.config.inventory import Inventory
from tests.netwatch.alerting.conftest import T0, FakeClock, district_down, district_up, ev

HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}


class Recorder:
    """A channel that records what it is given, failing the first ``failures`` sends."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[Notification] = []
        self.attempts = 0

    async def send(self, notification: Notification) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise DeliveryError("test channel down")
        self.sent.append(notification)

    async def aclose(self) -> None:
        pass


def config(**overrides: Any) -> AlertingConfig:
    data: dict[str, Any] = {"channels": {"ops": HOOK}, **overrides}
    return AlertingConfig.model_validate(data)


MakeDispatcher = Callable[..., Awaitable[Dispatcher]]


@pytest.fixture
async def make(inventory: Inventory, clock: FakeClock) -> AsyncIterator[MakeDispatcher]:
    """Build started dispatchers on recording channels; close them all at the end."""
    made: list[Dispatcher] = []

    async def _make(cfg: AlertingConfig, channels: dict[str, Recorder], **kwargs: Any) -> Dispatcher:
        dispatcher = Dispatcher(cfg, inventory, MemoryStore(), notifiers=channels, clock=clock, **kwargs)
        await dispatcher.start()
        made.append(dispatcher)
        return dispatcher

    yield _make
    for dispatcher in made:
        await dispatcher.aclose(grace_seconds=0)


def test_routes_by_district_and_kind_first_match_wins_or_continue(inventory: Inventory) -> None:
    cfg = AlertingConfig.model_validate(
        {
            "channels": {"tk-mail": HOOK, "communes": HOOK, "noc": HOOK, "all": HOOK},
            "routes": [
                {"match": {"district": ["TK"]}, "channels": ["tk-mail"], "continue": True},
                {"match": {"kind": ["commune"]}, "channels": ["communes"]},
                {"match": {"kind": ["district", "province"]}, "channels": ["noc"]},
            ],
            "default_channels": ["all"],
        }
    )
    builder = NotificationBuilder(inventory)
    [commune] = builder.build([ev("TK-C02", "up", "down", T0)], T0)
    [district] = builder.build([ev("TK", "up", "down", T0)], T0)
    [other] = builder.build([ev("HA", "up", "down", T0)], T0)
    [datacenter] = builder.build([ev("TTDL", "up", "down", T0)], T0)
    assert route(commune, cfg) == ["tk-mail", "communes"]
    assert route(district, cfg) == ["tk-mail", "noc"]
    assert route(other, cfg) == ["noc"]
    assert route(datacenter, cfg) == ["all"]


async def test_repeats_are_suppressed_then_reminded_and_resolved_goes_out_once(
    make: MakeDispatcher, clock: FakeClock
) -> None:
    ops = Recorder()
    dispatcher = await make(config(repeat_interval="4h"), {"ops": ops})
    dispatcher.submit(district_down())
    await dispatcher.flush()
    clock.advance(timedelta(minutes=30))
    dispatcher.check_reminders()
    await dispatcher.flush()
    assert [(n.alert, n.status, n.reminder) for n in ops.sent] == [("down", "firing", False)]

    clock.advance(timedelta(hours=3, minutes=31))
    assert dispatcher.check_reminders() == 1
    assert dispatcher.check_reminders() == 0  # already on its way
    await dispatcher.flush()
    assert [n.reminder for n in ops.sent] == [False, True]
    assert len(ops.sent[1].unreachable) == 5

    dispatcher.submit(district_up(clock.now))
    await dispatcher.flush()
    dispatcher.check_reminders()
    await dispatcher.flush()
    assert [(n.status, n.reminder) for n in ops.sent] == [
        ("firing", False),
        ("firing", True),
        ("resolved", False),
    ]


async def test_the_same_alert_resent_by_the_health_engine_is_not_repeated(
    make: MakeDispatcher, clock: FakeClock, inventory: Inventory
) -> None:
    ops = Recorder()
    store = MemoryStore()
    cfg = config()
    first = Dispatcher(cfg, inventory, store, notifiers={"ops": ops}, clock=clock)
    async with first:
        first.submit([ev("HA", "up", "down", T0)])
        await first.flush()
    # A restart: the new dispatcher's builder has no open alerts, the store remembers the send.
    clock.advance(timedelta(minutes=10))
    async with Dispatcher(cfg, inventory, store, notifiers={"ops": ops}, clock=clock) as second:
        second.submit([ev("HA", "unknown", "down", T0)])
        await second.flush()
    assert len(ops.sent) == 1


async def test_flapping_is_reported_once_when_it_starts_and_once_when_it_stops(make: MakeDispatcher) -> None:
    ops = Recorder()
    dispatcher = await make(config(), {"ops": ops})
    minute = timedelta(minutes=1)
    for i in range(10):
        old, new = ("up", "down") if i % 2 == 0 else ("down", "up")
        dispatcher.submit([ev("HA", old, new, T0 + i * minute, flapping=i >= 3)])
    dispatcher.submit([ev("HA", "up", "up", T0 + 40 * minute, flapping=False)])
    await dispatcher.flush()
    flapping = [(n.status, n.starts_at) for n in ops.sent if n.alert == "flapping"]
    assert flapping == [("firing", T0 + 3 * minute), ("resolved", T0 + 3 * minute)]
    downs = [n.status for n in ops.sent if n.alert == "down"]
    assert downs == ["firing", "resolved", "firing", "resolved"]  # the down opened at i=2 closes at i=3


async def test_a_channel_that_is_down_is_retried_with_exponential_backoff(make: MakeDispatcher) -> None:
    delays: list[float] = []

    async def record_sleep(seconds: float) -> None:
        delays.append(seconds)

    ops = Recorder(failures=4)
    cfg = config(retry={"attempts": 6, "initial_backoff": 2, "max_backoff": 10})
    dispatcher = await make(cfg, {"ops": ops}, sleep=record_sleep)
    dispatcher.submit([ev("HA", "up", "down", T0)])
    await dispatcher.flush()
    assert delays == [2, 4, 8, 10]
    assert len(ops.sent) == 1 and dispatcher.failed_total["ops"] == 0


async def test_after_the_bound_a_notification_counts_as_failed_per_channel(make: MakeDispatcher) -> None:
    async def no_sleep(seconds: float) -> None:
        pass

    dead, alive = Recorder(failures=100), Recorder()
    cfg = AlertingConfig.model_validate({"channels": {"dead": HOOK, "alive": HOOK}, "retry": {"attempts": 3}})
    dispatcher = await make(cfg, {"dead": dead, "alive": alive}, sleep=no_sleep)
    dispatcher.submit([ev("HA", "up", "down", T0)])
    await dispatcher.flush()
    assert dead.attempts == 3
    assert dispatcher.failed_total == {"dead": 1}
    assert dispatcher.sent_total == {"alive": 1}


async def test_a_full_queue_drops_and_counts_instead_of_waiting(inventory: Inventory) -> None:
    dispatcher = Dispatcher(config(queue_size=2), inventory, MemoryStore(), notifiers={"ops": Recorder()})
    # Not started: nothing drains the queue.
    results = [dispatcher.submit([ev("HA", "up", "down", T0)]) for _ in range(5)]
    assert results == [True, True, False, False, False]
    assert dispatcher.dropped_total == 3
    await dispatcher.aclose(grace_seconds=0)


class Hanging(Recorder):
    """A channel whose sends never finish (a webhook that stopped answering)."""

    async def send(self, notification: Notification) -> None:
        self.attempts += 1
        await asyncio.Event().wait()


async def test_notifications_left_at_shutdown_are_counted_and_logged(
    inventory: Inventory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = Dispatcher(config(), inventory, MemoryStore(), notifiers={"ops": Hanging()}, clock=clock)
    await dispatcher.start()
    dispatcher.submit([ev("TK", "up", "down", T0)])
    dispatcher.submit([ev("HA", "up", "down", T0)])
    for _ in range(50):  # let the worker build both and the channel take the first
        await asyncio.sleep(0)
    await dispatcher.aclose(grace_seconds=0.05)
    assert dispatcher.failed_total["ops"] == 2
    assert "stopping with 2 notification(s) undelivered on channel ops" in caplog.text
