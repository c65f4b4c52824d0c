"""The resolved inventory: flat, frozen objects the rest of netwatch trusts.

The loader (``netwatch.config.loader``) validates the YAML, applies precedence
(device > site > site kind > defaults) and includes once, and hands out these objects.
Nothing downstream re-reads YAML or re-applies defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from collectors.base import CollectorParams, Target


@dataclass(frozen=True, slots=True)
class Province:
    """The province an inventory describes."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class HealthRules:
    """How rounds turn into states for one site kind (after precedence is applied)."""

    down_after: int = 3
    up_after: int = 1
    degraded_loss_ratio: float = 0.2
    degraded_rtt_seconds: float = 0.5
    sla_target: float = 0.99


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a site: the device (and optionally its interface) that stands for it."""

    device: str
    interface: str | None = None
    contracted_bps: float | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    """A place the operators care about: a party committee, a board, the data center."""

    code: str
    name: str
    kind: str
    district: str
    parent: str | None
    rules: HealthRules
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    """One scheduled poll: a target polled by one collector kind with its resolved params."""

    target: Target
    kind: str
    params: CollectorParams

    @property
    def key(self) -> str:
        """Stable job id: ``device/kind``."""
        return f"{self.target.key}/{self.kind}"


@dataclass(frozen=True, slots=True)
class Device:
    """A polled box: router, switch, server, SAN, UPS, video-conference endpoint."""

    name: str
    site: str
    address: str
    role: str
    upstream: str | None = None
    jobs: tuple[Job, ...] = ()


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned work on some sites (and their subtrees): one-off or weekly recurring, in local time."""

    name: str
    sites: tuple[str, ...]
    start: datetime | None = None
    end: datetime | None = None
    weekdays: tuple[int, ...] = ()
    daily_start: time | None = None
    duration: timedelta | None = None
    timezone: str = "Asia/Ho_Chi_Minh"

    def covers(self, when: datetime) -> bool:
        """True when ``when`` (timezone-aware) falls inside this window."""
        if self.start is not None and self.end is not None:
            return self.start <= when < self.end
        if self.daily_start is None or self.duration is None:
            return False
        from zoneinfo import ZoneInfo

        local = when.astimezone(ZoneInfo(self.timezone))
        for days_back in range(0, 8):
            day = (local - timedelta(days=days_back)).date()
            if self.weekdays and day.weekday() not in self.weekdays:
                continue
            opens = datetime.combine(day, self.daily_start, tzinfo=ZoneInfo(self.timezone))
            if opens <= local < opens + self.duration:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything one configuration describes, resolved."""

    province: Province
    sites: Mapping[str, Site] = field(default_factory=dict)
    devices: Mapping[str, Device] = field(default_factory=dict)
    maintenance: tuple[MaintenanceWindow, ...] = ()
    timezone: str = "Asia/Ho_Chi_Minh"
    source_files: tuple[str, ...] = ()
    credentials: Mapping[str, Any] = field(default_factory=dict)
    alerting: Any = None
    """The validated ``alerting:`` section (``netwatch.config.alerting.AlertingConfig``), or None."""
    retention: Any = None
    """The ``retention:`` section (``netwatch.config.retention.RetentionPolicy``); None: the defaults."""

    @property
    def jobs(self) -> tuple[Job, ...]:
        """Every scheduled poll of every device."""
        return tuple(job for device in self.devices.values() for job in device.jobs)

    def site_of_device(self, device: str) -> Site:
        """The site a device belongs to."""
        return self.sites[self.devices[device].site]


def link_interfaces(inventory: Inventory) -> dict[str, dict[str, float | None]]:
    """Interfaces that carry a site's link, by device: ``{device: {ifname: contracted_bps}}``.

    Computed once per inventory by those who need it on every poll, not re-scanned per poll.
    """
    out: dict[str, dict[str, float | None]] = {}
    for site in inventory.sites.values():
        for link in site.links:
            if link.interface:
                out.setdefault(link.device, {})[link.interface] = link.contracted_bps
    return out
