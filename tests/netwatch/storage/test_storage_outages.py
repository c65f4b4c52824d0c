"""The outage ledger through the writer: an interval opens, closes in place, and a replay adds nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from netwatch.storage.models import Outage
from netwatch.storage.writer import BatchWriter
from tests.netwatch.storage.rows import T0


def test_an_outage_opens_then_closes_in_place_and_replays_are_harmless(migrated: Engine) -> None:
    writer = BatchWriter(migrated, flush_interval=0.05)
    writer.start()
    opened = {
        "site": "TK",
        "state": "down",
        "cause": "link tk-router down",
        "started_at": T0,
        "ended_at": None,
        "run_id": "r1",
        "updated_at": T0,
    }
    writer.put("outages", opened)
    writer.put("outages", {**opened, "run_id": "r1"})  # the same opening again (replay after a crash)
    other = {**opened, "site": "TK-C01", "state": "unreachable", "cause": "TK"}
    writer.put("outages", other)
    assert writer.flush(10)
    writer.put(
        "outages", {**opened, "ended_at": T0 + timedelta(minutes=7), "updated_at": T0 + timedelta(minutes=7)}
    )
    writer.stop()
    with migrated.connect() as conn:
        rows = conn.execute(
            select(Outage.site, Outage.state, Outage.cause, Outage.started_at, Outage.ended_at).order_by(
                Outage.site
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("TK", "down", "link tk-router down", T0, T0 + timedelta(minutes=7)),
        ("TK-C01", "unreachable", "TK", T0, None),
    ]
    assert writer.dropped_total == 0
