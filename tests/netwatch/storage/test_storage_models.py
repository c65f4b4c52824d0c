"""Timestamps go in aware and come out aware UTC, the same instant, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import StatementError

from netwatch.storage.models import SiteState

ICT = timezone(timedelta(hours=7))


def test_naive_datetime_is_refused(migrated: Engine) -> None:
    row = {"site": "HN01", "state": "up", "since": None, "cause": None, "updated_at": datetime(2026, 1, 5, 8)}
    with pytest.raises(StatementError, match="naive datetime"), migrated.begin() as conn:
        conn.execute(insert(SiteState), [row])
    with migrated.connect() as conn:
        assert conn.execute(select(SiteState.site)).all() == []


def test_aware_local_time_reads_back_as_the_same_instant_in_utc(migrated: Engine) -> None:
    local = datetime(2026, 1, 5, 7, 30, 15, 123456, tzinfo=ICT)
    row = {"site": "HN01", "state": "down", "since": local, "cause": None, "updated_at": local}
    with migrated.begin() as conn:
        conn.execute(insert(SiteState), [row])
    with migrated.connect() as conn:
        since = conn.execute(select(SiteState.since)).scalar_one()
    assert since == local
    assert since.tzinfo is UTC
    assert since == datetime(2026, 1, 5, 0, 30, 15, 123456, tzinfo=UTC)
