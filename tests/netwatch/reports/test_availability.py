"""The availability report's numbers, worked by hand, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from netwatch.config.retention import RetentionPolicy
from netwatch.reports.availability import (
    AvailabilityReport,
    MonthData,
    PollCounts,
    SiteInfo,
    SiteRow,
    compute,
    load_month,
    month_bounds,
    parse_month,
)
from netwatch.reports.render import render_csv
from netwatch.sitehealth import SiteState
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from netwatch.storage.models import Poll
from netwatch.storage.retention import apply_retention
from netwatch.storage.rollups import progress, roll_up
from tests.netwatch.reports.month_data import GAP, MONTH, PERIOD, STAMP, local, populate
from tests.netwatch.storage.rows import count

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


def row(report: AvailabilityReport, code: str) -> SiteRow:
    return next(r for r in report.rows if r.site.code == code)


def seconds_of(r: SiteRow) -> dict[SiteState, float]:
    return {state: r.figures[state].total_seconds() for state in (UP, DEG, DOWN, UNR, MAINT, UNK)}


@pytest.fixture
def month_report(migrated: Engine) -> AvailabilityReport:
    populate(migrated)
    return compute(load_month(migrated, MONTH), AFTER_MONTH)


def test_month_bounds_are_local_and_follow_daylight_saving() -> None:
    start, end = month_bounds("2026-10", "Asia/Ho_Chi_Minh")
    assert (start, end) == (datetime(2026, 9, 30, 17, tzinfo=UTC), datetime(2026, 10, 31, 17, tzinfo=UTC))
    start, end = month_bounds("2026-10", "Europe/Berlin")
    assert (start, end) == (datetime(2026, 9, 30, 22, tzinfo=UTC), datetime(2026, 10, 31, 23, tzinfo=UTC))
    assert end - start == timedelta(hours=745)
    start, end = month_bounds("2026-03", "Europe/Berlin")
    assert end - start == timedelta(hours=743)
    start, end = month_bounds("2026-12", "Asia/Ho_Chi_Minh")
    assert end == datetime(2026, 12, 31, 17, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-10", "2026/10", "2026-00", "", "2026-10-01"])
def test_bad_month_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(bad)


def test_tk_every_number(month_report: AvailabilityReport) -> None:
    tk = row(month_report, "TK")
    assert month_report.province.figures.period == s(4 * PERIOD)
    assert not month_report.month_to_date
    assert tk.figures.period == s(PERIOD)
    # down: 7,200 (#1, month part) + 5,400 (#4) + 3,600 (#7 outside the gap) + 3,600 (#8 open)
    assert seconds_of(tk) == {
        UP: 2_611_800,
        DEG: 21_600,
        DOWN: 19_800,
        UNR: 0,
        MAINT: 18_000,
        UNK: GAP,
    }
    assert tk.figures.outages == 4
    assert tk.figures.longest_outage == s(7_200)
    assert tk.figures.availability == pytest.approx(2_633_400 / 2_653_200, abs=1e-12)
    assert tk.figures.own_availability == pytest.approx(2_633_400 / 2_653_200, abs=1e-12)
    assert tk.figures.mttr == s(4_950)
    assert tk.figures.mtbf == s(658_350)
    assert tk.figures.coverage == pytest.approx(2_671_200 / 2_678_400, abs=1e-12)
    assert tk.figures.polls == PollCounts(total=13, on_time=11)
    assert tk.figures.polls_on_time == pytest.approx(11 / 13, abs=1e-12)
    assert tk.sla_met is True
    assert tk.measured
    assert tk.unreachable_causes == ()
    [note] = tk.annotations
    assert note.counted_as is MAINT
    assert note.interval.state is DOWN
    assert note.annotation.ticket == "VNPT-123"
    assert note.cause == "Thay thiết bị định tuyến theo kế hoạch"


def test_commune_unreachable_while_district_down(month_report: AvailabilityReport) -> None:
    c01 = row(month_report, "TK-C01")
    assert seconds_of(c01) == {UP: 2_622_780, DEG: 0, DOWN: 43_200, UNR: 5_220, MAINT: 0, UNK: GAP}
    assert c01.unreachable_causes == ("TK",)
    assert c01.figures.outages == 1  # unreachable time never counts as the commune's own outage
    assert c01.figures.longest_outage == s(43_200)
    assert c01.figures.availability == pytest.approx(2_622_780 / 2_671_200, abs=1e-12)
    assert c01.figures.own_availability == pytest.approx(2_622_780 / 2_665_980, abs=1e-12)
    assert c01.figures.mttr == s(43_200)
    assert c01.figures.mtbf == s(2_622_780)
    assert c01.figures.coverage == pytest.approx(2_671_200 / 2_678_400, abs=1e-12)
    assert c01.figures.polls == PollCounts(total=5, on_time=4)
    assert c01.sla_met is False  # own 98.38 % < 99 %
    [note] = c01.annotations
    assert note.counted_as is UNR
    assert note.cause == "Mất điện trạm huyện Tam Kỳ"


def test_site_without_any_data_is_unknown(month_report: AvailabilityReport) -> None:
    nodata = row(month_report, "TK-NODATA")
    assert not nodata.measured
    assert seconds_of(nodata) == {UP: 0, DEG: 0, DOWN: 0, UNR: 0, MAINT: 0, UNK: PERIOD}
    f = nodata.figures
    assert (f.availability, f.own_availability, f.coverage) == (None, None, 0.0)
    assert (f.outages, f.longest_outage, f.mttr, f.mtbf, f.polls_on_time) == (0, None, None, None, None)
    assert nodata.sla_met is None


def test_quiet_site_and_annotations_of_other_months(month_report: AvailabilityReport) -> None:
    ha = row(month_report, "HA")
    assert seconds_of(ha) == {UP: PERIOD - GAP, DEG: 0, DOWN: 0, UNR: 0, MAINT: 0, UNK: GAP}
    assert ha.figures.availability == 1.0
    assert ha.figures.outages == 0
    assert (ha.figures.mttr, ha.figures.mtbf) == (None, None)
    assert ha.figures.polls == PollCounts(total=1, on_time=1)
    assert ha.sla_met is True
    assert ha.annotations == ()
    assert [n.interval.site for n in month_report.annotations] == ["TK-C01", "TK"]


def test_district_and_province_sums_are_time_weighted(month_report: AvailabilityReport) -> None:
    assert [r.site.code for r in month_report.rows] == ["HA", "TK", "TK-C01", "TK-NODATA"]
    ha, tk = month_report.districts
    assert (ha.code, ha.name, ha.sites, tk.code, tk.name, tk.sites) == (
        "HA",
        "Thành ủy Hội An",
        1,
        "TK",
        "Thành ủy Tam Kỳ",
        3,
    )
    f = tk.figures
    assert f.period == s(3 * PERIOD)
    assert {st: f[st].total_seconds() for st in (UP, DEG, DOWN, UNR, MAINT, UNK)} == {
        UP: 5_234_580,
        DEG: 21_600,
        DOWN: 63_000,
        UNR: 5_220,
        MAINT: 18_000,
        UNK: 2 * GAP + PERIOD,
    }
    assert f.availability == pytest.approx(5_256_180 / 5_324_400, abs=1e-12)
    assert f.own_availability == pytest.approx(5_256_180 / 5_319_180, abs=1e-12)
    assert f.coverage == pytest.approx(5_342_400 / 8_035_200, abs=1e-12)
    assert (f.outages, f.longest_outage, f.mttr, f.mtbf) == (5, s(43_200), s(12_600), s(1_051_236))
    assert f.polls == PollCounts(18, 15)
    assert (tk.sla_met, tk.sla_judged) == (1, 2)
    p = month_report.province.figures
    assert p[UP] == s(5_234_580 + PERIOD - GAP)
    assert p[UNK] == s(3 * GAP + PERIOD)
    assert p.availability == pytest.approx(7_927_380 / 7_995_600, abs=1e-12)
    assert p.coverage == pytest.approx(8_013_600 / 10_713_600, abs=1e-12)
    assert p.polls == PollCounts(19, 16)
    assert (month_report.province.sla_met, month_report.province.sla_judged) == (2, 3)


def test_daylight_saving_zone_gets_its_own_local_month(migrated: Engine) -> None:
    populate(migrated)
    report = compute(load_month(migrated, MONTH, "Europe/Berlin"), AFTER_MONTH)
    tk = row(report, "TK")
    assert tk.figures.period == s(745 * 3600)
    # #1 ended 2026-09-30 19:00 UTC, before Berlin's October began (22:00 UTC): it is gone;
    # #8 (open since 2026-10-31 16:00 UTC) runs to 23:00 UTC, seven hours.
    assert tk.figures[DOWN] == s(5_400 + 3_600 + 25_200)
    assert tk.figures.outages == 3
    assert tk.figures.longest_outage == s(25_200)
    assert tk.figures[UP] == s(745 * 3600 - 34_200 - 21_600 - 18_000 - GAP)
    assert row(report, "HA").figures[UP] == s(745 * 3600 - GAP)


def test_current_month_is_month_to_date(migrated: Engine) -> None:
    populate(migrated)
    now = local(10, 15, 12)
    report = compute(load_month(migrated, MONTH), now)
    assert report.month_to_date
    assert report.end == now
    tk = row(report, "TK")
    elapsed = 14 * 86_400 + 12 * 3_600
    assert tk.figures.period == s(elapsed)
    assert seconds_of(tk) == {
        UP: elapsed - 18_000 - 12_600 - 21_600,
        DEG: 21_600,
        DOWN: 12_600,
        UNR: 0,
        MAINT: 18_000,
        UNK: 0,
    }
    assert (tk.figures.outages, tk.figures.longest_outage) == (2, s(7_200))
    assert row(report, "HA").figures.coverage == 1.0


def test_a_month_not_begun_is_refused(migrated: Engine) -> None:
    populate(migrated)
    with pytest.raises(ValueError, match="not begun"):
        compute(load_month(migrated, "2026-12"), local(11, 5, 0))


def test_filters_by_site_and_district(migrated: Engine) -> None:
    populate(migrated)
    one = compute(load_month(migrated, MONTH, site="TK-C01"), AFTER_MONTH)
    assert [r.site.code for r in one.rows] == ["TK-C01"]
    assert one.rows[0].figures[DOWN] == s(43_200)
    district = compute(load_month(migrated, MONTH, district="TK"), AFTER_MONTH)
    assert [r.site.code for r in district.rows] == ["TK", "TK-C01", "TK-NODATA"]
    assert district.province.figures[UNR] == s(5_220)


def test_month_whose_raw_polls_were_purged_keeps_its_poll_counts(migrated: Engine) -> None:
    populate(migrated)
    from_raw = compute(load_month(migrated, MONTH), AFTER_MONTH)
    # Rolled up to 10-03 local midnight only: tk-r1's polls (10-02) come from poll_rollups,
    # tkc01-r1's (10-03) and ha-r1's (10-04) from the raw log after the cursor.
    roll_up(migrated, until=local(10, 3, 0, 3))
    assert progress(migrated)["polls_1h"] == local(10, 3, 0)
    split = compute(load_month(migrated, MONTH), AFTER_MONTH)
    # The daemon rolls up as time passes; retention then deletes every raw poll of October.
    roll_up(migrated, until=STAMP)
    purged = apply_retention(migrated, RetentionPolicy(), local(11, 12, 0))
    assert purged["polls"] + purged["icmp_rounds"] == 20 and count(migrated, "polls") == 0
    after = compute(load_month(migrated, MONTH), AFTER_MONTH)

    for report in (split, after):
        assert report.rows == from_raw.rows
        assert (report.districts, report.province) == (from_raw.districts, from_raw.province)
    assert row(after, "TK").figures.polls == PollCounts(total=13, on_time=11)
    assert row(after, "TK").figures.polls_on_time == pytest.approx(11 / 13, abs=1e-12)
    assert row(after, "TK-C01").figures.polls == PollCounts(total=5, on_time=4)
    assert row(after, "HA").measured and row(after, "HA").figures.polls == PollCounts(1, 1)
    assert not row(after, "TK-NODATA").measured


def _without_polls(report: AvailabilityReport) -> list[tuple[object, ...]]:
    return [
        (r.site.code, r.measured, seconds_of(r), r.figures.outages, r.figures.availability)
        for r in report.rows
    ]


def test_reading_only_which_sites_were_polled_gives_the_same_availability(migrated: Engine) -> None:
    """The daemon's month figures skip counting polls; a site measured only by its polls (HA: its
    only ledger interval is September's) must still count as measured, and TK-NODATA must not."""
    from netwatch.daemon import month_figures

    def both() -> tuple[AvailabilityReport, AvailabilityReport]:
        full = compute(load_month(migrated, MONTH), AFTER_MONTH)
        return full, compute(load_month(migrated, MONTH, count_polls=False), AFTER_MONTH)

    populate(migrated)
    stages = [both()]  # every poll raw
    roll_up(migrated, until=local(10, 3, 0, 3))
    stages.append(both())  # split between poll_rollups and the raw tail
    roll_up(migrated, until=STAMP)
    apply_retention(migrated, RetentionPolicy(), local(11, 12, 0))
    stages.append(both())  # rollups only
    for full, cheap in stages:
        assert _without_polls(cheap) == _without_polls(full)
        assert row(cheap, "HA").measured and not row(cheap, "TK-NODATA").measured
        assert cheap.province.figures.availability == full.province.figures.availability
    # The daemon's figures on the month's last evening, against the report made at the same time.
    evening = local(10, 31, 20)
    figures = month_figures(migrated, "Asia/Ho_Chi_Minh", evening)
    report = compute(load_month(migrated, MONTH), evening)
    assert figures["HA"].availability == 1.0 and figures["TK-NODATA"].availability is None
    assert figures["TK"].availability == pytest.approx(row(report, "TK").figures.availability, abs=1e-12)
    assert figures["TK"].down_seconds == row(report, "TK").figures[DOWN].total_seconds() > 0


def test_without_any_poll_every_site_without_interval_counts_as_measured(migrated: Engine) -> None:
    """A database from before polls were recorded: no poll at all means unknown coverage, not down."""
    populate(migrated)
    with migrated.begin() as conn:
        conn.execute(Poll.__table__.delete())
    full = compute(load_month(migrated, MONTH), AFTER_MONTH)
    cheap = compute(load_month(migrated, MONTH, count_polls=False), AFTER_MONTH)
    assert _without_polls(cheap) == _without_polls(full)
    assert row(cheap, "TK-NODATA").measured


def test_polls_recorded_before_the_verdict_have_unknown_lateness(migrated: Engine) -> None:
    populate(migrated)
    p = Poll.__table__.c
    with migrated.begin() as conn:  # tk-r1's SNMP polls, as recorded before revision 0008
        conn.execute(update(Poll).where(p.target == "tk-r1", p.kind == "snmp").values(on_time=None))
    raw = compute(load_month(migrated, MONTH), AFTER_MONTH)
    roll_up(migrated, until=STAMP)
    rolled = compute(load_month(migrated, MONTH), AFTER_MONTH)

    for report in (raw, rolled):
        tk = row(report, "TK").figures
        # 13 polls, 3 without a verdict: the 8 on-time ICMP polls of the 10 judged.
        assert tk.polls == PollCounts(total=13, on_time=8, unjudged=3)
        assert tk.polls_on_time == pytest.approx(8 / 10, abs=1e-12)
        # The province: 19 polls, 3 unjudged, 8 + 4 + 1 = 13 on time of 16 judged.
        assert report.province.figures.polls == PollCounts(19, 13, 3)
        assert report.province.figures.polls_on_time == pytest.approx(13 / 16, abs=1e-12)


def _bare(code: str) -> MonthData:
    site = SiteInfo(code, code, "district", code, None, 0.99)
    return MonthData(MONTH, "Asia/Ho_Chi_Minh", (site,), (), {}, (), {code: PollCounts(1, 1)})


def test_overlapping_states_follow_precedence() -> None:
    from netwatch.reports.availability import LedgerInterval

    t = local(10, 3, 0)
    spans = [
        (DOWN, t, t + s(600)),
        (DEG, t + s(300), t + s(900)),
        (UNR, t + s(500), t + s(700)),
        (MAINT, t + s(650), t + s(660)),
    ]
    intervals = tuple(
        LedgerInterval(i, "X", state, "P" if state is UNR else None, a, b)
        for i, (state, a, b) in enumerate(spans)
    )
    base = _bare("X")
    data = MonthData(base.month, base.tz, base.sites, intervals, {}, ((t + s(100), t + s(150)),), base.polls)
    x = compute(data, AFTER_MONTH).rows[0]
    # 0–100 down, 100–150 unknown, 150–500 down, 500–650 unreachable, 650–660 maintenance,
    # 660–700 unreachable, 700–900 degraded.
    assert seconds_of(x) == {UP: PERIOD - 900, DEG: 200, DOWN: 450, UNR: 190, MAINT: 10, UNK: 50}
    assert x.figures.outages == 1
    assert x.figures.longest_outage == s(450)


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_identical_reports(tmp_path: Path, postgres_db_url: str) -> None:
    rendered = []
    for url in (f"sqlite:///{tmp_path / 'nw.db'}", postgres_db_url):
        engine = create_engine_for(url)
        try:
            upgrade(engine)
            populate(engine)
            roll_up(engine, until=local(10, 3, 12))  # poll counts from rollups and from the raw tail
            report = compute(load_month(engine, MONTH), AFTER_MONTH)
        finally:
            engine.dispose()
        rendered.append((render_csv(report, "vi"), report.rows, report.districts, report.province))
    assert rendered[0] == rendered[1]
