"""The bandwidth report: hand-checked figures at local month boundaries, the hourly fallback (for a
month past retention, and for a link without 5-minute rollups), retention never removing what a
report reads, SQLite == PostgreSQL, and the command line."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from netwatch.cli import main
from netwatch.config.retention import RetentionPolicy
from netwatch.reports.bandwidth import BandwidthReport, LinkRef, bandwidth_report, links_from_database
from netwatch.reports.bandwidth_render import render_bandwidth
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.retention import apply_retention
from netwatch.storage.rollups import roll_up
from tests.netwatch.storage.history import insert_rows, interface_row, random_history

OCT_START = datetime(2026, 9, 30, 17, 0, tzinfo=UTC)  # 2026-10-01 00:00 in Asia/Ho_Chi_Minh
OCT_END = datetime(2026, 10, 31, 17, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 15, tzinfo=UTC)
LINK = LinkRef("S1", "Xã Một", "D1", "r1", "ge-0/0/1", 10e6, "Megawan")
SILENT = LinkRef("S2", "Xã Hai", "D1", "r2", "ge-0/0/2", 4e6)


def _inventory_rows(engine: Engine, links: Sequence[LinkRef] = (LINK, SILENT)) -> None:
    """Sites, devices and interfaces, and ``links`` mirrored in ``site_links`` as the daemon does
    (only their interfaces get 5-minute rollups)."""
    at = datetime(2026, 10, 1, tzinfo=UTC)
    insert_rows(
        engine,
        "sites",
        [
            {
                "code": c,
                "name": n,
                "kind": "commune",
                "district": "D1",
                "parent": None,
                "sla_target": 0.99,
                "updated_at": at,
            }
            for c, n in (("S1", "Xã Một"), ("S2", "Xã Hai"))
        ],
    )
    insert_rows(
        engine,
        "devices",
        [
            {
                "name": d,
                "site": s,
                "address": "203.0.113.1",
                "role": "router",
                "upstream": None,
                "updated_at": at,
            }
            for d, s in (("r1", "S1"), ("r2", "S2"))
        ],
    )
    insert_rows(
        engine,
        "interfaces",
        [
            {
                "device": "r1",
                "ifindex": 1,
                "ifname": "ge-0/0/1",
                "ifalias": "",
                "iftype": None,
                "speed_bps": 1e9,
                "contracted_bps": 10e6,
                "updated_at": at,
            },
            {
                "device": "r1",
                "ifindex": 2,
                "ifname": "ge-0/0/2",
                "ifalias": "",
                "iftype": None,
                "speed_bps": 1e9,
                "contracted_bps": None,
                "updated_at": at,
            },
            {
                "device": "r2",
                "ifindex": 5,
                "ifname": "ge-0/0/2",
                "ifalias": "",
                "iftype": None,
                "speed_bps": 1e9,
                "contracted_bps": 4e6,
                "updated_at": at,
            },
        ],
    )
    insert_rows(
        engine,
        "site_links",
        [
            {
                "site": k.site,
                "link": f"{k.device}/{k.interface}",
                "position": 0,
                "name": k.name or f"{k.device}/{k.interface}",
                "device": k.device,
                "interface": k.interface,
                "contracted_bps": k.contracted_bps,
                "updated_at": at,
            }
            for k in links
        ],
    )


def _rollup(
    bucket: datetime, resolution: str, in_avg: float, out_avg: float, p95: float | None = None
) -> dict[str, Any]:
    return {
        "device": "r1",
        "ifindex": 1,
        "resolution": resolution,
        "bucket_start": bucket,
        "samples": 5,
        "in_bps_avg": in_avg,
        "out_bps_avg": out_avg,
        "in_bps_max": in_avg * 1.5,
        "out_bps_max": out_avg * 1.5,
        "in_bps_p95": p95,
        "out_bps_p95": p95,
        "in_octets": None,
        "out_octets": None,
    }


def test_figures_over_the_local_month(migrated: Engine) -> None:
    _inventory_rows(migrated)
    five = timedelta(minutes=5)
    rows = [_rollup(OCT_START + k * five, "5m", (k + 1) * 1e6, 1e6) for k in range(19)]
    rows.append(_rollup(OCT_END - five, "5m", 20e6, 1e6))  # the month's last bucket, local 23:55
    rows.append(_rollup(OCT_START - five, "5m", 99e6, 99e6))  # local 30 Sep 23:55: not October
    rows.append(_rollup(OCT_END, "5m", 99e6, 99e6))  # local 1 Nov 00:00: not October
    insert_rows(migrated, "interface_rollups", rows)

    report = bandwidth_report(migrated, "2026-10", links=[LINK, SILENT], now=NOW)

    assert (report.resolution, report.fallback) == ("5m", False)
    assert (report.start, report.end) == (OCT_START, OCT_END)
    link, silent = report.links
    assert (link.ifindex, link.buckets) == (1, 20)
    assert link.inbound.average_bps == pytest.approx(10.5e6)
    assert link.inbound.peak_bps == 20e6
    assert link.inbound.p95_bps == 19e6  # nearest rank ⌈0.95 × 20⌉ = 19
    assert link.inbound.average_utilisation == pytest.approx(1.05)
    assert link.inbound.p95_utilisation == pytest.approx(1.9)
    assert link.outbound.p95_bps == 1e6
    assert link.hours_above == pytest.approx(1.0)  # 9…20 Mbit/s: twelve 5-minute buckets above 8 Mbit/s
    assert (silent.ifindex, silent.buckets, silent.inbound.average_bps, silent.hours_above) == (
        5,
        0,
        None,
        None,
    )


def test_links_come_from_the_database_when_no_inventory_is_given(migrated: Engine) -> None:
    _inventory_rows(migrated)

    links = sorted(links_from_database(migrated), key=lambda link: link.site)

    assert [(x.site, x.site_name, x.device, x.interface, x.contracted_bps) for x in links] == [
        ("S1", "Xã Một", "r1", "ge-0/0/1", 10e6),
        ("S2", "Xã Hai", "r2", "ge-0/0/2", 4e6),
    ]
    only = bandwidth_report(migrated, "2026-10", site="S2", now=NOW)
    assert [row.link.site for row in only.links] == ["S2"]


def test_a_month_older_than_the_five_minute_retention_uses_hourly_rollups_and_says_so(
    migrated: Engine,
) -> None:
    _inventory_rows(migrated)
    hour = timedelta(hours=1)
    insert_rows(
        migrated,
        "interface_rollups",
        [_rollup(OCT_START + k * hour, "1h", avg, 1e6, p95=avg * 2) for k, avg in enumerate((1e6, 2e6, 9e6))],
    )
    later = datetime(2027, 12, 1, tzinfo=UTC)  # 5-minute rollups of October 2026 are gone by then

    report = bandwidth_report(migrated, "2026-10", links=[LINK], now=later)

    assert (report.resolution, report.fallback) == ("1h", True)
    (link,) = report.links
    assert report.hourly_links == (link,) and link.resolution == "1h"
    assert link.buckets == 3
    assert link.inbound.average_bps == pytest.approx(4e6)
    assert link.inbound.peak_bps == 18e6  # the largest 5-minute average, kept by the hourly row
    assert link.inbound.p95_bps == 9e6
    assert link.hours_above == 1.0
    page = render_bandwidth(report, "html", "en").decode()
    assert "older than the 5-minute rollups" in page and "hourly averages" in page
    assert "thời hạn lưu số liệu 5 phút" in render_bandwidth(report, "html", "vi").decode()
    assert bandwidth_report(migrated, "2026-11", links=[LINK], now=later).resolution == "5m"


def test_a_link_without_five_minute_rollups_falls_back_to_hourly_alone(migrated: Engine) -> None:
    _inventory_rows(migrated, links=[LINK])  # r2's interface was made a link only after October
    # Three hours from the month's local start. r2's hours average 1, 2 and 9 Mbit/s, the last one
    # with a 20 Mbit/s five minutes (20 + 11 × 8 = 12 × 9).
    rates = [1e6] * 60 + [2e6] * 60 + [20e6] * 5 + [8e6] * 55
    rows = [interface_row("r1", 1, OCT_START + timedelta(minutes=m), 2e6, 1e6) for m in range(180)]
    rows += [interface_row("r2", 5, OCT_START + timedelta(minutes=m), r, 1e6) for m, r in enumerate(rates)]
    insert_rows(migrated, "interface_samples", rows)
    roll_up(migrated, until=OCT_START + timedelta(hours=3, minutes=3))

    report = bandwidth_report(migrated, "2026-10", links=[LINK, SILENT], now=NOW)

    assert (report.resolution, report.fallback) == ("5m", False)  # the month is within retention
    link, silent = report.links
    assert (link.resolution, link.buckets) == ("5m", 36)
    assert link.inbound.average_bps == pytest.approx(2e6)
    assert report.hourly_links == (silent,)
    assert (silent.resolution, silent.buckets) == ("1h", 3)
    assert silent.inbound.average_bps == pytest.approx(4e6)
    assert silent.inbound.peak_bps == pytest.approx(20e6)  # the largest 5-minute average, kept hourly
    assert silent.inbound.p95_bps == pytest.approx(9e6)  # of the three hourly averages
    assert silent.hours_above == 1.0  # one hour above 80 % of 4 Mbit/s
    # and the reader is told which links are approximate, in every format and both languages
    page = render_bandwidth(report, "html", "en").decode()
    assert "no 5-minute rollups in the month" in page and f"{SILENT.site} " in page and 'class="warn"' in page
    rows = {
        r["Mã điểm"]: r
        for r in csv.DictReader(io.StringIO(render_bandwidth(report, "csv", "vi").decode("utf-8-sig")))
    }
    assert (rows["S1"]["Độ phân giải"], rows["S2"]["Độ phân giải"]) == (
        "trung bình 5 phút",
        "trung bình theo giờ",
    )


def _sparse_history(engine: Engine) -> None:
    start, end = datetime(2026, 9, 25, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC)
    rows, at, n = [], start, 0
    while at < end:
        rows.append(interface_row("r1", 1, at, 1e6 + (n % 17) * 4e5, 2e6 - (n % 5) * 1e5))
        at, n = at + timedelta(hours=2, minutes=5), n + 1
    insert_rows(engine, "interface_samples", rows)


def test_retention_never_deletes_what_a_report_reads(migrated: Engine) -> None:
    _inventory_rows(migrated)
    _sparse_history(migrated)
    roll_up(migrated, until=datetime(2026, 12, 6, tzinfo=UTC))
    policy = RetentionPolicy()

    def reports(now: datetime) -> list[BandwidthReport]:
        return [
            bandwidth_report(migrated, m, links=[LINK], now=now, policy=policy)
            for m in ("2026-10", "2026-11")
        ]

    # One year later, the 5-minute rollups of early October 2026 are past their 400 days.
    now = datetime(2027, 11, 10, tzinfo=UTC)
    before = reports(now)
    assert [r.resolution for r in before] == ["1h", "5m"]
    deleted = apply_retention(migrated, policy, now)

    assert deleted["interface_rollups_5m"] > 0 and deleted["interface_samples"] > 0
    assert reports(now) == before
    assert all(r.links[0].buckets > 0 for r in before)


def _csv(report: BandwidthReport, lang: str = "en") -> list[list[str]]:
    return list(csv.reader(io.StringIO(render_bandwidth(report, "csv", lang).decode("utf-8-sig"))))  # type: ignore[arg-type]


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_the_same_report(tmp_path: Any, postgres_db_url: str) -> None:
    rendered = []
    for url in (f"sqlite:///{tmp_path / 'a.db'}", postgres_db_url):
        engine = create_engine_for(url)
        try:
            upgrade(engine)
            _inventory_rows(engine)
            random_history(engine, OCT_START - timedelta(hours=2), hours=8)
            roll_up(engine, until=OCT_START + timedelta(hours=7))
            report = bandwidth_report(engine, "2026-10", now=NOW)
            rendered.append((_csv(report), render_bandwidth(report, "html", "vi")))
        finally:
            engine.dispose()
    assert rendered[0] == rendered[1]
    rows = rendered[0][0]
    assert len(rows) == 3 and rows[1][1] == "S1" and rows[1][7] == "72"  # 6 hours of 5-minute buckets


def test_command_line_writes_the_report(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'nw.db'}"
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        _inventory_rows(engine)
        insert_rows(
            engine,
            "interface_rollups",
            [_rollup(OCT_START + timedelta(minutes=5 * k), "5m", 2e6, 1e6) for k in range(3)],
        )
    finally:
        engine.dispose()
    runner = CliRunner()

    result = runner.invoke(main, ["report", "bandwidth", "--month", "2026-10", "--lang", "en", "--db", url])

    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    assert rows[0][:3] == ["District", "Site", "Name"]
    assert (
        rows[1][1] == "S1"
        and rows[1][8] == "5-minute averages"
        and rows[1][9] == "2000000"
        and rows[1][12] == "20.0000"
    )
    out = tmp_path / "bw.xlsx"
    result = runner.invoke(
        main, ["report", "bandwidth", "--month", "2026-10", "--format", "xlsx", "-o", str(out), "--db", url]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:2] == b"PK"
    result = runner.invoke(main, ["db", "rollup", "--from", "2026-10-01", "--to", "2026-10-02", "--db", url])
    assert result.exit_code == 0, result.output
    assert "interface_5m: 0 rows" in result.output
