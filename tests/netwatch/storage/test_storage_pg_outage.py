"""PostgreSQL stopped mid-run: rows put meanwhile are kept, then written in order once it is back."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.models import Poll
from netwatch.storage.writer import BatchWriter
from tests.netwatch.storage.rows import poll_row
from tests.support.postgres import PostgresCluster, fresh_database, throwaway_cluster

pytestmark = pytest.mark.postgres

PASSWORD = "Bí-mật-42"


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own: it is stopped and restarted under the writer."""
    with throwaway_cluster() as c:
        yield c


def _wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_rows_put_while_postgres_is_down_are_written_after_in_order(
    cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="netwatch.storage")
    with fresh_database(cluster.url) as url:
        # Trust auth ignores the password; it is here to prove it never reaches a log or an error.
        engine = create_engine_for(url.replace("postgres@", f"postgres:{PASSWORD}@"))
        try:
            upgrade(engine)
            writer = BatchWriter(engine, batch_size=5, flush_interval=0.02, retry_initial=0.05, retry_max=0.4)
            writer.start()
            for n in range(10):
                writer.put("polls", poll_row(n))
            assert writer.flush(timeout=30)

            cluster.stop()
            for n in range(10, 40):
                writer.put("polls", poll_row(n))
                time.sleep(0.01)
            assert _wait_for(lambda: not writer.healthy, 15)
            time.sleep(1.0)  # several retries during the outage
            assert writer.queue_length == 30
            assert writer.last_error is not None

            cluster.start()
            assert writer.flush(timeout=60)
            assert writer.healthy
            with engine.connect() as conn:
                rows = conn.execute(select(Poll.id, Poll.scheduled_at).order_by(Poll.id)).all()

            # Shutting down during an outage gives up in bounded time and says what was lost.
            cluster.stop()
            for n in range(40, 43):
                writer.put("polls", poll_row(n))
            began = time.monotonic()
            writer.stop(timeout=1.0)
            stop_seconds = time.monotonic() - began
        finally:
            engine.dispose()
            if not cluster.running():
                cluster.start()  # so the test database can be dropped

    assert [r.scheduled_at for r in rows] == [poll_row(n)["scheduled_at"] for n in range(40)]
    assert (writer.written_total, writer.dropped_total) == (40, 3)
    assert stop_seconds < 10
    assert "3 rows not written" in caplog.text
    outage_reports = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(outage_reports) == 2, "each outage is logged once, not once per retry"
    assert "available again" in caplog.text
    assert PASSWORD not in caplog.text and PASSWORD not in (writer.last_error or "")
