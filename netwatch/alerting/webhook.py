"""Webhook channel: POST each notification in Alertmanager's webhook format (version 4).

Receivers written for Alertmanager (chat bridges, ticketers, Alertmanager-to-X relays) take it
as it is. ``fingerprint`` is computed as Alertmanager computes it (FNV-1a 64 over the sorted labels),
so a receiver that matches firing and resolved by fingerprint sees them as one alert.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp

from netwatch.alerting.messages import format_duration, render
from netwatch.alerting.models import Notification
from netwatch.alerting.notifier import DeliveryError
from netwatch.config.alerting import WebhookChannel

ZERO_TIME = "0001-01-01T00:00:00Z"
_FNV_OFFSET = 14_695_981_039_346_656_037
_FNV_PRIME = 1_099_511_628_211
_SEPARATOR = 0xFF


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: 16 hex digits."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for byte in (*name.encode(), _SEPARATOR, *labels[name].encode(), _SEPARATOR):
            value = ((value ^ byte) * _FNV_PRIME) & 0xFFFF_FFFF_FFFF_FFFF
    return f"{value:016x}"


def rfc3339(moment: datetime) -> str:
    """``2026-11-28T14:05:30Z`` (fraction only when there is one), in UTC."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def alertmanager_payload(
    notification: Notification, *, receiver: str, timezone: str, external_url: str | None
) -> dict[str, Any]:
    """The JSON body for one notification, as Alertmanager would send it to a webhook receiver."""
    n = notification
    message = render(n, timezone)
    labels = {
        "alertname": n.alertname,
        "site": n.site.code,
        "district": n.district.code,
        "province": n.province,
        "kind": n.site_kind,
        "severity": n.severity,
    }
    annotations = {
        "summary": message.summary,
        "description": message.text,
        "site_name": n.site.name,
        "district_name": n.district.name,
        "state": n.state,
        "unreachable_sites": ",".join(ref.code for ref in n.unreachable),
        "unreachable_count": str(len(n.unreachable)),
        "duration": format_duration(n.duration, n.language),
        "duration_seconds": str(int(n.duration.total_seconds())),
    }
    if n.cause is not None:
        annotations["cause"] = n.cause.code
    if n.flapping:
        annotations["flapping"] = "true"
    group_labels = {"alertname": n.alertname, "site": n.site.code}
    group = ", ".join(f'{name}="{value}"' for name, value in sorted(group_labels.items()))
    return {
        "version": "4",
        "groupKey": f"{{}}/netwatch:{{{group}}}",
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url or "",
        "alerts": [
            {
                "status": n.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(n.starts_at),
                "endsAt": rfc3339(n.ends_at) if n.ends_at is not None else ZERO_TIME,
                "generatorURL": external_url or "",
                "fingerprint": fingerprint(labels),
            }
        ],
    }


class WebhookNotifier:
    """POSTs notifications to one receiver; one aiohttp session, opened on first use."""

    def __init__(
        self, name: str, config: WebhookChannel, *, timezone: str, external_url: str | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.timezone = timezone
        self.external_url = external_url
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "netwatch"}
        basic = self.config.basic_auth
        if self.config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.config.bearer_token.get_secret_value()}"
        elif basic is not None:
            pair = f"{basic.username}:{basic.password.get_secret_value()}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
        return headers

    async def send(self, notification: Notification) -> None:
        """POST one notification; raise ``DeliveryError`` unless the receiver answers 2xx."""
        payload = alertmanager_payload(
            notification,
            receiver=self.config.receiver or self.name,
            timezone=self.timezone,
            external_url=self.external_url,
        )
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout.total_seconds())
            )
        try:
            async with self._session.post(
                self.config.url,
                data=json.dumps(payload, ensure_ascii=False).encode(),
                headers=self._headers(),
            ) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"webhook {self.name}: receiver answered HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The URL stays out of the message: webhook URLs often carry a token in their path.
            raise DeliveryError(f"webhook {self.name}: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.sleep(0)
