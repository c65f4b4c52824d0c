"""`netwatch status` and `netwatch outages` read the database, so they work beside running daemons."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from netwatch.config import load_inventory
from netwatch.storage import migrate, repository
from netwatch.storage.engine import create_engine_for
from netwatch.storage.models import Outage, SiteState

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 23:30 in Asia/Ho_Chi_Minh
INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
site_kinds: {province: {}, district: {}, commune: {}}
sites:
  - {code: HUB, name: "Tỉnh ủy Quảng Nam", kind: province}
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district, parent: HUB}
  - {code: TK-C01, name: "Phường An Mỹ", kind: commune, parent: TK}
  - {code: HA, name: "Thành ủy Hội An", kind: district, parent: HUB}
"""


def netwatch(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "netwatch", *args, "--db", db],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_status_tree_and_outage_list(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'nw.db'}"
    engine = create_engine_for(db)
    migrate.upgrade(engine)
    repository.sync_inventory(engine, load_inventory(config))
    states = [("HUB", "up", None), ("TK", "down", None), ("TK-C01", "unreachable", "TK"), ("HA", "up", None)]
    with engine.begin() as conn:
        conn.execute(
            insert(SiteState),
            [{"site": s, "state": st, "since": T0, "cause": c, "updated_at": T0} for s, st, c in states],
        )
        conn.execute(
            insert(Outage),
            [
                {
                    "site": "TK",
                    "state": "down",
                    "cause": None,
                    "started_at": T0,
                    "ended_at": None,
                    "run_id": "r",
                    "updated_at": T0,
                },
                {
                    "site": "TK-C01",
                    "state": "unreachable",
                    "cause": "TK",
                    "started_at": T0,
                    "ended_at": None,
                    "run_id": "r",
                    "updated_at": T0,
                },
                {
                    "site": "HA",
                    "state": "down",
                    "cause": None,
                    "started_at": T0 - timedelta(days=3),
                    "ended_at": T0 - timedelta(days=3, minutes=-25),
                    "run_id": "r",
                    "updated_at": T0,
                },
            ],
        )
    engine.dispose()

    status = netwatch("status", db=db)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    tk = next(i for i, line in enumerate(lines) if "Thành ủy Tam Kỳ" in line and "down" in line)
    commune = next(i for i, line in enumerate(lines) if "Phường An Mỹ" in line)
    assert commune > tk and "unreachable" in lines[commune] and "TK" in lines[commune].split("│")[-2]
    assert "2026-10-31 23:30:00" in lines[tk]  # shown in Asia/Ho_Chi_Minh
    assert "1 down, 1 unreachable, 2 up" in status.stdout

    open_only = netwatch("outages", "--open", db=db)
    assert open_only.returncode == 0, open_only.stderr
    assert "TK-C01" in open_only.stdout and "open" in open_only.stdout and " HA " not in open_only.stdout
    one_site = netwatch("outages", "--site", "HA", db=db)
    assert "0:25:00" in one_site.stdout and "TK" not in one_site.stdout.replace("Outages", "")
    recent = netwatch("outages", "--since", "2026-11-01", db=db)
    assert "HA" not in recent.stdout and "TK-C01" in recent.stdout
