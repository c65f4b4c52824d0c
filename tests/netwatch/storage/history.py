"""Raw samples and rollup snapshots shared by the rollup, retention and bandwidth report tests."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from netwatch.storage.dml import table_named


def interface_row(
    device: str, ifindex: int, at: datetime, in_bps: float | None, out_bps: float | None
) -> dict[str, Any]:
    """One interface sample with the given rates (totals left empty)."""
    return {
        "device": device,
        "ifindex": ifindex,
        "scheduled_at": at,
        "started_at": at,
        "oper_up": True,
        "in_bps": in_bps,
        "out_bps": out_bps,
    }


def icmp_row(target: str, at: datetime, received: int, rtt: float | None, sent: int = 3) -> dict[str, Any]:
    """One ICMP round's ``polls`` row: ``received`` of ``sent`` answered, every answer with RTT ``rtt``."""
    return {
        "target": target,
        "kind": "icmp",
        "scheduled_at": at,
        "started_at": at,
        "duration_seconds": 0.01,
        "success": received > 0,
        "reason": None if received else "timeout",
        "run_id": "run-1",
        "on_time": True,
        "sent": sent,
        "received": received,
        "rtt_min_seconds": rtt,
        "rtt_avg_seconds": rtt,
        "rtt_max_seconds": rtt,
        "jitter_seconds": 0.0 if rtt is not None else None,
    }


def insert_rows(engine: Engine, table: str, rows: Iterable[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` in one transaction."""
    rows = list(rows)
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(table_named(table)), rows)


def make_link(engine: Engine, device: str, ifindex: int, *, site: str = "S1") -> None:
    """Make interface ``ifindex`` of ``device`` a link of ``site``, as the daemon mirrors an inventory
    link naming it: its ``interfaces`` row (ifname ``if<ifindex>``) and a ``site_links`` row."""
    ifname, at = f"if{ifindex}", datetime(2026, 1, 1, tzinfo=UTC)
    insert_rows(
        engine,
        "interfaces",
        [
            {
                "device": device,
                "ifindex": ifindex,
                "ifname": ifname,
                "ifalias": "",
                "iftype": None,
                "speed_bps": None,
                "contracted_bps": None,
                "updated_at": at,
            }
        ],
    )
    link = f"{device}/{ifname}"
    insert_rows(
        engine,
        "site_links",
        [
            {
                "site": site,
                "link": link,
                "position": 0,
                "name": link,
                "device": device,
                "interface": ifname,
                "contracted_bps": None,
                "updated_at": at,
            }
        ],
    )


def random_history(engine: Engine, start: datetime, hours: int, seed: int = 7) -> None:
    """``hours`` of irregular history: 3 interfaces every 60 s (some missing rates, some gaps),
    2 ICMP targets every 10 s (some lost rounds)."""
    rng = random.Random(seed)
    interfaces = []
    for n in range(hours * 60):
        at = start + timedelta(seconds=60 * n + rng.choice((0, 0, 0, 7)))
        for device, ifindex in (("r1", 1), ("r1", 2), ("r2", 5)):
            if rng.random() < 0.03:
                continue  # a missed poll
            rate = None if rng.random() < 0.05 else rng.uniform(0, 4e6)
            interfaces.append(interface_row(device, ifindex, at, rate, rng.uniform(0, 2e6)))
    insert_rows(engine, "interface_samples", interfaces)
    rounds = []
    for n in range(hours * 360):
        at = start + timedelta(seconds=10 * n)
        for target in ("r1", "r2"):
            received = rng.choice((3, 3, 3, 2, 0))
            rounds.append(icmp_row(target, at, received, rng.uniform(0.001, 0.05) if received else None))
    insert_rows(engine, "polls", rounds)


def snapshot(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``, sorted, for comparing two databases or two runs."""
    t = table_named(table)
    key = [c for c in t.primary_key.columns]
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(t).order_by(*key))]


def assert_same_rows(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Same rows, floats equal to 12 significant digits (PostgreSQL sums in scan order, so the last
    bits of an average may differ between two computations over the same values)."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        same = [
            x == pytest.approx(y, rel=1e-12) if isinstance(x, float) and isinstance(y, float) else x == y
            for x, y in zip(a, b, strict=True)
        ]
        assert all(same), (a, b)
