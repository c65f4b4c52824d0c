"""``netwatch demo``: the daemon on a built-in network on loopback, with a temporary database.

Every address is in 127.0.0.0/8, so nothing leaves the machine. The inventory is written as YAML
and loaded through the same loader as any operator's file, so the demo also proves the format.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from netwatch.config import load_inventory
from netwatch.daemon import Daemon, DaemonOptions
from netwatch.web import parse_listen

DISTRICTS: tuple[tuple[str, str], ...] = (
    ("TK", "Thành ủy Tam Kỳ"),
    ("HA", "Thành ủy Hội An"),
    ("DB", "Thị ủy Điện Bàn"),
    ("DL", "Huyện ủy Đại Lộc"),
    ("DX", "Huyện ủy Duy Xuyên"),
    ("QS", "Huyện ủy Quế Sơn"),
    ("NS", "Huyện ủy Nông Sơn"),
    ("TB", "Huyện ủy Thăng Bình"),
    ("PN", "Huyện ủy Phú Ninh"),
    ("NT", "Huyện ủy Núi Thành"),
    ("TP", "Huyện ủy Tiên Phước"),
    ("HD", "Huyện ủy Hiệp Đức"),
    ("BTM", "Huyện ủy Bắc Trà My"),
    ("NTM", "Huyện ủy Nam Trà My"),
    ("PS", "Huyện ủy Phước Sơn"),
    ("NG", "Huyện ủy Nam Giang"),
    ("DG", "Huyện ủy Đông Giang"),
    ("TG", "Huyện ủy Tây Giang"),
)
COMMUNES_PER_DISTRICT = 2


def demo_inventory() -> dict[str, Any]:
    """The demo network: the provincial data center, 18 district committees, two communes each."""
    sites: list[dict[str, Any]] = [
        {
            "code": "QNM-DC",
            "name": "Trung tâm dữ liệu tỉnh Quảng Nam",
            "kind": "datacenter",
            "links": [{"device": "dc-inet", "name": "Internet", "contracted_bps": "20Mbps"}],
        }
    ]
    devices: list[dict[str, Any]] = [
        {"name": "dc-core", "site": "QNM-DC", "address": "127.0.1.1", "role": "switch"},
        {
            "name": "dc-inet",
            "site": "QNM-DC",
            "address": "127.0.1.2",
            "role": "router",
            "upstream": "dc-core",
        },
        *(
            {
                "name": f"dc-srv{i}",
                "site": "QNM-DC",
                "address": f"127.0.1.{10 + i}",
                "role": "server",
                "upstream": "dc-core",
            }
            for i in range(1, 8)
        ),
        {"name": "dc-san", "site": "QNM-DC", "address": "127.0.1.20", "role": "san", "upstream": "dc-core"},
        {"name": "dc-ups", "site": "QNM-DC", "address": "127.0.1.21", "role": "ups", "upstream": "dc-core"},
    ]
    for n, (code, name) in enumerate(DISTRICTS, start=1):
        router = f"{code.lower()}-router"
        sites.append(
            {
                "code": code,
                "name": name,
                "kind": "district",
                "parent": "QNM-DC",
                "links": [{"device": router, "name": "Megawan", "contracted_bps": "4Mbps"}],
            }
        )
        devices.append(
            {"name": router, "site": code, "address": f"127.0.2.{n}", "role": "router", "upstream": "dc-core"}
        )
        for c in range(1, COMMUNES_PER_DISTRICT + 1):
            commune = f"{code}-C{c:02d}"
            sites.append(
                {
                    "code": commune,
                    "name": f"Đảng ủy xã số {c} ({name.split(' ', 2)[-1]})",
                    "kind": "commune",
                    "parent": code,
                    "links": [{"device": commune.lower(), "contracted_bps": "2Mbps"}],
                }
            )
            devices.append(
                {
                    "name": commune.lower(),
                    "site": commune,
                    "address": f"127.0.3.{(n - 1) * 10 + c}",
                    "role": "router",
                    "upstream": router,
                }
            )
    return {
        "province": {"code": "QNM", "name": "Quảng Nam"},
        "timezone": "Asia/Ho_Chi_Minh",
        "defaults": {
            "down_after": 3,
            "up_after": 1,
            "collectors": {"icmp": {"interval": 5, "probes": 5, "probe_spacing": 0.2, "timeout": 1}},
        },
        "site_kinds": {
            "datacenter": {"sla_target": 0.999},
            "district": {"sla_target": 0.995},
            "commune": {"sla_target": 0.98},
        },
        "sites": sites,
        "devices": devices,
    }


def write_demo_inventory(directory: Path) -> Path:
    """Write the demo inventory as YAML into ``directory``; return its path."""
    path = directory / "demo-inventory.yaml"
    header = "# netwatch demo network: every address is on loopback (127.0.0.0/8).\n"
    path.write_text(
        header + yaml.safe_dump(demo_inventory(), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return path


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def run_demo(*, listen: str = "127.0.0.1:9555", keep_db: bool = False) -> int:
    """Run the demo until Ctrl-C; return the exit code."""
    host, port = parse_listen(listen)
    if not _port_free(host, port):
        print(f"netwatch demo: {listen} is in use; pass --listen 127.0.0.1:OTHERPORT", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="netwatch-demo-"))
    try:
        config = write_demo_inventory(workdir)
        db_path = workdir / "netwatch-demo.db"
        options = DaemonOptions(config=config, db_url=f"sqlite:///{db_path}", listen=listen, instance="demo")
        inventory = load_inventory(config)
        print(
            f"netwatch demo: {len(inventory.sites)} sites, {len(inventory.devices)} devices on loopback\n"
            f"  metrics:   http://{host}:{port}/metrics\n"
            f"  health:    http://{host}:{port}/healthz\n"
            f"  inventory: {config}\n"
            f"  database:  {db_path}\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        return asyncio.run(Daemon(options, inventory).run())
    finally:
        if keep_db:
            print(f"netwatch demo: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
