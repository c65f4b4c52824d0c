"""Turn finished polls into database rows for the batched writer.

A sink of the pipeline: it only builds rows and hands them to ``put`` (which never blocks);
the writer thread does the SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from collectors.base import Measurement
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
_INTERFACE_COLUMNS = (*INTERFACE_TOTALS.values(), *INTERFACE_RATES.values())
HEALTH_REFRESH_SECONDS = 60.0
"""A target whose health did not change gets its ``target_states`` row rewritten at most this often
(so ``last_poll_at`` stays fresh for other shards); a change is written at once."""


class RowSink(Protocol):
    """The batched writer, as the recorder sees it."""

    def put(self, table: str, row: Mapping[str, Any]) -> None:
        """Queue one row; never blocks."""


class PollRecorder:
    """Writes every poll, its samples and the target's persisted health (when it changes, else once a
    minute: see :func:`health_mark`)."""

    def __init__(self, writer: RowSink, run_id: str, inventory: Inventory) -> None:
        self._writer = writer
        self._run_id = run_id
        self._health_written: dict[tuple[str, str], tuple[tuple[Any, ...], datetime]] = {}
        self.inventory = inventory

    @property
    def inventory(self) -> Inventory:
        """The inventory rows are built against (swapped on reload)."""
        return self._inventory

    @inventory.setter
    def inventory(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._links = link_interfaces(inventory)
        self._contracted_bps = {
            device: {ifname: bps for ifname, bps in links.items() if bps is not None}
            for device, links in self._links.items()
        }
        jobs = {(job.target.key, job.kind) for job in inventory.jobs}
        self._health_written = {k: v for k, v in self._health_written.items() if k in jobs}

    def on_poll(self, record: PollRecord) -> None:
        """Queue the rows of one poll: an ICMP round is one row, its figures in its poll's row."""
        job, result = record.job, record.result
        row = {
            "target": job.target.key,
            "kind": job.kind,
            "scheduled_at": record.scheduled_at,
            "started_at": record.started_at,
            "duration_seconds": result.duration,
            "success": result.success,
            "reason": result.reason,
            "run_id": self._run_id,
            # The rule of netwatch_polls_late_total, against the interval configured now.
            "on_time": (record.started_at - record.scheduled_at).total_seconds() <= job.params.interval / 10,
        }
        if job.kind == "icmp" and not result.details.get("discarded"):  # a discarded round measured nothing
            row.update(icmp_figures(result.measurements))
        self._writer.put("polls", row)
        if job.kind == "snmp":
            self._snmp(record)
        self._health(record)

    def _health(self, record: PollRecord) -> None:
        """Persist the target's health when it changed, else at most every HEALTH_REFRESH_SECONDS."""
        key = (record.job.target.key, record.job.kind)
        mark = health_mark(record.health)
        last = self._health_written.get(key)
        # Timed on the poll grid, not the wall clock: the same polls write the same rows.
        at = record.scheduled_at
        if last is not None and last[0] == mark and (at - last[1]).total_seconds() < HEALTH_REFRESH_SECONDS:
            return
        self._health_written[key] = (mark, at)
        self._writer.put("target_states", health_row(key[0], key[1], record.health, record.started_at))

    def _totals(
        self,
        record: PollRecord,
        interfaces: dict[int, dict[str, Any]],
        names: Mapping[int, Any],
        parsed: dict[Labels, int | None],
    ) -> None:
        """Counter totals and rates: interface ones into ``interfaces``, the rest as device metrics."""
        device = record.job.target.key
        for (name, series), total, rate in record.counters.scaled():
            ifindex = parsed[series] if series in parsed else _ifindex_of(series, parsed)
            if ifindex is not None and ifindex not in names:
                continue  # kept from an earlier poll (this one ended early): not a sample of this round
            column = INTERFACE_TOTALS.get(name) if ifindex is not None else None
            if ifindex is not None and column is not None:
                values = interfaces[ifindex]
                values[column] = total
                rate_column = INTERFACE_RATES.get(name)
                if rate_column is not None:
                    values[rate_column] = None if rate is None else rate * 8
            else:
                self._metric(device, f"{name}_total", series, record.scheduled_at, total)

    def _snmp(self, record: PollRecord) -> None:
        device = record.job.target.key
        interfaces: dict[int, dict[str, Any]] = defaultdict(dict)
        names: dict[int, Labels] = {}
        # A row's measurements share one labels tuple: read its ifindex once per poll, not per value.
        parsed: dict[Labels, int | None] = {}
        for m in record.result.measurements:
            labels = m.labels
            ifindex = parsed[labels] if labels in parsed else _ifindex_of(labels, parsed)
            if ifindex is not None and m.name.startswith("if_"):
                names.setdefault(ifindex, labels)
                if m.name == "if_oper_up":
                    interfaces[ifindex]["oper_up"] = m.value == 1
                elif m.name == "if_speed_bps":
                    interfaces[ifindex]["speed_bps"] = m.value
            elif m.kind in ("gauge", "info"):
                self._metric(device, m.name, labels, record.scheduled_at, m.value)
        self._totals(record, interfaces, names, parsed)
        contracted = self._contracted_bps.get(device, {})
        ifnames = {ifindex: _label(labels, "ifname") for ifindex, labels in names.items()}
        for ifindex, values in interfaces.items():
            self._interface_sample(record, ifindex, values, contracted.get(ifnames[ifindex]))
        if record.result.details.get("static_refreshed"):
            for ifindex, labels in names.items():
                ifname = ifnames[ifindex]
                self._writer.put(
                    "interfaces",
                    {
                        "device": device,
                        "ifindex": ifindex,
                        "ifname": ifname,
                        "ifalias": _label(labels, "ifalias"),
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
            **{column: values.get(column) for column in _INTERFACE_COLUMNS},
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


Labels = tuple[tuple[str, str], ...]


def _label(labels: Labels, name: str) -> str:
    for key, value in labels:
        if key == name:
            return value
    return ""


def _ifindex_of(labels: Labels, parsed: dict[Labels, int | None]) -> int | None:
    """The ifindex label as a number (None without one), remembered in ``parsed``."""
    value = _label(labels, "ifindex")
    ifindex = parsed[labels] = int(value) if value.isdigit() else None
    return ifindex


def _ratio(rate: float | None, capacity: float | None) -> float | None:
    return None if rate is None or not capacity else rate / capacity


def icmp_figures(measurements: Iterable[Measurement]) -> dict[str, Any]:
    """An ICMP round's columns of its ``polls`` row, from the round's measurements."""
    values: dict[str, float] = {}
    for m in measurements:
        if not m.labels:
            values.setdefault(m.name, m.value)  # the first one, as CollectResult.value reads
    return {
        "sent": int(values.get("icmp_packets_sent") or 0),
        "received": int(values.get("icmp_packets_received") or 0),
        "rtt_min_seconds": values.get("icmp_rtt_min_seconds"),
        "rtt_avg_seconds": values.get("icmp_rtt_avg_seconds"),
        "rtt_max_seconds": values.get("icmp_rtt_max_seconds"),
        "jitter_seconds": values.get("icmp_jitter_seconds"),
    }


def health_mark(health: TargetHealth) -> tuple[Any, ...]:
    """What of ``health`` a restart needs: round counts past their thresholds change nothing, so a
    target that stays up (or down) has the same mark poll after poll."""
    rules = health.rules
    return (
        health.state,
        health.since,
        min(health.failed_rounds, max(rules.down_after, 1)),
        min(health.good_rounds, max(rules.up_after, 1)),
        health.first_failed_at,
        health.first_good_at,
    )


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
