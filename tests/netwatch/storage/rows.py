"""Rows and counts shared by the storage tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from netwatch.storage.dml import table_named

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
"""A fixed instant the tests count from."""


def poll_row(n: int, target: str = "r1", run_id: str = "run-1") -> dict[str, Any]:
    """The n-th poll of ``target``, one minute apart."""
    scheduled = T0 + timedelta(minutes=n)
    return {
        "target": target,
        "kind": "icmp",
        "scheduled_at": scheduled,
        "started_at": scheduled + timedelta(milliseconds=3),
        "duration_seconds": 0.012,
        "success": n % 7 != 0,
        "reason": None if n % 7 else "timeout",
        "run_id": run_id,
    }


def count(engine: Engine, table: str) -> int:
    """Rows in ``table``."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table_named(table))).scalar_one())
