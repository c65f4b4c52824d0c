"""Reports over HTTP: the same export as the CLI, and clear 400s for bad parameters."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from netwatch.config import load_inventory
from netwatch.storage import migrate, repository
from netwatch.storage.engine import create_engine_for
from netwatch.web import WebServer

INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
site_kinds: {district: {}}
sites:
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district}
  - {code: HA, name: "Thành ủy Hội An", kind: district}
"""


async def test_availability_over_http(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nw.db'}")
    migrate.upgrade(engine)
    repository.sync_inventory(engine, load_inventory(config))
    server = WebServer(CollectorRegistry(), lambda: {"ok": True}, engine=engine)
    month = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
    async with TestClient(TestServer(server.app())) as client:
        response = await client.get(
            "/reports/availability", params={"month": month, "format": "csv", "lang": "en"}
        )
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        assert f"availability-{month}.csv" in response.headers["Content-Disposition"]
        body = (await response.read()).decode("utf-8-sig")
        cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
        assert "Thành ủy Tam Kỳ" in cells and "Thành ủy Hội An" in cells
        html = await client.get("/reports/availability", params={"month": month, "format": "html"})
        assert html.status == 200 and 'lang="vi"' in await html.text()
        for params, field in (
            ({"month": "2026-13"}, "month"),
            ({"month": month, "format": "pdf"}, "format"),
            ({"month": month, "tz": "Mars/Olympus"}, "tz"),
            ({"month": "2999-01"}, "month"),
            ({"month": "../"}, "month"),
            ({"month": "99999-01"}, "month"),
            ({"month": month, "lang": "fr"}, "lang"),
        ):
            bad = await client.get("/reports/availability", params=params)
            assert bad.status == 400 and (await bad.text()).startswith(f"{field}:"), params
        index = await client.get("/")
        assert (
            f"/reports/availability?month={datetime.now(ZoneInfo('Asia/Ho_Chi_Minh')).strftime('%Y-%m')}"
            in await index.text()
        )
    engine.dispose()


async def test_out_of_range_years_and_unknown_filters_are_400(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nw.db'}")
    migrate.upgrade(engine)
    repository.sync_inventory(engine, load_inventory(config))
    server = WebServer(CollectorRegistry(), lambda: {"ok": True}, engine=engine)
    statuses = []
    async with TestClient(TestServer(server.app())) as client:
        for params in (
            {"month": "0001-01"},
            {"month": "2026-01", "site": "NOPE"},
            {"month": "2026-01", "district": "NOPE"},
        ):
            response = await client.get("/reports/availability", params=params)
            statuses.append((response.status, (await response.text()).split(":")[0]))
    engine.dispose()
    assert statuses == [(400, "month"), (400, "site"), (400, "district")]
