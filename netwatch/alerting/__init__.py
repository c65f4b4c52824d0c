"""Alerting: site events in, notifications out (Alertmanager-format webhooks and email).

The daemon builds one ``Dispatcher`` from an ``AlertingConfig``, the inventory and a ``SentStore``,
``await``s ``start()``, calls ``submit(events)`` after each health evaluation (it never blocks), reads
``failed_total`` for the exporter, and ``await``s ``aclose()`` on shutdown. This package knows nothing
of the exporter, storage or the scheduler.
"""

from netwatch.alerting.dispatcher import Dispatcher, MemoryStore, SentStore, route
from netwatch.alerting.models import Notification, NotificationBuilder, SiteEventLike, SiteRef
from netwatch.alerting.notifier import DeliveryError, Notifier
from netwatch.config.alerting import AlertingConfig, EmailChannel, Route, RouteMatch, WebhookChannel

__all__ = [
    "AlertingConfig",
    "DeliveryError",
    "Dispatcher",
    "EmailChannel",
    "MemoryStore",
    "Notification",
    "NotificationBuilder",
    "Notifier",
    "Route",
    "RouteMatch",
    "SentStore",
    "SiteEventLike",
    "SiteRef",
    "WebhookChannel",
    "route",
]
