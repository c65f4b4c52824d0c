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
from netwatch.pipeline import PollRecord
from netwatch.recording import RowSink
from netwatch.sitehealth import SiteEvent, SiteEventKind, SiteHealthEngine, SiteState, SiteStatus

LEDGER_STATES = frozenset(
    {SiteState.DOWN, SiteState.UNREACHABLE, SiteState.DEGRADED, SiteState.MAINTENANCE, SiteState.UNKNOWN}
)
"""States the ledger records as intervals; the rest of the time is up."""


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
    ) -> None:
        self.inventory = inventory
        self._links = link_interfaces(inventory)
        self.engine = engine or SiteHealthEngine(inventory)
        self._writer = writer
        self._run_id = run_id
        self._notify = notify
        self._statuses = statuses
        self._open: dict[str, dict[str, Any]] = {}
        self._statuses.update(self.engine.statuses())

    def resume(
        self, states: Mapping[str, Mapping[str, Any]], open_rows: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Continue from persisted site states and open ledger intervals (after a restart), so an
        outage that was open at shutdown and is still going on stays one outage."""
        for site, row in states.items():
            if site in self.inventory.sites and row.get("state") in SiteState.__members__.values():
                self.engine.restore(
                    site, SiteStatus(SiteState(row["state"]), row.get("since"), row.get("cause"))
                )
        self._open = {site: dict(row) for site, row in open_rows.items() if site in self.inventory.sites}
        self._statuses.update(self.engine.statuses())

    def on_poll(self, record: PollRecord) -> None:
        """Feed one finished poll to the engine."""
        device = record.job.target.key
        if record.job.kind == "icmp":
            self.handle(self.engine.on_target(device, record.job.kind, record.health, record.scheduled_at))
        elif record.job.kind == "snmp":
            watched = self._links.get(device, {})
            for m in record.result.measurements:
                ifname = dict(m.labels).get("ifname")
                if m.name == "if_oper_up" and ifname in watched:
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
