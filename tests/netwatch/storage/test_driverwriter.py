"""The writer's child binds and writes rows without SQLAlchemy, exactly as SQLAlchemy would have."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Boolean, Column, Dialect, Engine, Float, Integer, MetaData, Table, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from netwatch.errors import StorageError
from netwatch.storage.binds import CONVERTERS
from netwatch.storage.driverwriter import WriteOutage
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.models import Base, Poll, UTCDateTime
from netwatch.storage.rowwriter import ProcessRowWriter, compile_plan, connect_spec
from tests.netwatch.storage.rows import poll_row
from tests.support.postgres import fresh_database, throwaway_cluster

DIALECTS: dict[str, Dialect] = {"sqlite": sqlite.dialect(), "postgresql": psycopg.dialect()}
HO_CHI_MINH = ZoneInfo("Asia/Ho_Chi_Minh")
WRITTEN = [table for table in Base.metadata.tables.values() if "write" in table.info]

_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).flatmap(
    lambda t: st.sampled_from([t, t.astimezone(timezone(timedelta(hours=-3))), t.astimezone(HO_CHI_MINH)])
)
_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**62), 2**62), st.floats(allow_nan=False), st.text(max_size=20)
)


def _value_for(column: Column[Any]) -> st.SearchStrategy[Any]:
    if isinstance(column.type, UTCDateTime):
        return st.one_of(st.none(), _times)
    if isinstance(column.type, Boolean):
        return st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1]))
    if isinstance(column.type, Float):
        return st.one_of(st.none(), st.floats(allow_nan=False), st.integers(-(2**53), 2**53))
    return _values


@pytest.mark.parametrize("dialect_name", sorted(DIALECTS))
@pytest.mark.parametrize("table", WRITTEN, ids=lambda t: t.name)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_written_column_is_bound_as_sqlalchemy_binds_it(
    dialect_name: str, table: Table, data: st.DataObject
) -> None:
    dialect = DIALECTS[dialect_name]
    columns = tuple(c.key for c in table.columns)
    plan = compile_plan(dialect, table, columns)
    row = {c.key: data.draw(_value_for(c), label=c.key) for c in table.columns}
    bound = plan.bind([row])[0]
    for position, name in enumerate(plan.names):
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        expected = row[name] if processor is None else processor(row[name])
        got = bound[position] if plan.positional else bound[name]
        assert got == expected and type(got) is type(expected), name


@pytest.mark.parametrize("dialect_name", sorted(DIALECTS))
def test_a_value_sqlalchemy_would_refuse_is_refused(dialect_name: str) -> None:
    plan = compile_plan(DIALECTS[dialect_name], Poll.__table__, ("target", "scheduled_at", "success"))
    with pytest.raises(ValueError, match="naive datetime"):
        plan.bind([{"target": "r1", "scheduled_at": datetime(2026, 1, 5, 8, 0), "success": True}])
    with pytest.raises(TypeError, match="not a boolean"):
        plan.bind([{"target": "r1", "scheduled_at": datetime(2026, 1, 5, tzinfo=UTC), "success": "yes"}])


def test_a_column_type_without_a_known_conversion_is_refused_by_name() -> None:
    table = Table(
        "extra",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("doc", JSON),
        info={"write": "append"},
    )
    with pytest.raises(StorageError, match=r"extra\.doc"):
        compile_plan(DIALECTS["sqlite"], table, ("id", "doc"))


def test_the_plan_names_conversions_only_the_child_knows() -> None:
    for dialect in DIALECTS.values():
        for table in WRITTEN:
            plan = compile_plan(dialect, table, tuple(c.key for c in table.columns))
            assert set(plan.converters) - {None} <= set(CONVERTERS)


def test_the_child_module_imports_no_sqlalchemy() -> None:
    code = (
        "import sys, netwatch.storage.driverwriter, sqlite3, psycopg\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'netwatch'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == [
        "netwatch",
        "netwatch.storage",
        "netwatch.storage.binds",
        "netwatch.storage.driverwriter",
    ]


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_running_child_writes_with_no_sqlalchemy_loaded(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'netwatch.db'}")
    upgrade(engine)
    rows = ProcessRowWriter(engine)
    try:
        refusals = rows.write("polls", [poll_row(n) for n in range(50)])
        assert refusals.count == 0
        assert rows.pid is not None
        child_maps = _maps(rows.pid)
    finally:
        rows.close()
    with engine.connect() as conn:
        stored = conn.execute(select(Poll.scheduled_at).order_by(Poll.scheduled_at)).scalars().all()
    engine.dispose()
    assert stored == [poll_row(n)["scheduled_at"] for n in range(50)]
    # SQLAlchemy's compiled extensions show in a process's memory map once it is imported.
    assert "sqlalchemy" in _maps(os.getpid())
    assert "sqlalchemy" not in child_maps
    assert "_sqlite3" in child_maps


@pytest.mark.postgres
def test_a_postgres_restart_between_batches_costs_a_reconnect_not_an_outage(tmp_path: Path) -> None:
    with throwaway_cluster() as cluster, fresh_database(cluster.url) as url:
        engine: Engine = create_engine_for(url)
        try:
            upgrade(engine)
            rows = ProcessRowWriter(engine)
            try:
                assert rows.write("polls", [poll_row(n) for n in range(5)]).count == 0
                cluster.stop()
                cluster.start()
                try:
                    refusals = rows.write("polls", [poll_row(n) for n in range(5, 10)])
                except WriteOutage as outage:
                    pytest.fail(f"the kept connection was used after the restart: {outage}")
                assert refusals.count == 0
            finally:
                rows.close()
            with engine.connect() as conn:
                assert conn.execute(select(Poll.target)).scalars().all() == ["r1"] * 10
        finally:
            engine.dispose()


def test_the_password_reaches_the_child_by_pipe_only_and_never_an_error(tmp_path: Path) -> None:
    password = "Bí-mật-42"
    # Nothing listens on port 1 of loopback: every connect is refused, an outage.
    engine = create_engine_for(f"postgresql://netwatch:{password}@127.0.0.1:1/netwatch?connect_timeout=2")
    rows = ProcessRowWriter(engine)
    try:
        with pytest.raises(WriteOutage) as outage:
            rows.write("polls", [poll_row(0)])
        assert rows.pid is not None
        seen_by_ps = (
            Path(f"/proc/{rows.pid}/cmdline").read_bytes() + Path(f"/proc/{rows.pid}/environ").read_bytes()
        )
    finally:
        rows.close()
        engine.dispose()
    assert "OperationalError" in str(outage.value)
    assert password not in str(outage.value) and password.encode() not in seen_by_ps
    assert password not in repr(connect_spec(engine))
