"""Sent notifications survive a restart: what the dispatcher marked is known to the next run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from netwatch.sentstore import SqlSentStore
from netwatch.storage import migrate, repository
from netwatch.storage.engine import create_engine_for
from netwatch.storage.writer import BatchWriter

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def test_marks_persist_and_old_ones_are_not_reloaded(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nw.db'}")
    migrate.upgrade(engine)
    writer = BatchWriter(engine, flush_interval=0.05)
    writer.start()
    store = SqlSentStore(writer, {})
    key = "noc|NetwatchSiteDown/TK/firing/2026-11-28T15:00:00+00:00"
    assert store.was_sent(key) is None
    store.mark_sent(key, T0)
    store.mark_sent("noc|old", T0 - timedelta(days=30))
    assert store.was_sent(key) == T0
    writer.stop()
    reloaded = SqlSentStore(writer, repository.notifications_sent(engine, T0 - timedelta(days=7)))
    assert reloaded.was_sent(key) == T0
    assert reloaded.was_sent("noc|old") is None
    engine.dispose()
