"""Turn finished polls into database rows for the batched writer.

A sink of the pipeline: it only builds rows and hands them to ``put`` (which never blocks);
the writer thread does the SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from netwatch.health import State, TargetHealth
from netwatch.pipeline import PollRecord


class RowSink(Protocol):
    """The batched writer, as the recorder sees it."""

    def put(self, table: str, row: Mapping[str, Any]) -> None:
        """Queue one row; never blocks."""


class PollRecorder:
    """Writes every poll, its ICMP sample and the target's persisted health."""

    def __init__(self, writer: RowSink, run_id: str) -> None:
        self._writer = writer
        self._run_id = run_id

    def on_poll(self, record: PollRecord) -> None:
        """Queue the rows of one poll."""
        job, result = record.job, record.result
        target = job.target.key
        self._writer.put(
            "polls",
            {
                "target": target,
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
            self._writer.put(
                "icmp_samples",
                {
                    "target": target,
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
        self._writer.put("target_states", health_row(target, job.kind, record.health, record.started_at))


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
