"""Per-site health: links, parents, maintenance and flapping turned into one site state.

ARCHITECTURE.md, "Availability, defined once", made precise. Pure: no clock, no I/O, no storage;
every method takes the time it is about, and the engine's clock is the latest time it was given
(a poll reports its round's *start*, which may be earlier than the last ``tick``).

Three layers, evaluated parents first (by dependency depth, then code):

1. **Links.** A link follows the ICMP :class:`~netwatch.health.TargetHealth` of its device. Where it
   names an interface, oper-down marks it DOWN at that poll's time; oper-up does not bring it back:
   it stays DOWN until an ICMP round of the device that started at or after the oper-up is good.
   A site without ``links`` treats each of its devices as a link.
2. **Computed state** (the site's own state, then its ancestors: its parent chain and the sites
   owning its link devices' upstream chains). Own state: :func:`~netwatch.health.combine_links`.
   A site whose links are failing (DOWN, or failed rounds short of ``down_after``) while an
   ancestor is DOWN is UNREACHABLE, cause the nearest DOWN ancestor. A site turning DOWN while an
   ancestor is only *pending* (its links failing but not yet DOWN, or itself held) is *held*: it
   keeps its previous state until the ancestor is decided. A site that was UNREACHABLE and whose
   cause recovered is held too, until a round of its own started after the recovery fails (DOWN,
   since the recovery) or succeeds (UP, since that round). Every hold is bounded.
   A site netwatch cannot measure (:meth:`SiteHealthEngine.set_measured`: a parent whose shard is
   silent) is UNKNOWN, and a site that would turn DOWN (or stay UNREACHABLE) behind it is held as
   behind a pending ancestor, then UNKNOWN with it as cause: our blindness is never an outage.
   Start-up is not blindness: a site not yet polled is merely undecided.
3. **Reported state**, with precedence unknown > maintenance > computed. A maintenance window
   covers the sites it names and their subtrees (by ``parent``); it begins and ends at its
   boundaries. Flapping (more than ``flap_threshold`` changes within ``flap_window``) is a flag
   beside the state, cleared after a quiet ``flap_quiet`` with no change.

Every new state's ``since`` is backdated as the rounds rule says, but never earlier than the
previous state's ``since``, so the ledger's intervals never overlap.
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from netwatch.config.inventory import Inventory, MaintenanceWindow
from netwatch.health import State, TargetHealth, combine_links

ICMP_KIND = "icmp"
"""The collector kind whose rounds decide link state."""

DEFAULT_INTERVAL = timedelta(seconds=60)
"""Round interval assumed for a site whose link devices have no ICMP job (for hold bounds)."""


class SiteState(enum.StrEnum):
    """A site's reported state; the values are the ``state`` label of ``netwatch_site_state``."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNREACHABLE = "unreachable"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"


PRECEDENCE: tuple[SiteState, ...] = (
    SiteState.UNKNOWN,
    SiteState.MAINTENANCE,
    SiteState.UNREACHABLE,
    SiteState.DOWN,
    SiteState.DEGRADED,
    SiteState.UP,
)
"""Where states overlap, the first of this tuple wins."""

_FLAP_COUNTED = frozenset({SiteState.UP, SiteState.DEGRADED, SiteState.DOWN, SiteState.UNREACHABLE})


def _flap_counts(previous: SiteState, state: SiteState) -> bool:
    """Only going into or out of DOWN counts towards flapping: a lossy link moving between up and
    degraded is not flapping, nor is a commune moving in and out of UNREACHABLE with its district
    (the district's own changes count, once)."""
    return (
        previous in _FLAP_COUNTED
        and state in _FLAP_COUNTED
        and (previous is SiteState.DOWN) != (state is SiteState.DOWN)
    )


def prevailing(states: Iterable[SiteState]) -> SiteState:
    """The state that wins where several overlap (UP when given none)."""
    present = set(states)
    return next((s for s in PRECEDENCE if s in present), SiteState.UP)


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """A site's current state, since when, why (for UNREACHABLE) and whether it is flapping."""

    state: SiteState = SiteState.UNKNOWN
    since: datetime | None = None
    cause: str | None = None
    flapping: bool = False


class SiteEventKind(enum.StrEnum):
    """What a :class:`SiteEvent` reports: a change of state, or of the flapping flag."""

    STATE = "state"
    FLAPPING = "flapping"


@dataclass(frozen=True, slots=True)
class SiteEvent:
    """A change at one site; ``since`` is when it began (backdated), ``cause`` the root-cause site."""

    site: str
    old: SiteState
    new: SiteState
    since: datetime
    cause: str | None = None
    flapping: bool = False
    old_cause: str | None = None
    kind: SiteEventKind = SiteEventKind.STATE


@dataclass(frozen=True, slots=True)
class EventGroup:
    """One notification's worth: a site's event and the events of the sites it took down or back."""

    head: SiteEvent
    dependents: tuple[SiteEvent, ...] = ()

    @property
    def unreachable(self) -> tuple[str, ...]:
        """Codes of the dependent sites now UNREACHABLE because of the head site."""
        return tuple(e.site for e in self.dependents if e.new is SiteState.UNREACHABLE)

    @property
    def recovered(self) -> tuple[str, ...]:
        """Codes of the dependent sites no longer UNREACHABLE because of the head site."""
        return tuple(e.site for e in self.dependents if e.new is not SiteState.UNREACHABLE)


def group_events(events: Iterable[SiteEvent]) -> list[EventGroup]:
    """Attach each site entering or leaving UNREACHABLE to its cause's event in the same list.

    "District X down; communes now unreachable: [...]" is then one group, so one notification.
    """
    groups: list[tuple[SiteEvent, list[SiteEvent]]] = []
    heads: dict[str, int] = {}
    for event in events:
        anchor = event.cause if event.new is SiteState.UNREACHABLE else None
        if anchor is None and event.old is SiteState.UNREACHABLE:
            anchor = event.old_cause
        if event.kind is SiteEventKind.STATE and anchor is not None and anchor in heads:
            groups[heads[anchor]][1].append(event)
            continue
        groups.append((event, []))
        if event.kind is SiteEventKind.STATE:
            heads.setdefault(event.site, len(groups) - 1)
    return [EventGroup(head, tuple(deps)) for head, deps in groups]


def window_occurrence(window: MaintenanceWindow, when: datetime) -> tuple[datetime, datetime] | None:
    """The [start, end) in UTC of ``window``'s occurrence covering ``when``, or None.

    Mirrors :meth:`MaintenanceWindow.covers`; overlapping occurrences merge (earliest start, latest end).
    """
    if window.start is not None and window.end is not None:
        return (window.start, window.end) if window.start <= when < window.end else None
    if window.daily_start is None or window.duration is None:
        return None
    zone = ZoneInfo(window.timezone)
    local = when.astimezone(zone)
    found: tuple[datetime, datetime] | None = None
    for days_back in range(8):
        day = (local - timedelta(days=days_back)).date()
        if window.weekdays and day.weekday() not in window.weekdays:
            continue
        opens = datetime.combine(day, window.daily_start, tzinfo=zone)
        if opens <= local < opens + window.duration:
            start, end = opens.astimezone(UTC), (opens + window.duration).astimezone(UTC)
            found = (start, end) if found is None else (min(found[0], start), max(found[1], end))
    return found


LinkKey = tuple[str, str | None]
"""A link as the engine tracks it: (device, interface or None)."""


def link_id(device: str, interface: str | None) -> str:
    """A link's stable key in the link ledger and reports: ``device``, or ``device/interface``."""
    return device if interface is None else f"{device}/{interface}"


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A link's own state changed (the site's may not have): the link ledger's input. ``sites``
    are the sites listing that link; ``since`` is when the new state began (backdated)."""

    link: LinkKey
    sites: tuple[str, ...]
    old: State
    new: State
    since: datetime

    @property
    def key(self) -> str:
        """The link's stable key (:func:`link_id`)."""
        return link_id(*self.link)


@dataclass(frozen=True, slots=True)
class _Topology:
    """What the engine derives once per inventory: links, dependencies, order, windows, bounds."""

    order: Mapping[str, int]
    links: Mapping[str, tuple[LinkKey, ...]]
    sites_of_link: Mapping[LinkKey, tuple[str, ...]]
    links_of_device: Mapping[str, tuple[LinkKey, ...]]
    children: Mapping[str, tuple[str, ...]]
    ancestors: Mapping[str, tuple[str, ...]]
    windows: Mapping[str, tuple[MaintenanceWindow, ...]]
    window_sites: tuple[tuple[MaintenanceWindow, frozenset[str]], ...]
    hold_bound: Mapping[str, timedelta]


def _site_links(inventory: Inventory, code: str) -> tuple[LinkKey, ...]:
    site = inventory.sites[code]
    if site.links:
        return tuple(dict.fromkeys((link.device, link.interface) for link in site.links))
    devices = sorted(d.name for d in inventory.devices.values() if d.site == code)
    return tuple((name, None) for name in devices)


def _depends_on(inventory: Inventory, code: str, links: tuple[LinkKey, ...]) -> tuple[str, ...]:
    """Direct dependencies: the parent, and the sites owning each link device's upstream chain."""
    found: dict[str, None] = {}
    parent = inventory.sites[code].parent
    if parent is not None and parent in inventory.sites:
        found[parent] = None
    for device, _ in links:
        seen: set[str] = set()
        upstream = inventory.devices[device].upstream if device in inventory.devices else None
        while upstream is not None and upstream not in seen and upstream in inventory.devices:
            seen.add(upstream)
            found[inventory.devices[upstream].site] = None
            upstream = inventory.devices[upstream].upstream
    found.pop(code, None)
    return tuple(found)


def _depths(deps: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """Longest dependency path from a root; a cycle's back edge is ignored (the loader forbids them)."""
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(code: str) -> int:
        if code not in depth:
            visiting.add(code)
            above = [visit(d) for d in deps[code] if d not in visiting]
            visiting.discard(code)
            depth[code] = 1 + max(above, default=-1)
        return depth[code]

    for code in sorted(deps):
        visit(code)
    return depth


def _nearest_first(code: str, deps: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    seen = {code}
    found: list[str] = []
    frontier = list(deps[code])
    while frontier:
        following: list[str] = []
        for d in frontier:
            if d not in seen:
                seen.add(d)
                found.append(d)
                following.extend(deps[d])
        frontier = following
    return tuple(found)


def _interval(inventory: Inventory, links: tuple[LinkKey, ...]) -> timedelta:
    seconds = [
        job.params.interval
        for device, _ in links
        if device in inventory.devices
        for job in inventory.devices[device].jobs
        if job.kind == ICMP_KIND
    ]
    return timedelta(seconds=max(seconds)) if seconds else DEFAULT_INTERVAL


def _parent_chain(inventory: Inventory, code: str) -> set[str]:
    chain: set[str] = set()
    current: str | None = code
    while current is not None and current not in chain and current in inventory.sites:
        chain.add(current)
        current = inventory.sites[current].parent
    return chain


def _build_topology(inventory: Inventory, hold_limit: timedelta | None) -> _Topology:
    links = {code: _site_links(inventory, code) for code in inventory.sites}
    deps = {code: _depends_on(inventory, code, links[code]) for code in inventory.sites}
    depth = _depths(deps)
    ordered = sorted(inventory.sites, key=lambda c: (depth[c], c))
    children: dict[str, list[str]] = {code: [] for code in ordered}
    for code in ordered:
        for d in deps[code]:
            children[d].append(code)
    sites_of_link: dict[LinkKey, list[str]] = {}
    links_of_device: dict[str, list[LinkKey]] = {}
    for code in ordered:
        for key in links[code]:
            sites_of_link.setdefault(key, []).append(code)
            if key not in links_of_device.setdefault(key[0], []):
                links_of_device[key[0]].append(key)
    ancestors = {code: _nearest_first(code, deps) for code in ordered}
    chains = {code: _parent_chain(inventory, code) for code in ordered}
    windows = {
        code: tuple(w for w in inventory.maintenance if chains[code] & set(w.sites)) for code in ordered
    }
    window_sites = tuple(
        (w, frozenset(code for code in ordered if chains[code] & set(w.sites))) for w in inventory.maintenance
    )
    rounds = {
        code: (inventory.sites[code].rules.down_after + 1) * _interval(inventory, links[code])
        for code in ordered
    }
    bound = {code: hold_limit or max(rounds[a] for a in (code, *ancestors[code])) for code in ordered}
    return _Topology(
        order={code: i for i, code in enumerate(ordered)},
        links=links,
        sites_of_link={k: tuple(v) for k, v in sites_of_link.items()},
        links_of_device={k: tuple(v) for k, v in links_of_device.items()},
        children={k: tuple(v) for k, v in children.items()},
        ancestors=ancestors,
        windows=windows,
        window_sites=window_sites,
        hold_bound=bound,
    )


@dataclass(frozen=True, slots=True)
class _Probe:
    """What the engine keeps of a device's ICMP health after its latest round."""

    state: State
    since: datetime | None
    failing: bool
    good: bool
    first_failed_at: datetime | None
    first_good_at: datetime | None
    last_round_at: datetime

    @classmethod
    def of(cls, health: TargetHealth, at: datetime) -> _Probe:
        return cls(
            state=health.state,
            since=health.since,
            failing=health.failed_rounds > 0,
            good=health.failed_rounds == 0 and health.good_rounds > 0,
            first_failed_at=health.first_failed_at,
            first_good_at=health.first_good_at,
            last_round_at=at,
        )

    def verdict(self) -> tuple[object, ...]:
        """The fields whose change can change a site (not the round time)."""
        return (self.state, self.since, self.failing, self.first_failed_at)


@dataclass(slots=True)
class _Latch:
    """An interface seen oper-down: its link stays DOWN until a good round after oper-up."""

    down_at: datetime
    up_at: datetime | None = None


@dataclass(slots=True)
class _LinkStatus:
    state: State = State.UNKNOWN
    since: datetime | None = None


@dataclass(slots=True)
class _Record:
    """One site's mutable state inside the engine."""

    own: State = State.UNKNOWN
    own_since: datetime | None = None
    computed: SiteStatus = field(default_factory=SiteStatus)
    reported: SiteStatus = field(default_factory=SiteStatus)
    hold_started: datetime | None = None
    # Set while netwatch cannot measure the site (set_measured): its verdicts are stale.
    unmeasured_since: datetime | None = None
    maint_end: datetime | None = None
    changes: deque[datetime] = field(default_factory=deque)
    last_change: datetime | None = None
    published: tuple[object, ...] = ()


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


_BLOCKING = (SiteState.DOWN, SiteState.UNREACHABLE)
_LINK_EVENTS_KEPT = 100_000


class SiteHealthEngine:
    """The per-site state machine: feed it polls and ticks, read statuses and events."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        flap_threshold: int = 4,
        flap_window: timedelta = timedelta(minutes=10),
        flap_quiet: timedelta | None = None,
        hold_limit: timedelta | None = None,
    ) -> None:
        """``hold_limit`` overrides the per-site hold bound, by default the longest
        ``(down_after + 1) × interval`` of the site and its ancestors; ``flap_quiet`` defaults to
        ``flap_window``."""
        self._flap_threshold = flap_threshold
        self._flap_window = flap_window
        self._flap_quiet = flap_quiet if flap_quiet is not None else flap_window
        self._hold_limit = hold_limit
        self._topo = _build_topology(inventory, hold_limit)
        self._records = {code: _Record() for code in self._topo.order}
        self._links = {key: _LinkStatus() for key in self._topo.sites_of_link}
        self._probes: dict[str, _Probe] = {}
        self._latches: dict[LinkKey, _Latch] = {}
        # Links resumed from the link ledger whose device has not given a verdict since.
        self._restored: set[LinkKey] = set()
        self._covered: frozenset[str] = frozenset()
        self._now: datetime | None = None
        self._monitoring = True
        self._stopped_at: datetime | None = None
        self._resumed_at: datetime | None = None
        # Bounded: an engine whose owner never reads link events must not grow without end.
        self._link_events: deque[LinkEvent] = deque(maxlen=_LINK_EVENTS_KEPT)

    # -- inputs -------------------------------------------------------------------------------

    def on_target(self, device: str, kind: str, health: TargetHealth, at: datetime) -> list[SiteEvent]:
        """Take a device's health after a poll whose round started ``at``; return the site events."""
        now = self._advance(at)
        keys = self._topo.links_of_device.get(device, ())
        if kind != ICMP_KIND or not keys:
            return []
        probe = _Probe.of(health, at)
        previous = self._probes.get(device)
        self._probes[device] = probe
        # A round that started after the site went out of sight is a measurement again.
        seen_again = {
            site
            for key in keys
            for site in self._topo.sites_of_link[key]
            if self._measure_again(self._records[site], at, after=True)
        }
        if probe.state is not State.UNKNOWN:
            for key in keys:
                self._first_verdict(key, probe, at)
        changed = previous is None or previous.verdict() != probe.verdict()
        for key in keys:
            latch = self._latches.get(key)
            if latch is not None and latch.up_at is not None and probe.good and at >= latch.up_at:
                del self._latches[key]
                changed = True
        sites = {site for key in keys for site in self._topo.sites_of_link[key]}
        if changed:
            for key in keys:
                self._refresh_link(key, at)
        else:
            sites = {site for site in sites if self._records[site].hold_started is not None}
        return self._propagate(sites | seen_again, now)

    def on_interface(self, device: str, ifname: str, oper_up: bool, at: datetime) -> list[SiteEvent]:
        """Take an interface's oper status from an SNMP poll at ``at``; return the site events."""
        now = self._advance(at)
        key: LinkKey = (device, ifname)
        if key not in self._links:
            return []
        latch = self._latches.get(key)
        if oper_up:
            if latch is not None and latch.up_at is None:
                latch.up_at = at
            return []
        if latch is not None:
            latch.up_at = None
            return []
        self._latches[key] = _Latch(down_at=at)
        self._refresh_link(key, at)
        return self._propagate(set(self._topo.sites_of_link[key]), now)

    def tick(self, now: datetime) -> list[SiteEvent]:
        """Apply what time alone changes: maintenance windows, expiring holds, flapping flags."""
        now = self._advance(now)
        covered = self._covered_at(now)
        sites = set(covered ^ self._covered)
        self._covered = covered
        sites.update(
            code
            for code, rec in self._records.items()
            if rec.hold_started is not None
            or rec.reported.flapping
            or rec.reported.state is SiteState.MAINTENANCE
        )
        return self._propagate(sites, now)

    def set_monitoring(self, active: bool, at: datetime) -> list[SiteEvent]:
        """Tell the engine netwatch stopped (every site UNKNOWN from ``at``) or resumed measuring."""
        now = self._advance(at)
        if active == self._monitoring:
            return []
        self._monitoring = active
        self._stopped_at = None if active else at
        self._resumed_at = at if active else None
        return self._propagate(set(self._records), now)

    def replace_inventory(self, inventory: Inventory, now: datetime) -> list[SiteEvent]:
        """Swap in a reloaded inventory: removed sites go UNKNOWN (first events), others keep state."""
        now = self._advance(now)
        topo = _build_topology(inventory, self._hold_limit)
        events = [
            SiteEvent(code, rec.reported.state, SiteState.UNKNOWN, now, old_cause=rec.reported.cause)
            for code, rec in self._records.items()
            if code not in topo.order and rec.reported.state is not SiteState.UNKNOWN
        ]
        for key, gone in self._links.items():
            if key not in topo.sites_of_link and gone.state is not State.UNKNOWN:
                self._link_changed(key, gone.state, State.UNKNOWN, now)
        self._topo = topo
        self._records = {code: self._records.get(code) or _Record() for code in topo.order}
        self._probes = {d: p for d, p in self._probes.items() if d in topo.links_of_device}
        self._latches = {k: latch for k, latch in self._latches.items() if k in topo.sites_of_link}
        self._restored &= set(topo.sites_of_link)
        old_links = self._links
        self._links = {key: old_links.get(key) or _LinkStatus() for key in topo.sites_of_link}
        for key in topo.sites_of_link:
            if key not in old_links:
                self._refresh_link(key, now)
        for rec in self._records.values():
            rec.published = ()
        self._covered = self._covered_at(now)
        return events + self._propagate(set(self._records), now)

    def set_measured(self, site: str, measured: bool, at: datetime) -> list[SiteEvent]:
        """Tell the engine netwatch cannot measure ``site`` from ``at`` (e.g. a parent owned by a
        shard that went silent), or can again; return the site events.

        Its last verdict is stale: it is UNKNOWN (a DOWN hub must not keep its districts
        UNREACHABLE, an UP one must not let them go DOWN), and a dependent whose links fail behind
        it is held, then UNKNOWN with it as cause, never DOWN. A round of one of its devices that
        started after ``at`` also ends this. Unknown sites are ignored.
        """
        now = self._advance(at)
        rec = self._records.get(site)
        if rec is None:
            return []
        if measured:
            if not self._measure_again(rec, at, after=False):
                return []
        elif rec.unmeasured_since is None:
            rec.unmeasured_since = at
            rec.hold_started = None
        else:
            return []
        return self._propagate({site}, now)

    def restore(self, site: str, status: SiteStatus) -> None:
        """Resume a site from its persisted status (before any poll); unknown sites are ignored."""
        rec = self._records.get(site)
        if rec is None:
            return
        rec.reported = status
        carried = status.state not in (SiteState.MAINTENANCE, SiteState.UNKNOWN)
        rec.computed = replace(status, flapping=False) if carried else SiteStatus()
        rec.last_change = status.since
        rec.published = ()

    def restore_links(self, open_links: Mapping[str, tuple[State, datetime | None]]) -> None:
        """Resume link states (after :meth:`restore`, before any poll) from the link ledger's open
        intervals, by :func:`link_id`, so a restart continues them rather than starting UNKNOWN.

        The other links of a site resumed DEGRADED with a failing link start UP: the ledger records
        only down and degraded time, and without them whichever link is polled first would decide
        the site alone (UP from a healthy link, DOWN from the failing one). A resumed link keeps its
        state until its device's health gives a verdict (a health lost with the restart needs
        ``down_after`` rounds again); an interface link resumed DOWN whose device answers ICMP was
        oper-down, and stays DOWN until a good round after oper-up, as before the restart.
        """
        for key, status in self._links.items():
            found = open_links.get(link_id(*key))
            if found is not None and found[0] is not State.UNKNOWN:
                status.state, status.since = found
                self._restored.add(key)
        for code, rec in self._records.items():
            keys = self._topo.links[code]
            if rec.computed.state is not SiteState.DEGRADED or not self._restored.intersection(keys):
                continue
            for key in keys:
                if self._links[key].state is State.UNKNOWN:
                    self._links[key].state = State.UP
                    self._restored.add(key)

    # -- outputs ------------------------------------------------------------------------------

    def status(self, site: str) -> SiteStatus:
        """The site's reported status (KeyError for a site not in the inventory)."""
        return self._records[site].reported

    def statuses(self) -> Mapping[str, SiteStatus]:
        """Every site's reported status, parents first."""
        return {code: rec.reported for code, rec in self._records.items()}

    def link_events(self) -> list[LinkEvent]:
        """The link state changes since the last call (then forgotten), oldest first."""
        events = list(self._link_events)
        self._link_events.clear()
        return events

    def hold_bound(self, site: str) -> timedelta:
        """How long ``site`` may be held waiting for an ancestor or its own next round."""
        return self._topo.hold_bound[site]

    # -- links and own state ------------------------------------------------------------------

    @staticmethod
    def _measure_again(rec: _Record, at: datetime, *, after: bool) -> bool:
        """End ``rec``'s blindness at ``at`` (with ``after``, only if ``at`` is later than its start)."""
        began = rec.unmeasured_since
        if began is None or (after and at <= began):
            return False
        rec.unmeasured_since = None
        # Unknown until this measurement: whatever it shows begins no earlier.
        rec.computed = SiteStatus(SiteState.UNKNOWN, max(at, began))
        return True

    def _advance(self, at: datetime) -> datetime:
        if self._now is None or at > self._now:
            self._now = at
        return self._now

    def _refresh_link(self, key: LinkKey, at: datetime) -> None:
        status = self._links[key]
        since: datetime | None
        probe = self._probes.get(key[0])
        latch = self._latches.get(key)
        if probe is None:
            return
        if latch is not None:
            if status.state is not State.DOWN:
                self._link_changed(key, status.state, State.DOWN, latch.down_at)
                status.state, status.since = State.DOWN, latch.down_at
            return
        if probe.state is status.state or (probe.state is State.UNKNOWN and key in self._restored):
            return
        # After an interface latch the ICMP verdict may be older than the link's DOWN: the link
        # came back with this round.
        since = probe.since
        if since is None or (status.since is not None and since < status.since):
            since = at
        self._link_changed(key, status.state, probe.state, since)
        status.state, status.since = probe.state, since

    def _first_verdict(self, key: LinkKey, probe: _Probe, at: datetime) -> None:
        if key not in self._restored:
            return
        self._restored.discard(key)
        status = self._links[key]
        if key[1] is not None and status.state is State.DOWN and probe.state is not State.DOWN:
            self._latches.setdefault(key, _Latch(down_at=status.since or at))

    def _link_changed(self, key: LinkKey, old: State, new: State, since: datetime) -> None:
        self._link_events.append(LinkEvent(key, self._topo.sites_of_link.get(key, ()), old, new, since))

    def _update_own(self, rec: _Record, code: str) -> None:
        statuses = [self._links[key] for key in self._topo.links[code]]
        own = combine_links([s.state for s in statuses])
        if own is rec.own:
            return
        sinces = [s.since for s in statuses if s.state is not State.UNKNOWN and s.since is not None]
        rec.own_since = _later(max(sinces) if sinces else None, rec.own_since)
        rec.own = own

    def _measured(self, code: str) -> list[tuple[_LinkStatus, _Probe, LinkKey]]:
        found = []
        for key in self._topo.links[code]:
            probe = self._probes.get(key[0])
            if probe is not None:
                found.append((self._links[key], probe, key))
        return found

    def _suspect(self, code: str) -> bool:
        """Links failing but the site not yet DOWN: every measured link DOWN or failing, one failing."""
        if self._records[code].own is State.DOWN:
            return False
        failing = False
        for status, probe, _ in self._measured(code):
            if status.state is State.DOWN:
                continue
            if not probe.failing:
                return False
            failing = True
        return failing

    def _pending(self, code: str) -> bool:
        rec = self._records[code]
        return rec.unmeasured_since is not None or self._suspect(code) or rec.hold_started is not None

    def _unmeasured_ancestor(self, code: str) -> str | None:
        """The nearest ancestor netwatch cannot measure, if any."""
        ancestors = self._topo.ancestors[code]
        return next((a for a in ancestors if self._records[a].unmeasured_since is not None), None)

    def _failure_start(self, code: str) -> datetime | None:
        rec = self._records[code]
        if rec.own is State.DOWN:
            return rec.own_since
        starts = [
            status.since if status.state is State.DOWN else probe.first_failed_at
            for status, probe, _ in self._measured(code)
        ]
        return max((s for s in starts if s is not None), default=None)

    def _failed_since(self, code: str, t: datetime) -> bool:
        """Every measured link failed a round that started at or after ``t`` (or went oper-down)."""
        measured = self._measured(code)
        for status, probe, key in measured:
            latch = self._latches.get(key)
            if latch is not None and latch.down_at >= t:
                continue
            if not (probe.failing or status.state is State.DOWN) or probe.last_round_at < t:
                return False
        return bool(measured)

    def _recovery_start(self, code: str, now: datetime) -> datetime:
        starts = [probe.first_good_at for _, probe, _ in self._measured(code) if probe.first_good_at]
        return max(starts, default=now)

    def _cause(self, code: str) -> str | None:
        """The nearest DOWN ancestor, when an ancestor (not held) is DOWN or UNREACHABLE."""
        blocker: str | None = None
        for a in self._topo.ancestors[code]:
            rec = self._records[a]
            if rec.hold_started is not None or rec.computed.state not in _BLOCKING:
                continue
            if rec.computed.state is SiteState.DOWN:
                return a
            blocker = blocker or a
        if blocker is None:
            return None
        return self._records[blocker].computed.cause or blocker

    def _recovered_at(self, cause: str | None, now: datetime) -> datetime:
        rec = self._records.get(cause) if cause is not None else None
        if rec is None or rec.computed.state in _BLOCKING or rec.computed.since is None:
            return now
        return rec.computed.since

    # -- the computed state (layer 2) ------------------------------------------------------

    def _decide(self, code: str, rec: _Record, now: datetime) -> None:
        if rec.unmeasured_since is not None:
            rec.hold_started = None
            self._compute(rec, SiteState.UNKNOWN, rec.unmeasured_since, None, now)
            return
        suspect = self._suspect(code)
        failing = rec.own is State.DOWN or suspect
        cause = self._cause(code) if failing else None
        if cause is not None:
            rec.hold_started = None
            since = _later(self._failure_start(code), self._records[cause].computed.since)
            self._compute(rec, SiteState.UNREACHABLE, since, cause, now)
            return
        blind = self._unmeasured_ancestor(code) if failing else None
        if blind is not None and self._behind_unmeasured(code, rec, blind, now):
            return
        if self._must_hold(code, rec, suspect, now):
            if rec.hold_started is None:
                rec.hold_started = now
            return
        rec.hold_started = None
        previous = rec.computed
        if rec.own is State.UNKNOWN:
            return
        since = rec.own_since
        if previous.state is SiteState.UNREACHABLE:
            if rec.own is State.DOWN:
                since = _later(since, self._recovered_at(previous.cause, now))
            else:
                since = _later(since, self._recovery_start(code, now))
        self._compute(rec, SiteState(rec.own.value), since, None, now)

    def _behind_unmeasured(self, code: str, rec: _Record, blind: str, now: datetime) -> bool:
        """UNKNOWN, cause ``blind``, where the site would turn DOWN or stay UNREACHABLE behind it
        once any hold is over; True when decided. A site already DOWN was decided while its
        ancestors were seen, and stays DOWN."""
        previous = rec.computed
        if previous.state is SiteState.UNKNOWN and previous.cause is not None:
            rec.hold_started = None
            self._compute(rec, SiteState.UNKNOWN, previous.since, blind, now)
            return True
        if previous.state is SiteState.DOWN or (
            rec.own is not State.DOWN and previous.state is not SiteState.UNREACHABLE
        ):
            return False
        if self._must_hold(code, rec, self._suspect(code), now):
            return False
        rec.hold_started = None
        since = self._failure_start(code)
        if previous.state is SiteState.UNREACHABLE:
            # It was unreachable until its cause went out of sight (or recovered).
            since = _later(since, self._recovered_at(previous.cause, now))
        self._compute(rec, SiteState.UNKNOWN, since, blind, now)
        return True

    def _must_hold(self, code: str, rec: _Record, suspect: bool, now: datetime) -> bool:
        previous = rec.computed.state
        waiting_own = suspect and previous is SiteState.UNREACHABLE
        if (rec.own is not State.DOWN and not waiting_own) or previous is SiteState.DOWN:
            return False
        if rec.hold_started is not None and now - rec.hold_started >= self._topo.hold_bound[code]:
            return False
        if rec.own is State.DOWN and any(self._pending(a) for a in self._topo.ancestors[code]):
            return True
        if previous is not SiteState.UNREACHABLE:
            return False
        if rec.own is State.DOWN:
            return not self._failed_since(code, self._recovered_at(rec.computed.cause, now))
        return True

    def _compute(
        self, rec: _Record, state: SiteState, since: datetime | None, cause: str | None, now: datetime
    ) -> None:
        previous = rec.computed
        if state is previous.state:
            rec.computed = replace(previous, cause=cause)
            return
        rec.computed = SiteStatus(state, _later(since, previous.since) or now, cause)

    # -- the reported state (layer 3) -----------------------------------------------------

    def _covered_at(self, now: datetime) -> frozenset[str]:
        covered: set[str] = set()
        for window, sites in self._topo.window_sites:
            if window.covers(now):
                covered |= sites
        return frozenset(covered)

    def _occurrence(self, code: str, now: datetime) -> tuple[datetime, datetime] | None:
        found: tuple[datetime, datetime] | None = None
        for window in self._topo.windows[code]:
            occ = window_occurrence(window, now)
            if occ is not None:
                found = occ if found is None else (min(found[0], occ[0]), max(found[1], occ[1]))
        return found

    def _report(self, code: str, rec: _Record, now: datetime, events: list[SiteEvent]) -> None:
        computed = rec.computed
        if not self._monitoring:
            base = SiteStatus(SiteState.UNKNOWN, self._stopped_at)
        elif computed.state is SiteState.UNKNOWN:
            base = SiteStatus(SiteState.UNKNOWN, computed.since, computed.cause)
        else:
            # Nothing measured while stopped can have begun before the resume.
            base = replace(computed, since=_later(computed.since, self._resumed_at))
        occurrence = self._occurrence(code, now) if base.state is not SiteState.UNKNOWN else None
        ended = rec.maint_end
        in_window = rec.reported.state is SiteState.MAINTENANCE
        if in_window and ended is not None and (occurrence is None or occurrence[0] > ended):
            # The window closed at its boundary, whenever we got round to seeing it.
            rec.maint_end = None
            self._change(code, rec, base.state, min(ended, now), base.cause, now, events)
        if occurrence is not None:
            rec.maint_end = occurrence[1]
            self._change(code, rec, SiteState.MAINTENANCE, occurrence[0], None, now, events)
        else:
            self._change(code, rec, base.state, base.since, base.cause, now, events)

    def _change(
        self,
        code: str,
        rec: _Record,
        state: SiteState,
        since: datetime | None,
        cause: str | None,
        now: datetime,
        events: list[SiteEvent],
    ) -> None:
        previous = rec.reported
        if state is previous.state:
            if cause != previous.cause:
                rec.reported = replace(previous, cause=cause)
            return
        at = max(since, previous.since) if since and previous.since else since or now
        flapping, flap_turned_on = previous.flapping, False
        if _flap_counts(previous.state, state):
            rec.changes.append(now)
            while rec.changes and rec.changes[0] <= now - self._flap_window:
                rec.changes.popleft()
            rec.last_change = now
            flap_turned_on = not flapping and len(rec.changes) > self._flap_threshold
            flapping = flapping or flap_turned_on
        rec.reported = SiteStatus(state, at, cause, flapping)
        events.append(SiteEvent(code, previous.state, state, at, cause, flapping, previous.cause))
        if flap_turned_on:
            events.append(self._flap_event(code, rec.reported, now))

    def _clear_flapping(self, code: str, rec: _Record, now: datetime, events: list[SiteEvent]) -> None:
        if not rec.reported.flapping or rec.last_change is None:
            return
        quiet_from = rec.last_change + self._flap_quiet
        if now < quiet_from:
            return
        rec.changes.clear()
        rec.reported = replace(rec.reported, flapping=False)
        events.append(self._flap_event(code, rec.reported, quiet_from))

    @staticmethod
    def _flap_event(code: str, status: SiteStatus, since: datetime) -> SiteEvent:
        return SiteEvent(
            code,
            status.state,
            status.state,
            since,
            status.cause,
            status.flapping,
            status.cause,
            SiteEventKind.FLAPPING,
        )

    # -- evaluation order ---------------------------------------------------------------------

    def _signature(self, code: str) -> tuple[object, ...]:
        rec = self._records[code]
        computed = rec.computed
        flags = (self._suspect(code), rec.hold_started, rec.unmeasured_since)
        return (computed.state, computed.since, computed.cause, *flags)

    def _propagate(self, seeds: set[str], now: datetime) -> list[SiteEvent]:
        """Evaluate ``seeds`` parents first, and the dependents of every site whose verdict moved."""
        order = self._topo.order
        heap = [(order[code], code) for code in seeds if code in order]
        heapq.heapify(heap)
        queued = {code for _, code in heap}
        events: list[SiteEvent] = []
        while heap:
            _, code = heapq.heappop(heap)
            rec = self._records[code]
            self._clear_flapping(code, rec, now, events)
            self._update_own(rec, code)
            self._decide(code, rec, now)
            self._report(code, rec, now, events)
            signature = self._signature(code)
            if signature == rec.published:
                continue
            rec.published = signature
            for child in self._topo.children[code]:
                if child not in queued:
                    queued.add(child)
                    heapq.heappush(heap, (order[child], child))
        return events


__all__ = [
    "ICMP_KIND",
    "PRECEDENCE",
    "EventGroup",
    "LinkEvent",
    "SiteEvent",
    "SiteEventKind",
    "SiteHealthEngine",
    "SiteState",
    "SiteStatus",
    "group_events",
    "link_id",
    "prevailing",
    "window_occurrence",
]
