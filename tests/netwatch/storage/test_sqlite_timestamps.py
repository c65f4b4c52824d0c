"""The writer's one-step SQLite timestamp text is exactly what SQLAlchemy's own two steps store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from netwatch.storage.binds import sqlite_utc_text
from netwatch.storage.models import Base, UTCDateTime
from netwatch.storage.rowwriter import compile_plan

DIALECT = sqlite.dialect()
TYPE = UTCDateTime()


def sqlalchemy_text(value: datetime) -> str:
    """SQLAlchemy's path: the type decorator's UTC conversion, then SQLite DATETIME's formatting."""
    processor = TYPE.dialect_impl(DIALECT).bind_processor(DIALECT)
    assert processor is not None
    text = processor(value)
    assert isinstance(text, str)
    return text


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_the_stored_text_matches_sqlalchemy(instant: datetime, offset_minutes: int) -> None:
    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert sqlite_utc_text(local) == sqlalchemy_text(local)
    assert sqlite_utc_text(instant) == sqlalchemy_text(instant)  # UTC, as netwatch writes


def test_whole_seconds_keep_their_microseconds_so_text_order_is_time_order() -> None:
    # Without ".000000" a whole second would sort after the same second's fractions.
    assert sqlite_utc_text(datetime(2026, 11, 29, 3, 0, tzinfo=UTC)) == "2026-11-29 03:00:00.000000"


def test_naive_times_are_still_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_utc_text(datetime(2026, 11, 29, 3, 0))
    assert sqlite_utc_text(None) is None


@given(st.lists(st.integers(min_value=0, max_value=3), max_size=30))
def test_the_writer_binds_each_row_its_own_time_when_rows_share_timestamp_objects(picks: list[int]) -> None:
    """Rows of one poll share its datetime objects and the writer reuses their text: a row with
    another time (or another object of it) still gets its own."""
    times = [datetime(2026, 11, 29, 3, 0, tzinfo=UTC) + timedelta(seconds=s) for s in (0, 1, 1, 2)]
    plan = compile_plan(DIALECT, Base.metadata.tables["polls"], ("scheduled_at", "target"))
    rows = [{"scheduled_at": times[pick], "target": "d1"} for pick in picks]
    bound = plan.bind(rows)
    column = plan.names.index("scheduled_at")
    assert [row[column] for row in bound] == [sqlalchemy_text(times[pick]) for pick in picks]
