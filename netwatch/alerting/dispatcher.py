"""Routing, repeat suppression, retries and background delivery of notifications.

``submit(events)`` only puts the batch on a bounded queue and returns: the health engine is never
held up by a slow or dead receiver. One worker task turns batches into notifications and routes them;
each channel has its own bounded queue and sender task, so a hung channel delays only itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from netwatch.alerting.email import EmailNotifier
from netwatch.alerting.models import (
    Notification,
    NotificationBuilder,
    SiteEventLike,
    SiteStatusLike,
    in_language,
)
from netwatch.alerting.notifier import DeliveryError, Notifier
from netwatch.alerting.webhook import WebhookNotifier
from netwatch.config.alerting import AlertingConfig, EmailChannel, WebhookChannel
from netwatch.config.inventory import Inventory

log = logging.getLogger(__name__)


class SentStore(Protocol):
    """Where the dispatcher remembers what it sent (the daemon hands it one; SQL-backed later)."""

    def was_sent(self, key: str) -> datetime | None:
        """When the notification with this key was last delivered, or None."""

    def mark_sent(self, key: str, at: datetime) -> None:
        """Record that the notification with this key was delivered at ``at``."""


class MemoryStore:
    """A ``SentStore`` in a dict: forgets everything on restart."""

    def __init__(self) -> None:
        self._sent: dict[str, datetime] = {}

    def was_sent(self, key: str) -> datetime | None:
        """When ``key`` was last delivered, or None."""
        return self._sent.get(key)

    def mark_sent(self, key: str, at: datetime) -> None:
        """Record a delivery of ``key`` at ``at``."""
        self._sent[key] = at


def utc_now() -> datetime:
    """The current time, UTC-aware."""
    return datetime.now(UTC)


def route(notification: Notification, config: AlertingConfig) -> list[str]:
    """Names of the channels a notification goes to: first matching route, or on with ``continue``."""
    chosen: list[str] = []
    matched = False
    for rule in config.routes:
        m = rule.match
        if (
            (m.district and notification.district.code not in m.district)
            or (m.kind and notification.site_kind not in m.kind)
            or (m.site and notification.site.code not in m.site)
        ):
            continue
        matched = True
        chosen += [name for name in rule.channels if name not in chosen]
        if not rule.continue_:
            break
    if not matched:
        defaults = config.default_channels
        chosen = list(config.channels) if defaults is None else list(defaults)
    return chosen


def make_notifiers(config: AlertingConfig, timezone: str) -> dict[str, Notifier]:
    """One notifier per configured channel."""
    notifiers: dict[str, Notifier] = {}
    for name, channel in config.channels.items():
        if isinstance(channel, WebhookChannel):
            notifiers[name] = WebhookNotifier(
                name, channel, timezone=timezone, external_url=config.external_url
            )
        elif isinstance(channel, EmailChannel):
            notifiers[name] = EmailNotifier(name, channel, timezone=timezone)
    return notifiers


@dataclass(frozen=True, slots=True)
class _Delivery:
    key: str
    notification: Notification


class Dispatcher:
    """Takes event batches from the health engine and delivers notifications in the background.

    ``failed_total[channel]`` counts notifications given up on after the retry bound (for
    ``netwatch_notifications_failed_total``); ``sent_total`` and ``dropped_total`` count the rest.
    """

    def __init__(
        self,
        config: AlertingConfig,
        inventory: Inventory,
        store: SentStore,
        *,
        notifiers: Mapping[str, Notifier] | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        reminder_check_seconds: float = 60.0,
    ) -> None:
        self.config = config
        self.inventory = inventory
        self.store = store
        self.clock = clock
        self._sleep = sleep
        self._reminder_check = reminder_check_seconds
        self.notifiers: dict[str, Notifier] = dict(
            notifiers if notifiers is not None else make_notifiers(config, inventory.timezone)
        )
        self.builder = NotificationBuilder(
            inventory,
            language=config.language,
            notify_degraded=config.notify_degraded,
            notify_flapping=config.notify_flapping,
        )
        self.failed_total: Counter[str] = Counter()
        self.sent_total: Counter[str] = Counter()
        self.retried_total: Counter[str] = Counter()
        self.dropped_total = 0
        self._batches: asyncio.Queue[tuple[SiteEventLike, ...]] = asyncio.Queue(config.queue_size)
        self._outboxes: dict[str, asyncio.Queue[_Delivery]] = {
            name: asyncio.Queue(config.queue_size) for name in self.notifiers
        }
        self._pending: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the worker, one sender per channel and the reminder loop."""
        self._tasks.append(asyncio.create_task(self._work(), name="alerting-worker"))
        for name in self.notifiers:
            self._tasks.append(asyncio.create_task(self._send_loop(name), name=f"alerting-{name}"))
        self._tasks.append(asyncio.create_task(self._remind_loop(), name="alerting-reminders"))

    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def submit(self, events: Iterable[SiteEventLike]) -> bool:
        """Queue a batch of events and return at once; False (and counted) if the queue is full."""
        batch = tuple(events)
        if not batch:
            return True
        try:
            self._batches.put_nowait(batch)
        except asyncio.QueueFull:
            self.dropped_total += 1
            log.warning("alerting queue full: dropped a batch of %d site events", len(batch))
            return False
        return True

    def resume(self, statuses: Mapping[str, SiteStatusLike]) -> None:
        """After a restart: take the sites' persisted states, so open outages resolve when they end."""
        self.builder.restore(statuses)

    def update_inventory(self, inventory: Inventory) -> None:
        """Use a reloaded inventory for names and districts from now on (open alerts are kept)."""
        self.inventory = inventory
        self.builder.inventory = inventory

    def check_reminders(self) -> int:
        """Queue a reminder for each alert still firing whose last delivery is ``repeat_interval`` old."""
        return sum(self._dispatch(n) for n in self.builder.open_alerts(self.clock()))

    async def flush(self) -> None:
        """Wait until every queued batch and delivery is done (delivered or given up on)."""
        await self._batches.join()
        for outbox in self._outboxes.values():
            await outbox.join()

    async def aclose(self, grace_seconds: float = 5.0) -> None:
        """Deliver what is queued within ``grace_seconds``, then stop the tasks and close the channels."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), grace_seconds)
        self._count_abandoned()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for notifier in self.notifiers.values():
            await notifier.aclose()

    def _count_abandoned(self) -> None:
        """Say what the grace period did not deliver: counted as failed, never dropped silently.

        A firing alert left here is not marked sent, so the next start's reminder check sends it."""
        left: Counter[str] = Counter(key.split("|", 1)[0] for key in self._pending)
        for channel, count in sorted(left.items()):
            self.failed_total[channel] += count
            log.error("alerting: stopping with %d notification(s) undelivered on channel %s", count, channel)
        if not self._batches.empty():
            log.error(
                "alerting: stopping with %d batch(es) of site events not yet turned into notifications",
                self._batches.qsize(),
            )

    async def _work(self) -> None:
        while True:
            batch = await self._batches.get()
            try:
                for notification in self.builder.build(batch, self.clock()):
                    self._dispatch(notification)
            except Exception:
                log.exception(
                    "alerting: could not turn a batch of %d site events into notifications", len(batch)
                )
            finally:
                self._batches.task_done()

    def _dispatch(self, notification: Notification) -> int:
        """Queue one notification on each routed channel that should hear it now; how many were queued."""
        queued = 0
        for channel in route(notification, self.config):
            outbox = self._outboxes.get(channel)
            key = f"{channel}|{notification.key}"
            if outbox is None or key in self._pending or not self._due(key, notification):
                continue
            language = self._language(channel)
            try:
                outbox.put_nowait(_Delivery(key, in_language(notification, language)))
            except asyncio.QueueFull:
                self.failed_total[channel] += 1
                log.error("alerting: channel %s is backed up; dropped %s", channel, _describe(notification))
                continue
            self._pending.add(key)
            queued += 1
        return queued

    def _due(self, key: str, notification: Notification) -> bool:
        last = self.store.was_sent(key)
        if last is None:
            return True
        if notification.status == "resolved":
            return False
        return self.clock() - last >= self.config.repeat_interval

    def _language(self, channel: str) -> str:
        config = self.config.channels.get(channel)
        return (config.language if config is not None else None) or self.config.language

    async def _send_loop(self, channel: str) -> None:
        outbox = self._outboxes[channel]
        while True:
            delivery = await outbox.get()
            try:
                await self._deliver(channel, delivery)
            except Exception:
                # A bug in a notifier must not stop its channel for good.
                self.failed_total[channel] += 1
                log.exception("alerting: channel %s failed on %s", channel, _describe(delivery.notification))
            finally:
                self._pending.discard(delivery.key)
                outbox.task_done()

    async def _deliver(self, channel: str, delivery: _Delivery) -> None:
        retry = self.config.retry
        notifier = self.notifiers[channel]
        what = _describe(delivery.notification)
        for attempt in range(1, retry.attempts + 1):
            try:
                await notifier.send(delivery.notification)
            except DeliveryError as exc:
                if attempt == retry.attempts:
                    self.failed_total[channel] += 1
                    log.error("alerting: gave up on %s after %d attempts: %s", what, attempt, exc)
                    return
                delay = min(retry.initial_backoff * 2 ** (attempt - 1), retry.max_backoff).total_seconds()
                self.retried_total[channel] += 1
                log.warning(
                    "alerting: %s, attempt %d failed (%s); retrying in %.1f s", what, attempt, exc, delay
                )
                await self._sleep(delay)
            else:
                self.store.mark_sent(delivery.key, self.clock())
                self.sent_total[channel] += 1
                log.info("alerting: sent %s to %s", what, channel)
                return

    async def _remind_loop(self) -> None:
        while True:
            await asyncio.sleep(self._reminder_check)
            try:
                self.check_reminders()
            except Exception:
                log.exception("alerting: reminder check failed")


def _describe(notification: Notification) -> str:
    return f"{notification.alertname} {notification.status} for site {notification.site.code}"
