"""Per-link rows of the availability report: the link ledger, its numbers worked by hand, its
rendering, and the tracker writing it for a dual-homed site."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import Engine, select

from collectors.base import CollectResult
from netwatch.config import load_inventory
from netwatch.counters import CounterBook
from netwatch.health import RoundOutcome, TargetHealth
from netwatch.pipeline import PollRecord
from netwatch.reports.availability import AvailabilityReport, LinkRow, compute, load_month
from netwatch.reports.render import render_csv, render_html, render_xlsx
from netwatch.sitehealth import SiteState, SiteStatus
from netwatch.sites import SiteTracker
from netwatch.storage import repository
from netwatch.storage.dml import last_per_key, statement_for, table_named
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.models import LinkOutage, Outage
from tests.netwatch.reports.month_data import (
    LINK_VIETTEL,
    LINK_VNPT,
    MONTH,
    PERIOD,
    local,
    populate,
    populate_links,
)

AFTER_MONTH = local(11, 5, 0)
UP, DEG, DOWN, UNR, MAINT, UNK = (
    SiteState.UP,
    SiteState.DEGRADED,
    SiteState.DOWN,
    SiteState.UNREACHABLE,
    SiteState.MAINTENANCE,
    SiteState.UNKNOWN,
)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def links_of(report: AvailabilityReport, code: str) -> dict[str, LinkRow]:
    site = next(r for r in report.rows if r.site.code == code)
    return {link.link.name: link for link in site.links}


def test_link_rows_every_number(migrated: Engine) -> None:
    populate(migrated)
    populate_links(migrated)
    report = compute(load_month(migrated, MONTH), AFTER_MONTH)
    assert links_of(report, "TK") == {}  # one link: the site row says it all
    assert [r.site.code for r in report.rows if r.links] == ["TK-C01"]
    links = links_of(report, "TK-C01")
    assert list(links) == ["VNPT", "Viettel"]  # in the inventory's order
    assert [link.link.link for link in links.values()] == [LINK_VNPT, LINK_VIETTEL]

    vnpt = links["VNPT"].figures
    assert {state: vnpt[state] for state in (UP, DEG, DOWN, UNR, MAINT, UNK)} == {
        UP: s(2_606_400),
        DEG: s(7_200),
        DOWN: s(52_380),
        UNR: s(5_220),
        MAINT: s(0),
        UNK: s(7_200),
    }
    assert vnpt.period == s(PERIOD)
    assert vnpt.availability == 2_613_600 / 2_671_200
    assert vnpt.own_availability == 2_613_600 / 2_665_980
    assert vnpt.outages == 4
    assert vnpt.longest_outage == s(43_200)
    assert vnpt.mttr == s(13_095)
    assert vnpt.mtbf == s(653_400)
    assert vnpt.coverage == (PERIOD - 7_200) / PERIOD
    assert vnpt.polls_on_time is None

    viettel = links["Viettel"].figures
    assert viettel[DOWN] == s(45_000)
    assert viettel[UP] == s(2_620_980)
    assert (viettel[DEG], viettel[UNR], viettel[UNK]) == (s(0), s(5_220), s(7_200))
    assert (viettel.outages, viettel.longest_outage) == (2, s(43_200))
    assert viettel.mttr == s(22_500)
    assert viettel.mtbf == s(1_310_490)
    assert viettel.availability == 2_620_980 / 2_671_200

    # Links take no part in the sums: the province still adds four site periods.
    assert report.province.figures.period == s(4 * PERIOD)
    only = compute(load_month(migrated, MONTH, site="TK-C01"), AFTER_MONTH)
    assert links_of(only, "TK-C01")["VNPT"].figures == vnpt


def test_link_rows_in_csv_xlsx_and_html(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nw.db'}")
    try:
        upgrade(engine)
        populate(engine)
        populate_links(engine)
        report = compute(load_month(engine, MONTH), AFTER_MONTH)
    finally:
        engine.dispose()

    rows = list(csv.reader(io.StringIO(render_csv(report, "vi").decode("utf-8-sig"))))
    head = rows[0]
    col = {h: i for i, h in enumerate(head)}
    assert head[4] == "Đường truyền"
    c01 = [r for r in rows[1:] if r[1] == "TK-C01"]
    assert [r[4] for r in c01] == ["", "VNPT", "Viettel"]
    assert c01[0][2] == c01[1][2] == "Đảng ủy phường An Mỹ"
    assert c01[1][col["Mất kết nối (giây)"]] == "52380"
    assert c01[1][col["Số lần mất kết nối"]] == "4"
    assert c01[2][col["Khả dụng (%)"]] == f"{2_620_980 / 2_671_200 * 100:.4f}"
    assert c01[1][col["Đạt SLA"]] == ""
    assert [r[4] for r in rows[1:] if r[1] == "TK"] == [""]

    english = list(csv.reader(io.StringIO(render_csv(report, "en").decode("utf-8-sig"))))
    assert english[0][4] == "Link"

    path = tmp_path / "r.xlsx"
    path.write_bytes(render_xlsx(report, "en"))
    sheet = openpyxl.load_workbook(path)["Sites"]
    headings = [c.value for c in sheet[1]]
    xcol = {h: i for i, h in enumerate(headings)}
    lines = [r for r in sheet.iter_rows(min_row=2) if r[1].value == "TK-C01"]
    assert [r[xcol["Link"]].value for r in lines] == [None, "VNPT", "Viettel"]
    down = lines[2][xcol["Down"]]
    assert down.value == timedelta(seconds=45_000) and down.number_format == "[h]:mm:ss"
    assert lines[1][xcol["Availability"]].number_format == "0.000%"

    page = render_html(report, "vi").decode("utf-8")
    assert page.count('<tr class="link">') == 2
    assert "<td>VNPT</td>" in page and "<td>Viettel</td>" in page


INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
site_kinds: {district: {}}
sites:
  - {code: DL, name: "Huyện ủy Đại Lộc", kind: district,
     links: [{device: dl-vnpt, name: VNPT}, {device: dl-viettel, name: Viettel}]}
devices:
  - {name: dl-vnpt, site: DL, address: 127.0.0.1, role: router, collectors: {icmp: {}}}
  - {name: dl-viettel, site: DL, address: 127.0.0.2, role: router, collectors: {icmp: {}}}
"""
T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []

    def put(self, table: str, row: Any) -> None:
        self.rows.append((table, dict(row)))

    def flush(self, engine: Engine) -> None:
        """Write what was put as the batched writer would: last row per key, one statement a table."""
        tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for name, row in self.rows:
            tables[name].append(row)
        with engine.begin() as conn:
            for name, rows in tables.items():
                table = table_named(name)
                latest = [dict(r) for r in last_per_key(table, rows)]
                conn.execute(statement_for(engine.dialect, table, latest[0].keys()), latest)
        self.rows.clear()


def test_tracker_records_a_dual_homed_sites_link_down_and_resumes_it(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nw.db'}")
    try:
        upgrade(engine)
        repository.sync_inventory(engine, inventory, now=T0)
        run = repository.start_run(engine, instance="nw1", shard="1/1", version="t", now=local(11, 1, 0))
        jobs = {d: inventory.devices[d].jobs[0] for d in ("dl-vnpt", "dl-viettel")}
        rules = inventory.sites["DL"].rules
        health = {d: TargetHealth(rules=rules) for d in jobs}
        rows = Rows()

        def poll(tracker: SiteTracker, device: str, outcome: RoundOutcome, at: datetime) -> None:
            health[device].observe(outcome, at)
            record = PollRecord(
                jobs[device],
                CollectResult(success=True),
                at,
                at,
                outcome,
                None,
                health[device],
                CounterBook(),
            )
            tracker.on_poll(record)

        statuses: dict[str, SiteStatus] = {}
        tracker = SiteTracker(inventory, rows, "run-1", statuses=statuses)
        for device in jobs:
            poll(tracker, device, RoundOutcome.GOOD, T0)
        for n in range(1, 4):  # down_after = 3 failed rounds of one link
            poll(tracker, "dl-vnpt", RoundOutcome.FAILED, T0 + timedelta(minutes=n))
            poll(tracker, "dl-viettel", RoundOutcome.GOOD, T0 + timedelta(minutes=n))
        assert statuses["DL"].state is SiteState.DEGRADED
        rows.flush(engine)
        link_down = T0 + timedelta(minutes=1)  # the first of the failed rounds
        with engine.connect() as conn:
            links = conn.execute(select(LinkOutage.__table__)).mappings().all()
            sites = conn.execute(select(Outage.__table__)).mappings().all()
        assert [(r["site"], r["link"], r["state"], r["started_at"], r["ended_at"]) for r in links] == [
            ("DL", "dl-vnpt", "down", link_down, None)
        ]
        assert [(r["site"], r["state"], r["started_at"], r["ended_at"]) for r in sites] == [
            ("DL", "degraded", link_down, None)
        ]

        # A restart: a new tracker resumes the open link interval, and the link's recovery ends it.
        restarted = SiteTracker(inventory, rows, "run-2", statuses={})
        restarted.resume(
            repository.load_site_states(engine),
            repository.open_outages(engine),
            repository.open_link_outages(engine),
        )
        back = T0 + timedelta(minutes=10)
        # The recovered link polled first (the other order, with the link still down, is
        # tests/netwatch/test_sites_restart.py).
        poll(restarted, "dl-vnpt", RoundOutcome.GOOD, back)
        poll(restarted, "dl-viettel", RoundOutcome.GOOD, back)
        rows.flush(engine)
        with engine.connect() as conn:
            links = conn.execute(select(LinkOutage.__table__)).mappings().all()
        assert [(r["state"], r["started_at"], r["ended_at"]) for r in links] == [("down", link_down, back)]

        repository.heartbeat(engine, run, now=back)
        report = compute(load_month(engine, "2026-11"), back)
        (row,) = report.rows
        assert [link.link.name for link in row.links] == ["VNPT", "Viettel"]
        vnpt, viettel = row.links
        assert vnpt.figures[SiteState.DOWN] == back - link_down
        assert vnpt.figures.outages == 1
        assert viettel.figures[SiteState.DOWN] == timedelta(0)
        assert row.figures[SiteState.DEGRADED] == back - link_down
        assert row.figures.outages == 0
    finally:
        engine.dispose()
