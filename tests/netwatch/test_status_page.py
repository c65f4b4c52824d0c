"""The status page at ``/``: site tree by district, open outages, this month's availability, links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from netwatch.config import load_inventory
from netwatch.reports.availability import month_bounds
from netwatch.sitehealth import SiteState, SiteStatus
from netwatch.state import LatestState
from netwatch.storage import migrate, repository
from netwatch.storage.engine import create_engine_for
from netwatch.storage.models import Outage
from netwatch.web import WebServer

INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
site_kinds: {province: {}, district: {}, commune: {}}
sites:
  - {code: HUB, name: "Tỉnh ủy Quảng Nam", kind: province}
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district, parent: HUB}
  - {code: TK-C01, name: "Phường An Mỹ", kind: commune, parent: TK}
  - {code: HA, name: "Thành ủy Hội An", kind: district, parent: HUB}
  - {code: HA-C01, name: "Phường Minh An", kind: commune, parent: HA}
"""
VN = timedelta(hours=7)  # Asia/Ho_Chi_Minh has no DST


class PageParser(HTMLParser):
    """Text of every table row (cells joined by ' | '), keyed by table class; links; tags seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.refs: list[str] = []
        self.tags: set[str] = set()
        self.meta: list[dict[str, str | None]] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        found = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("href", "src", "action") and v]
        if tag == "meta":
            self.meta.append(found)
        elif tag == "table":
            self._table = found.get("class") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def row(self, table: str, column: int, value: str) -> list[str]:
        """The one row of ``table`` whose cell ``column`` is ``value``."""
        rows = [r for r in self.tables[table] if len(r) > column and r[column] == value]
        assert len(rows) == 1, (table, value, self.tables[table])
        return rows[0]


def _now_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def live_state(tmp_path: Path, since: datetime) -> LatestState:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    state = LatestState(inventory=load_inventory(config))
    state.sites.update(
        {
            "HUB": SiteStatus(SiteState.UP, since - timedelta(days=1)),
            "TK": SiteStatus(SiteState.DOWN, since),
            "TK-C01": SiteStatus(SiteState.UNREACHABLE, since, cause="TK"),
            "HA": SiteStatus(SiteState.MAINTENANCE, since - timedelta(minutes=30)),
            "HA-C01": SiteStatus(SiteState.UP, since, flapping=True),
        }
    )
    return state


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nw.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


async def fetch(server: WebServer) -> tuple[str, PageParser]:
    async with TestClient(TestServer(server.app())) as client:
        response = await client.get("/")
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        text = await response.text()
    page = PageParser()
    page.feed(text)
    page.close()
    return text, page


def assert_self_contained(text: str, page: PageParser) -> None:
    assert text.startswith("<!doctype html>") and '<html lang="vi">' in text
    assert {"http-equiv": "refresh", "content": "30"} in page.meta
    assert {"charset": "utf-8"} in page.meta
    assert "script" not in page.tags and "<script" not in text.lower()
    assert not re.search(r"https?://|//[a-z0-9]", text, re.IGNORECASE), "no external references"
    assert all(ref.startswith("/") for ref in page.refs), page.refs
    assert {"/metrics", "/healthz"} <= set(page.refs)


async def test_status_page_with_ledger_and_availability(tmp_path: Path, engine: Engine) -> None:
    now = _now_minute()
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    month = now.astimezone(zone).strftime("%Y-%m")
    month_start = month_bounds(month, "Asia/Ho_Chi_Minh")[0].astimezone(UTC)
    since = max(now - timedelta(hours=2, minutes=5), month_start)
    state = live_state(tmp_path, since)
    repository.sync_inventory(engine, state.inventory)
    run_id = repository.start_run(engine, instance="t", shard="1/1", version="t", now=month_start)
    repository.heartbeat(engine, run_id, now=now)
    row = {"cause": None, "ended_at": None, "run_id": run_id, "updated_at": now}
    with engine.begin() as conn:
        tk_id = conn.execute(
            insert(Outage).returning(Outage.id), {**row, "site": "TK", "state": "down", "started_at": since}
        ).scalar_one()
        stale_id = conn.execute(
            insert(Outage).returning(Outage.id),
            {**row, "site": "HA-C01", "state": "degraded", "started_at": since},
        ).scalar_one()

    text, page = await fetch(WebServer(CollectorRegistry(), lambda: {"ok": True}, engine=engine, state=state))

    assert_self_contained(text, page)
    local_since = (since + VN).strftime("%Y-%m-%d %H:%M")
    tk = page.row("tree", 0, "TK")
    assert tk[1] == "Thành ủy Tam Kỳ" and "down" in tk[2] and tk[3] == local_since
    commune = page.row("tree", 0, "TK-C01")
    assert commune[1] == "Phường An Mỹ" and "unreachable" in commune[2] and commune[4] == "TK"
    assert "maintenance" in page.row("tree", 0, "HA")[2]
    flapping = page.row("tree", 0, "HA-C01")
    assert "up" in flapping[2] and "flapping" in flapping[5]
    assert page.row("tree", 0, "HUB")[6] == "100.00 %"
    assert re.fullmatch(r"\d{1,3}\.\d\d %", tk[6]) and tk[6] != "100.00 %", tk
    codes = [r[0] for r in page.tables["tree"][1:]]
    assert codes.index("HA") < codes.index("HA-C01") < codes.index("TK") < codes.index("TK-C01")

    open_tk = page.row("outages", 1, "TK")
    assert open_tk[0] == str(tk_id) and "down" in open_tk[3] and open_tk[4] == local_since
    if since == now - timedelta(hours=2, minutes=5):
        assert open_tk[5] == "2 giờ 05 phút"
    assert page.row("outages", 1, "TK-C01")[6] == "TK"
    assert "maintenance" in page.row("outages", 1, "HA")[3]
    ledger_only = page.row("outages", 1, "HA-C01")
    assert ledger_only[0] == str(stale_id) and "chỉ trong sổ" in ledger_only[2]
    for fmt in ("xlsx", "csv", "html"):
        assert f"/reports/availability?month={month}&format={fmt}&lang=vi" in page.refs


async def test_status_page_without_database(tmp_path: Path) -> None:
    state = live_state(tmp_path, _now_minute() - timedelta(minutes=7))
    text, page = await fetch(WebServer(CollectorRegistry(), lambda: {"ok": True}, state=state))

    assert_self_contained(text, page)
    assert "down" in page.row("tree", 0, "TK")[2]
    assert page.row("tree", 0, "TK-C01")[4] == "TK"
    assert page.row("tree", 0, "HUB")[6] == "—"
    assert not [ref for ref in page.refs if ref.startswith("/reports/")], "no database, no report routes"
    open_tk = page.row("outages", 1, "TK")
    assert open_tk[0] == "" and open_tk[5] == "7 phút"
    assert {r[1] for r in page.tables["outages"][1:]} == {"TK", "TK-C01", "HA"}
    summary = re.search(r'<p class="summary">(.*?)</p>', text)
    assert summary is not None
    counts = re.sub(r"<[^>]+>", "", summary.group(1))
    assert "5 điểm" in counts and "Hoạt động up 2" in counts and "Mất kết nối down 1" in counts
