"""Notifications, and how batches of site events become them.

Rules (what pages and what does not):

- A site going DOWN fires ``down``; it resolves when the site is anything but DOWN or UNKNOWN
  (UNKNOWN means netwatch stopped measuring, which proves nothing either way).
- UNREACHABLE never pages on its own: the site is folded into the notification of its cause (the
  ancestor that is down), so a district with its communes behind it is ONE notification listing them,
  and ONE resolution.
- DEGRADED fires ``degraded`` only when configured.
- Flapping fires once when a site's flag turns on and resolves once when it clears; while a site
  flaps, its DOWN transitions open no new alert one by one (closing an open one still goes out).
- MAINTENANCE pages nothing; entering it only closes an alert that was open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol

from netwatch.config.inventory import Inventory

AlertKind = Literal["down", "degraded", "flapping"]
Status = Literal["firing", "resolved"]
ALERT_NAMES: Mapping[AlertKind, str] = {
    "down": "NetwatchSiteDown",
    "degraded": "NetwatchSiteDegraded",
    "flapping": "NetwatchSiteFlapping",
}
SEVERITY: Mapping[AlertKind, str] = {"down": "critical", "degraded": "warning", "flapping": "warning"}


class SiteStatusLike(Protocol):
    """A site's current status, as ``netwatch.sitehealth.SiteStatus`` holds it."""

    @property
    def state(self) -> str:
        """Current state."""

    @property
    def since(self) -> datetime | None:
        """When it began."""

    @property
    def cause(self) -> str | None:
        """The ancestor site that is down, for ``unreachable``."""

    @property
    def flapping(self) -> bool:
        """Whether the site is flapping."""


class SiteEventLike(Protocol):
    """A site's state change, as ``netwatch.sitehealth`` emits it (states are StrEnum or plain strings)."""

    @property
    def site(self) -> str:
        """Code of the site."""

    @property
    def old(self) -> str:
        """State before (``up``, ``degraded``, ``down``, ``unreachable``, ``maintenance``, ``unknown``)."""

    @property
    def new(self) -> str:
        """State after."""

    @property
    def since(self) -> datetime:
        """When the new state began (UTC-aware)."""

    @property
    def cause(self) -> str | None:
        """For UNREACHABLE: code of the ancestor site that is down."""

    @property
    def flapping(self) -> bool:
        """Whether the site is flapping now."""


def state_name(state: object) -> str:
    """The plain lower-case name of a state, whether a StrEnum member, an Enum or a string."""
    return str(getattr(state, "value", state)).lower()


@dataclass(frozen=True, slots=True)
class SiteRef:
    """A site as people read it: its code and its Vietnamese name."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell people: an alert firing (or reminded) or resolved, about one site."""

    alert: AlertKind
    status: Status
    site: SiteRef
    site_kind: str
    district: SiteRef
    province: str
    state: str
    starts_at: datetime
    ends_at: datetime | None
    as_of: datetime
    cause: SiteRef | None = None
    unreachable: tuple[SiteRef, ...] = ()
    flapping: bool = False
    language: str = "vi"
    reminder: bool = False

    @property
    def alertname(self) -> str:
        """The Alertmanager ``alertname`` label."""
        return ALERT_NAMES[self.alert]

    @property
    def severity(self) -> str:
        """``critical`` for DOWN, ``warning`` otherwise."""
        return SEVERITY[self.alert]

    @property
    def duration(self) -> timedelta:
        """How long the alert lasted (resolved) or has lasted so far (firing)."""
        return max((self.ends_at or self.as_of) - self.starts_at, timedelta(0))

    @property
    def key(self) -> str:
        """Dedup key: the same alert of the same site, status and episode (not the channel)."""
        return f"{self.alert}/{self.site.code}/{self.status}/{self.starts_at.isoformat()}"


@dataclass(slots=True)
class _Open:
    """An alert that fired and has not resolved yet."""

    starts_at: datetime
    unreachable: dict[str, SiteRef] = field(default_factory=dict)


_Action = tuple[AlertKind, Status, SiteEventLike, _Open]


class NotificationBuilder:
    """Turns batches of site events into notifications; remembers open alerts between batches."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        language: str = "vi",
        notify_degraded: bool = False,
        notify_flapping: bool = True,
    ) -> None:
        self.inventory = inventory
        self.language = language
        self.notify_degraded = notify_degraded
        self.notify_flapping = notify_flapping
        self._open: dict[tuple[AlertKind, str], _Open] = {}
        self._flapping: dict[str, bool] = {}
        self._state: dict[str, str] = {}
        self._cause: dict[str, str | None] = {}

    def restore(self, statuses: Mapping[str, SiteStatusLike]) -> None:
        """Resume after a restart from the sites' persisted states: an outage that was open before
        is open again (with its original start, so its resolution goes out and its dedup key holds)."""
        for code, status in statuses.items():
            state = state_name(status.state)
            self._state[code] = state
            self._cause[code] = status.cause
            self._flapping[code] = status.flapping
            if status.since is None:
                continue
            if state == "down" or (state == "degraded" and self.notify_degraded):
                self._open.setdefault((state, code), _Open(starts_at=status.since))  # type: ignore[arg-type]
            if status.flapping and self.notify_flapping:
                self._open.setdefault(("flapping", code), _Open(starts_at=status.since))
        for code, status in statuses.items():
            opened = self._open.get(("down", status.cause or ""))
            if state_name(status.state) == "unreachable" and opened is not None:
                opened.unreachable[code] = self._ref(code)

    def build(self, events: Iterable[SiteEventLike], now: datetime) -> list[Notification]:
        """The notifications one batch of events calls for, in event order."""
        actions: list[_Action] = []
        events = list(events)
        for event in events:
            self._state[event.site] = state_name(event.new)
            self._cause[event.site] = event.cause
            self._flapping_change(event, actions)
            self._level_change("down", event, actions)
            if self.notify_degraded:
                self._level_change("degraded", event, actions)
        # Folded after the whole batch: a district and its communes may come in any order.
        self._fold_unreachable(events)
        return [
            self._render(kind, status, event.site, opened, event.since if status == "resolved" else None, now)
            for kind, status, event, opened in actions
        ]

    def open_alerts(self, now: datetime) -> list[Notification]:
        """Reminders of every alert still firing, as of ``now``."""
        return [
            self._render(kind, "firing", code, opened, None, now, reminder=True)
            for (kind, code), opened in self._open.items()
        ]

    def _flapping_change(self, event: SiteEventLike, actions: list[_Action]) -> None:
        was = self._flapping.get(event.site, False)
        self._flapping[event.site] = event.flapping
        if not self.notify_flapping or was == event.flapping:
            return
        key: tuple[AlertKind, str] = ("flapping", event.site)
        if event.flapping:
            self._open[key] = _Open(starts_at=event.since)
            actions.append(("flapping", "firing", event, self._open[key]))
        elif key in self._open:
            actions.append(("flapping", "resolved", event, self._open.pop(key)))

    def _level_change(self, kind: AlertKind, event: SiteEventLike, actions: list[_Action]) -> None:
        key = (kind, event.site)
        new = state_name(event.new)
        if new == kind and key not in self._open:
            if event.flapping and self.notify_flapping:
                return
            self._open[key] = _Open(starts_at=event.since)
            actions.append((kind, "firing", event, self._open[key]))
        elif new not in (kind, "unknown") and key in self._open:
            actions.append((kind, "resolved", event, self._open.pop(key)))

    def _fold_unreachable(self, events: list[SiteEventLike]) -> None:
        """Put sites that became UNREACHABLE under their cause's open alert; drop those that left it."""
        for event in events:
            new, old = state_name(event.new), state_name(event.old)
            if new == "unreachable" and event.cause is not None:
                opened = self._open.get(("down", event.cause))
                if opened is not None:
                    opened.unreachable[event.site] = self._ref(event.site)
            if old == "unreachable" and new != "unreachable":
                for (kind, _code), opened in self._open.items():
                    if kind == "down":
                        opened.unreachable.pop(event.site, None)

    def _render(
        self,
        kind: AlertKind,
        status: Status,
        code: str,
        opened: _Open,
        ends_at: datetime | None,
        now: datetime,
        *,
        reminder: bool = False,
    ) -> Notification:
        site = self.inventory.sites.get(code)
        district_code = site.district if site is not None else self.inventory.province.code
        cause = self._cause.get(code)
        return Notification(
            alert=kind,
            status=status,
            site=self._ref(code),
            site_kind=site.kind if site is not None else "",
            district=self._ref(district_code),
            province=self.inventory.province.code,
            state=self._state.get(code, "unknown"),
            starts_at=opened.starts_at,
            ends_at=ends_at,
            as_of=now,
            cause=self._ref(cause) if cause is not None and cause != code else None,
            unreachable=tuple(sorted(opened.unreachable.values(), key=lambda ref: ref.code)),
            flapping=self._flapping.get(code, False),
            language=self.language,
            reminder=reminder,
        )

    def _ref(self, code: str) -> SiteRef:
        site = self.inventory.sites.get(code)
        if site is not None:
            return SiteRef(code, site.name)
        if code == self.inventory.province.code:
            return SiteRef(code, self.inventory.province.name)
        return SiteRef(code, code)


def in_language(notification: Notification, language: str) -> Notification:
    """The same notification, to be told in another language."""
    return notification if notification.language == language else replace(notification, language=language)
