"""The availability report as files: XLSX, CSV and HTML read back the way their users read them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest

from netwatch.reports.availability import AvailabilityReport, compute, load_month
from netwatch.reports.render import render_csv, render_html, render_xlsx
from netwatch.reports.strings import LANGS, STRINGS, month_title
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from tests.netwatch.reports.month_data import MONTH, local, populate


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> AvailabilityReport:
    engine = create_engine_for(f"sqlite:///{tmp_path_factory.mktemp('render') / 'nw.db'}")
    try:
        upgrade(engine)
        populate(engine)
        return compute(load_month(engine, MONTH), local(11, 5, 0))
    finally:
        engine.dispose()


def test_every_language_has_every_string() -> None:
    assert set(STRINGS["vi"]) == set(STRINGS["en"])
    assert LANGS == ("vi", "en")
    assert month_title(2026, 10, "vi") == "Tháng 10/2026"
    assert month_title(2026, 10, "en") == "October 2026"


def test_xlsx_vietnamese_headings_formats_and_values(report: AvailabilityReport, tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(render_xlsx(report, "vi"))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Tổng hợp", "Điểm", "Ghi chú sự cố"]
    sites = book["Điểm"]
    headings = [c.value for c in sites[1]]
    assert headings[:7] == [
        "Huyện",
        "Mã điểm",
        "Tên điểm",
        "Loại",
        "Đường truyền",
        "Thời gian kỳ",
        "Hoạt động",
    ]
    assert sites.freeze_panes == "A2"
    assert sites.auto_filter.ref == "A1:X5"
    rows = {r[1].value: r for r in sites.iter_rows(min_row=2)}
    tk = rows["TK"]
    col = {h: i for i, h in enumerate(headings)}
    assert tk[col["Tên điểm"]].value == "Thành ủy Tam Kỳ"
    assert tk[col["Mất kết nối"]].value == timedelta(seconds=19_800)
    assert tk[col["Mất kết nối"]].number_format == "[h]:mm:ss"
    assert tk[col["Khả dụng"]].value == pytest.approx(2_633_400 / 2_653_200, abs=1e-12)
    assert tk[col["Khả dụng"]].number_format == "0.000%"
    assert tk[col["Số lần mất kết nối"]].value == 4
    assert tk[col["Mục tiêu SLA"]].value == 0.99
    assert tk[col["Đạt SLA"]].value == "Đạt"
    assert "VNPT-123" in str(tk[col["Ghi chú"]].value)
    assert rows["TK-C01"][col["Đạt SLA"]].value == "Không đạt"
    assert rows["TK-C01"][col["Nguyên nhân (cấp trên)"]].value == "TK"
    nodata = rows["TK-NODATA"]
    assert nodata[col["Khả dụng"]].value is None
    assert nodata[col["Độ phủ giám sát"]].value == 0
    summary = book["Tổng hợp"]
    scopes = [r[0].value for r in summary.iter_rows(min_row=2, max_row=4)]
    assert scopes == ["Toàn tỉnh", "HA — Thành ủy Hội An", "TK — Thành ủy Tam Kỳ"]
    province = [c.value for c in summary[2]]
    assert province[1] == 4
    assert province[2] == timedelta(days=124)
    assert province[-1] == "2/3"
    notes = book["Ghi chú sự cố"]
    assert [c.value for c in notes[3]][:4] == [6, "TK", "mất kết nối", "bảo trì"]
    info = [c.value for c in summary["A"][5:]]
    assert info[:3] == [
        "Báo cáo khả dụng mạng — Tháng 10/2026",
        "Kỳ báo cáo: 2026-10-01 00:00:00 → 2026-11-01 00:00:00",
        "Múi giờ: Asia/Ho_Chi_Minh",
    ]


def test_xlsx_english_sheet_names(report: AvailabilityReport, tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(render_xlsx(report, "en"))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Summary", "Sites", "Annotations"]
    assert [c.value for c in book["Sites"][1]][:3] == ["District", "Site", "Name"]


def test_csv_has_bom_diacritics_and_numbers(report: AvailabilityReport) -> None:
    data = render_csv(report, "vi")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    by_site = {r["Mã điểm"]: r for r in rows}
    assert list(by_site) == ["HA", "TK", "TK-C01", "TK-NODATA"]
    tk = by_site["TK"]
    assert tk["Tên điểm"] == "Thành ủy Tam Kỳ"
    assert tk["Mất kết nối (giây)"] == "19800"
    assert float(tk["Khả dụng (%)"]) == pytest.approx(100 * 2_633_400 / 2_653_200, abs=5e-5)
    assert tk["MTTR (thời gian khắc phục TB) (giây)"] == "4950"
    assert tk["Đạt SLA"] == "Đạt"
    nodata = by_site["TK-NODATA"]
    assert (nodata["Khả dụng (%)"], nodata["Độ phủ giám sát (%)"], nodata["Đạt SLA"]) == ("", "0.0000", "")
    english = list(csv.reader(io.StringIO(render_csv(report, "en").decode("utf-8-sig"))))
    assert english[0][:3] == ["District", "Site", "Name"]


class _Tables(HTMLParser):
    """Collects the html lang, the title, and every table's header and data cells."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.charset: str | None = None
        self.title = ""
        self.tables: list[list[list[str]]] = []
        self.external: list[str] = []
        self._cell: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "meta" and "charset" in a:
            self.charset = a["charset"]
        elif tag in ("link", "script", "img") or (tag == "a" and a.get("href")):
            self.external.append(tag)
        elif tag == "title":
            self._in_title = True
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data


@pytest.mark.parametrize(("lang", "title"), [("vi", "Tháng 10/2026"), ("en", "October 2026")])
def test_html_is_self_contained_with_tables(report: AvailabilityReport, lang: str, title: str) -> None:
    page = render_html(report, lang)  # type: ignore[arg-type]
    parser = _Tables()
    parser.feed(page.decode("utf-8"))
    assert (parser.lang, parser.charset) == (lang, "utf-8")
    assert title in parser.title
    assert parser.external == []
    assert b"@media print" in page
    summary, sites, notes = parser.tables
    site_head = sites[0]
    assert site_head[1] == ("Mã điểm" if lang == "vi" else "Site")
    tk = next(r for r in sites if len(r) > 1 and r[1] == "TK")
    down = site_head.index("Mất kết nối" if lang == "vi" else "Down")
    avail = site_head.index("Khả dụng" if lang == "vi" else "Availability")
    assert tk[2] == "Thành ủy Tam Kỳ"
    assert tk[down] == "5:30:00"
    assert tk[avail] == "99.254 %"
    assert ["TK — Thành ủy Tam Kỳ"] in sites  # the district's heading row
    assert summary[1][0] == ("Toàn tỉnh" if lang == "vi" else "Province")
    assert summary[1][2] == "2976:00:00"
    assert [r[0] for r in notes[1:]] == ["9", "6"]
    assert "VNPT-123" in notes[2]
