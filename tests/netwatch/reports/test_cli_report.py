"""`netwatch report availability` and `netwatch outages annotate`, run as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from netwatch.storage.annotations import annotation_history
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from tests.netwatch.reports.month_data import populate

REPO = Path(__file__).resolve().parents[3]


def netwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "netwatch", *args],
        capture_output=True,
        env=environment,
        check=False,
        timeout=60,
    )


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, dict[str, int]]:
    url = f"sqlite:///{tmp_path / 'nw.db'}"
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        ids = populate(engine)
    finally:
        engine.dispose()
    return url, ids


def _site_rows(result: subprocess.CompletedProcess[bytes]) -> dict[str, dict[str, str]]:
    assert result.returncode == 0, result.stderr.decode()
    return {r["Site"]: r for r in csv.DictReader(io.StringIO(result.stdout.decode("utf-8-sig")))}


def test_annotate_reclassifies_and_the_report_follows(db: tuple[str, dict[str, int]]) -> None:
    url, ids = db
    report = ("report", "availability", "--month", "2026-10", "--lang", "en", "--db", url)
    before = _site_rows(netwatch(*report))["TK-C01"]
    assert (before["Down (s)"], before["Maintenance (s)"], before["Outages"]) == ("43200", "0", "1")

    outage = str(ids["TK-C01#2"])
    done = netwatch(
        "outages", "annotate", outage, "--cause", "Đứt cáp quang", "--ticket", "VNPT-77",
        "--reclassify", "maintenance", "--db", url, env={"SUDO_USER": "", "USER": "nguyenvana"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "nguyenvana" in out and "maintenance" in out and "Đứt cáp quang" in out

    engine = create_engine_for(url)
    try:
        [audit] = annotation_history(engine, int(outage))
    finally:
        engine.dispose()
    assert audit["author"] == "nguyenvana"
    assert (audit["cause"], audit["ticket"], audit["reclassified_as"]) == (
        "Đứt cáp quang",
        "VNPT-77",
        "maintenance",
    )
    assert audit["before"]["state"] == "down" and audit["before"]["ticket"] is None
    assert audit["after"] == {
        **audit["before"],
        "state": "maintenance",
        "cause": "Đứt cáp quang",
        "ticket": "VNPT-77",
    }

    after = _site_rows(netwatch(*report))["TK-C01"]
    assert (after["Down (s)"], after["Maintenance (s)"], after["Outages"], after["SLA met"]) == (
        "0",
        "43200",
        "0",
        "Met",
    )
    assert f"#{outage} maintenance: VNPT-77; Đứt cáp quang" in after["Annotations"]

    again = netwatch(
        "outages", "annotate", outage, "--ticket", "VNPT-78", "--author", "tranthib", "--db", url
    )
    assert again.returncode == 0, again.stderr.decode()
    engine = create_engine_for(url)
    try:
        history = annotation_history(engine, int(outage))
    finally:
        engine.dispose()
    assert [h["author"] for h in history] == ["nguyenvana", "tranthib"]
    assert history[1]["before"] == history[0]["after"]
    assert (history[1]["cause"], history[1]["reclassified_as"]) == ("Đứt cáp quang", "maintenance")
    assert json.dumps(history[1]["after"]["ticket"]) == '"VNPT-78"'


def test_annotate_unknown_outage_exits_2(db: tuple[str, dict[str, int]]) -> None:
    result = netwatch("outages", "annotate", "9999", "--cause", "x", "--db", db[0])
    assert result.returncode == 2
    assert "no outage with id 9999" in result.stderr.decode()
    nothing = netwatch("outages", "annotate", "1", "--db", db[0])
    assert nothing.returncode == 2
    assert "nothing to annotate" in nothing.stderr.decode()
    wrong = netwatch("outages", "annotate", "1", "--reclassify", "unknown", "--db", db[0])
    assert wrong.returncode == 2


def test_report_files_in_each_format(db: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    url = db[0]
    xlsx = tmp_path / "thang10.xlsx"
    done = netwatch(
        "report", "availability", "--month", "2026-10", "--format", "xlsx", "-o", str(xlsx), "--db", url
    )
    assert done.returncode == 0, done.stderr.decode()
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["Tổng hợp", "Điểm", "Ghi chú sự cố"]
    html = netwatch(
        "report", "availability", "--month", "2026-10", "--format", "html", "--district", "HA", "--db", url
    )
    assert html.returncode == 0, html.stderr.decode()
    page = html.stdout.decode("utf-8")
    assert '<html lang="vi">' in page and "Thành ủy Hội An" in page and "Tam Kỳ" not in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--month", "2026-13"), "not of the form YYYY-MM"),
        (("--month", "10/2026"), "not of the form YYYY-MM"),
        (("--month", "2026-10", "--tz", "Asia/Hanoi_Typo"), "unknown time zone"),
        (("--month", "2026-10", "--format", "xlsx"), "give -o FILE"),
        (("--month", "2026-10", "-o", "/nonexistent-dir/r.csv"), "does not exist"),
        (("--month", "2999-01"), "has not begun"),
        (("--month", "2026-10", "--format", "pdf"), "pdf"),
    ],
)
def test_report_input_errors(db: tuple[str, dict[str, int]], args: tuple[str, ...], message: str) -> None:
    result = netwatch("report", "availability", *args, "--db", db[0])
    assert result.returncode == 2
    assert message in result.stderr.decode()


def test_report_unknown_site_is_an_error(db: tuple[str, dict[str, int]]) -> None:
    result = netwatch("report", "availability", "--month", "2026-10", "--site", "NOPE", "--db", db[0])
    assert result.returncode == 2  # a bad argument, like every other input error
    assert "no site has code 'NOPE'" in result.stderr.decode()
