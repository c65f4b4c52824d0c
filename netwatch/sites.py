"""Site states from polls: feed the site health engine, keep the outage ledger, persist states, and
hand the events to alerting.

A sink of the pipeline beside the recorder. The engine (``netwatch.sitehealth``) decides; this
module only turns its events into ledger rows and ``site_states`` rows for the batched writer
(which never blocks) and passes them on to the notification dispatcher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from netwatch.config.inventory import Inventory, link_interfaces
from netwatch.health import RoundOutcome, State
from netwatch.pipeline import PollRecord
from netwatch.recording import RowSink
from netwatch.sitehealth import LinkEvent, SiteEvent, SiteEventKind, SiteHealthEngine, SiteState, SiteStatus

LEDGER_STATES = frozenset(
    {SiteState.DOWN, SiteState.UNREACHABLE, SiteState.DEGRADED, SiteState.MAINTENANCE, SiteState.UNKNOWN}
)
"""States the ledger records as intervals; the rest of the time is up."""

LINK_LEDGER_STATES = frozenset({State.DOWN, State.DEGRADED})
"""States the link ledger records; a link's unknown, maintenance and unreachable time is its site's."""


class EventSink(Protocol):
    """Where site events go after the ledger (the notification dispatcher)."""

    def submit(self, events: Sequence[SiteEvent]) -> object:
        """Take a batch of events; must not block."""


class SiteTracker:
    """Drives the site engine from polls and records what it decides."""

    def __init__(
        self,
        inventory: Inventory,
        writer: RowSink,
        run_id: str,
        *,
        statuses: dict[str, SiteStatus],
        notify: EventSink | None = None,
        engine: SiteHealthEngine | None = None,
        owned: frozenset[str] | None = None,
    ) -> None:
        self.inventory = inventory
        self.owned = owned
        """Sites this instance writes and notifies for (``--shard``); None: every site."""
        self._links = link_interfaces(inventory)
        self.engine = engine or SiteHealthEngine(inventory)
        self._writer = writer
        self._run_id = run_id
        self._notify = notify
        self._statuses = statuses
        self._open: dict[str, dict[str, Any]] = {}
        self._open_links: dict[tuple[str, str], dict[str, Any]] = {}
        self._statuses.update(self._owned_statuses())

    def resume(
        self,
        states: Mapping[str, Mapping[str, Any]],
        open_rows: Mapping[str, Mapping[str, Any]],
        open_links: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    ) -> None:
        """Continue from persisted site states and open ledger intervals (after a restart), so an
        outage that was open at shutdown and is still going on stays one outage; ``open_links``
        are the link ledger's open intervals by (site, link), resumed the same way."""
        self._open_links = {key: dict(row) for key, row in (open_links or {}).items() if self.owns(key[0])}
        for site, row in states.items():
            if site in self.inventory.sites and row.get("state") in SiteState.__members__.values():
                self.engine.restore(
                    site, SiteStatus(SiteState(row["state"]), row.get("since"), row.get("cause"))
                )
        # Every shard's intervals seed the engine: parents owned elsewhere are evaluated here too.
        self.engine.restore_links(
            {
                link: (State(row["state"]), row.get("started_at"))
                for (site, link), row in (open_links or {}).items()
                if site in self.inventory.sites and row.get("state") in LINK_LEDGER_STATES
            }
        )
        self._open = {site: dict(row) for site, row in open_rows.items() if self.owns(site)}
        self._statuses.update(self._owned_statuses())

    def owns(self, site: str) -> bool:
        """True when this instance measures ``site`` and writes its ledger, state and notifications."""
        return site in self.inventory.sites and (self.owned is None or site in self.owned)

    def _owned_statuses(self) -> dict[str, SiteStatus]:
        return {code: status for code, status in self.engine.statuses().items() if self.owns(code)}

    def on_poll(self, record: PollRecord) -> None:
        """Feed one finished poll to the engine."""
        device = record.job.target.key
        if record.outcome is RoundOutcome.SKIPPED:
            return  # a discarded round (a clock step) says nothing about the site
        if record.job.kind == "icmp":
            self.handle(self.engine.on_target(device, record.job.kind, record.health, record.scheduled_at))
        elif record.job.kind == "snmp":
            watched = self._links.get(device)
            if not watched:
                return
            for m in record.result.measurements:
                if m.name != "if_oper_up":
                    continue
                ifname = dict(m.labels).get("ifname")
                if ifname in watched:
                    self.handle(self.engine.on_interface(device, ifname, m.value == 1, record.scheduled_at))

    def tick(self, now: datetime) -> None:
        """Let time pass: maintenance windows, holds and flapping flags."""
        self.handle(self.engine.tick(now))

    def replace_inventory(self, inventory: Inventory, now: datetime) -> None:
        """Swap in a reloaded inventory; removed sites close their intervals."""
        self.inventory = inventory
        self._links = link_interfaces(inventory)
        self.handle(self.engine.replace_inventory(inventory, now))
        for site in [s for s in self._statuses if s not in inventory.sites]:
            del self._statuses[site]

    def handle(self, events: Sequence[SiteEvent]) -> None:
        """Record ``events`` in the ledger and ``site_states``, then pass them on."""
        for change in self.engine.link_events():
            self._link_ledger(change)
        # Sites of other shards (parents read from the database) are evaluated here for their
        # dependents' sake only: their shard writes and notifies for them.
        events = [e for e in events if self.owned is None or e.site in self.owned or e.site in self._open]
        if not events:
            return
        for event in events:
            if event.kind is SiteEventKind.STATE:
                self._ledger(event)
            status = self.engine.status(event.site) if event.site in self.inventory.sites else None
            if status is not None:
                self._statuses[event.site] = status
                self._writer.put(
                    "site_states",
                    {
                        "site": event.site,
                        "state": status.state.value,
                        "since": status.since,
                        "cause": status.cause,
                        "updated_at": datetime.now(UTC),
                    },
                )
            else:
                self._statuses.pop(event.site, None)
        if self._notify is not None:
            self._notify.submit(events)

    def _ledger(self, event: SiteEvent) -> None:
        now = datetime.now(UTC)
        current = self._open.pop(event.site, None)
        if current is not None:
            self._writer.put("outages", {**current, "ended_at": event.since, "updated_at": now})
        if event.new in LEDGER_STATES:
            row = {
                "site": event.site,
                "state": event.new.value,
                "cause": event.cause,
                "started_at": event.since,
                "ended_at": None,
                "run_id": self._run_id,
                "updated_at": now,
            }
            self._open[event.site] = row
            self._writer.put("outages", row)

    def _link_ledger(self, event: LinkEvent) -> None:
        now = datetime.now(UTC)
        for site in event.sites:
            if not self.owns(site):
                continue
            key = (site, event.key)
            current = self._open_links.pop(key, None)
            if current is not None:
                self._writer.put("link_outages", {**current, "ended_at": event.since, "updated_at": now})
            if event.new in LINK_LEDGER_STATES:
                row = {
                    "site": site,
                    "link": event.key,
                    "state": event.new.value,
                    "cause": None,
                    "started_at": event.since,
                    "ended_at": None,
                    "run_id": self._run_id,
                    "updated_at": now,
                }
                self._open_links[key] = row
                self._writer.put("link_outages", row)
