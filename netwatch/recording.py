"""Turn finished polls into database rows for the batched writer.

A sink of the pipeline: it only builds rows and hands them to ``put`` (which never blocks);
the writer thread does the SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from netwatch.config.inventory import Inventory, link_interfaces
from netwatch.health import State, TargetHealth
from netwatch.pipeline import PollRecord

INTERFACE_TOTALS = {
    "if_in_octets": "in_octets_total",
    "if_out_octets": "out_octets_total",
    "if_in_errors": "in_errors_total",
    "if_out_errors": "out_errors_total",
    "if_in_discards": "in_discards_total",
    "if_out_discards": "out_discards_total",
}
INTERFACE_RATES = {"if_in_octets": "in_bps", "if_out_octets": "out_bps"}


class RowSink(Protocol):
    """The batched writer, as the recorder sees it."""

    def put(self, table: str, row: Mapping[str, Any]) -> None:
        """Queue one row; never blocks."""


class PollRecorder:
    """Writes every poll, its samples and the target's persisted health."""

    def __init__(self, writer: RowSink, run_id: str, inventory: Inventory) -> None:
        self._writer = writer
        self._run_id = run_id
        self.inventory = inventory

    @property
    def inventory(self) -> Inventory:
        """The inventory rows are built against (swapped on reload)."""
        return self._inventory

    @inventory.setter
    def inventory(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._links = link_interfaces(inventory)

    def on_poll(self, record: PollRecord) -> None:
        """Queue the rows of one poll."""
        job, result = record.job, record.result
        self._writer.put(
            "polls",
            {
                "target": job.target.key,
                "kind": job.kind,
                "scheduled_at": record.scheduled_at,
                "started_at": record.started_at,
                "duration_seconds": result.duration,
                "success": result.success,
                "reason": result.reason,
                "run_id": self._run_id,
            },
        )
        if job.kind == "icmp":
            self._icmp(record)
        elif job.kind == "snmp":
            self._snmp(record)
        self._writer.put(
            "target_states", health_row(job.target.key, job.kind, record.health, record.started_at)
        )

    def _icmp(self, record: PollRecord) -> None:
        result = record.result
        self._writer.put(
            "icmp_samples",
            {
                "target": record.job.target.key,
                "scheduled_at": record.scheduled_at,
                "started_at": record.started_at,
                "sent": int(result.value("icmp_packets_sent") or 0),
                "received": int(result.value("icmp_packets_received") or 0),
                "rtt_min_seconds": result.value("icmp_rtt_min_seconds"),
                "rtt_avg_seconds": result.value("icmp_rtt_avg_seconds"),
                "rtt_max_seconds": result.value("icmp_rtt_max_seconds"),
                "jitter_seconds": result.value("icmp_jitter_seconds"),
            },
        )

    def _totals(
        self, record: PollRecord, interfaces: dict[int, dict[str, Any]], names: Mapping[int, Any]
    ) -> None:
        """Counter totals and rates: interface ones into ``interfaces``, the rest as device metrics."""
        device = record.job.target.key
        for (name, series), total in record.counters.totals.items():
            ifindex = _ifindex(dict(series))
            if ifindex is not None and ifindex not in names:
                continue  # kept from an earlier poll (this one ended early): not a sample of this round
            if ifindex is not None and name in INTERFACE_TOTALS:
                interfaces[ifindex][INTERFACE_TOTALS[name]] = total
                if name in INTERFACE_RATES:
                    rate = record.counters.last_rates.get((name, series))
                    interfaces[ifindex][INTERFACE_RATES[name]] = None if rate is None else rate * 8
            else:
                self._metric(device, f"{name}_total", series, record.scheduled_at, total)

    def _snmp(self, record: PollRecord) -> None:
        device = record.job.target.key
        interfaces: dict[int, dict[str, Any]] = defaultdict(dict)
        names: dict[int, dict[str, str]] = {}
        for m in record.result.measurements:
            labels = dict(m.labels)
            ifindex = _ifindex(labels)
            if ifindex is not None and m.name.startswith("if_"):
                names.setdefault(ifindex, labels)
                if m.name == "if_oper_up":
                    interfaces[ifindex]["oper_up"] = m.value == 1
                elif m.name == "if_speed_bps":
                    interfaces[ifindex]["speed_bps"] = m.value
            elif m.kind in ("gauge", "info"):
                self._metric(device, m.name, m.labels, record.scheduled_at, m.value)
        self._totals(record, interfaces, names)
        contracted = self._contracted(device)
        for ifindex, values in interfaces.items():
            self._interface_sample(record, ifindex, values, contracted.get(names[ifindex].get("ifname", "")))
        if record.result.details.get("static_refreshed"):
            for ifindex, labels in names.items():
                ifname = labels.get("ifname", "")
                self._writer.put(
                    "interfaces",
                    {
                        "device": device,
                        "ifindex": ifindex,
                        "ifname": ifname,
                        "ifalias": labels.get("ifalias", ""),
                        "iftype": None,
                        "speed_bps": interfaces[ifindex].get("speed_bps"),
                        "contracted_bps": contracted.get(ifname),
                        "updated_at": datetime.now(UTC),
                    },
                )

    def _interface_sample(
        self, record: PollRecord, ifindex: int, values: dict[str, Any], contracted: float | None
    ) -> None:
        capacity = contracted or values.get("speed_bps")
        row = {
            "device": record.job.target.key,
            "ifindex": ifindex,
            "scheduled_at": record.scheduled_at,
            "started_at": record.started_at,
            "oper_up": values.get("oper_up"),
            **{
                column: values.get(column)
                for column in (*INTERFACE_TOTALS.values(), *INTERFACE_RATES.values())
            },
            "utilisation_in_ratio": _ratio(values.get("in_bps"), capacity),
            "utilisation_out_ratio": _ratio(values.get("out_bps"), capacity),
        }
        self._writer.put("interface_samples", row)

    def _metric(
        self, device: str, name: str, labels: tuple[tuple[str, str], ...], at: datetime, value: float
    ) -> None:
        self._writer.put(
            "device_metric_samples",
            {
                "device": device,
                "metric": name,
                "labels": ",".join(f"{k}={v}" for k, v in sorted(labels)),
                "scheduled_at": at,
                "value": value,
            },
        )

    def _contracted(self, device: str) -> dict[str, float]:
        return {ifname: bps for ifname, bps in self._links.get(device, {}).items() if bps is not None}


def _ifindex(labels: Mapping[str, str]) -> int | None:
    value = labels.get("ifindex")
    return int(value) if value is not None and value.isdigit() else None


def _ratio(rate: float | None, capacity: float | None) -> float | None:
    return None if rate is None or not capacity else rate / capacity


def health_row(target: str, kind: str, health: TargetHealth, last_poll_at: datetime) -> dict[str, Any]:
    """The ``target_states`` row that lets a restart resume ``health`` where it was."""
    return {
        "target": target,
        "kind": kind,
        "state": health.state.value,
        "since": health.since,
        "failed_rounds": health.failed_rounds,
        "good_rounds": health.good_rounds,
        "first_failed_at": health.first_failed_at,
        "first_good_at": health.first_good_at,
        "last_poll_at": last_poll_at,
        "updated_at": datetime.now(UTC),
    }


def restore_health(health: TargetHealth, row: Mapping[str, Any]) -> None:
    """Load a persisted ``target_states`` row back into ``health``."""
    try:
        health.state = State(row["state"])
    except ValueError:
        health.state = State.UNKNOWN
    health.since = row.get("since")
    health.failed_rounds = int(row.get("failed_rounds") or 0)
    health.good_rounds = int(row.get("good_rounds") or 0)
    health.first_failed_at = row.get("first_failed_at")
    health.first_good_at = row.get("first_good_at")
