"""What a channel is to the dispatcher: something that delivers one notification or raises."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from netwatch.alerting.models import Notification
from netwatch.errors import NetwatchError


class DeliveryError(NetwatchError):
    """A channel could not deliver a notification this time; the message never holds a secret."""


class Notifier(Protocol):
    """One channel: webhook, email, or a fake in unit tests."""

    async def send(self, notification: Notification) -> None:
        """Deliver one notification, or raise ``DeliveryError``."""

    async def aclose(self) -> None:
        """Release connections."""


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and nothing else) replaced by ``<secret>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    return text
