"""The demo network: the provincial data center, 18 district committees, two communes each, on loopback.

Every address is in 127.0.0.0/8, so nothing leaves the machine. The inventory is written as YAML
and loaded through the same loader as any operator's file, so the demo also proves the format.
With SNMP agents running, the data center's devices and every district router get ``snmp:``
settings and the district links name their WAN interface; the sites the demo fails on purpose carry
:data:`~netwatch.demo.faults.MARK` in their names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from netwatch.demo.faults import MARK, Fault, subtree_devices
from netwatch.demo.recordings import ROUTER_WAN, Traffic

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
DISTRICT_BPS = 4_000_000
INTERNET_BPS = 20_000_000
FAULTED_COMMUNE = "DX-C01"
FAULTED_DISTRICT = "TG"
SERVERS = 7
TIMEZONE = "Asia/Ho_Chi_Minh"

Model = Literal["router", "switch", "server", "san", "ups"]


@dataclass(frozen=True)
class SnmpDevice:
    """A demo device with a simulated SNMP agent: what it is made from and how netwatch polls it."""

    device: str
    address: str
    model: Model
    profiles: tuple[str, ...]
    interval: float
    traffic: Traffic | None = None
    wan_alias: str = ""
    cpu_base: float = 30.0
    memory_share: float = 1.0

    @property
    def community(self) -> str:
        """The device's community: snmpsim picks the device's data file by it."""
        return f"demo-{self.device}"


def _district_traffic(n: int) -> Traffic:
    # Spread the districts over 30–90 % of the contract inbound, a third of that outbound.
    share = 0.30 + 0.60 * ((n * 37) % 100) / 100
    inbound = DISTRICT_BPS * share / 8
    return Traffic(in_octets=inbound, out_octets=inbound / 3)


def snmp_devices() -> list[SnmpDevice]:
    """Every device the demo gives a simulated SNMP agent."""
    devices = [
        SnmpDevice("dc-core", "127.0.1.1", "switch", ("system", "if-mib"), 30.0),
        SnmpDevice(
            "dc-inet",
            "127.0.1.2",
            "router",
            ("system", "if-mib"),
            10.0,
            traffic=Traffic(INTERNET_BPS * 0.55 / 8, INTERNET_BPS * 0.2 / 8),
            wan_alias="Internet VNPT",
        ),
        *(
            SnmpDevice(
                f"dc-srv{i}",
                f"127.0.1.{10 + i}",
                "server",
                ("system", "host-resources", "ucd-snmp"),
                15.0,
                cpu_base=15.0 + 9 * i,
                memory_share=0.45 + 0.07 * i,
            )
            for i in range(1, SERVERS + 1)
        ),
        SnmpDevice("dc-san", "127.0.1.20", "san", ("system", "san"), 15.0),
        SnmpDevice("dc-ups", "127.0.1.21", "ups", ("system", "ups-mib"), 15.0),
    ]
    for n, (code, _) in enumerate(DISTRICTS, start=1):
        devices.append(
            SnmpDevice(
                f"{code.lower()}-router",
                f"127.0.2.{n}",
                "router",
                ("system", "if-mib"),
                10.0,
                traffic=_district_traffic(n),
                wan_alias=f"Megawan {code}",
            )
        )
    return devices


def _snmp_settings(device: SnmpDevice, port: int) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "credential": device.community,
        "port": port,
        "interval": device.interval,
        "timeout": 2,
        "retries": 1,
        "profiles": list(device.profiles),
    }
    if device.model == "router":
        settings["interfaces"] = {"exclude_types": ["softwareLoopback"]}
    return settings


def _devices() -> list[dict[str, Any]]:
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
            for i in range(1, SERVERS + 1)
        ),
        {"name": "dc-san", "site": "QNM-DC", "address": "127.0.1.20", "role": "san", "upstream": "dc-core"},
        {"name": "dc-ups", "site": "QNM-DC", "address": "127.0.1.21", "role": "ups", "upstream": "dc-core"},
    ]
    for n, (code, _) in enumerate(DISTRICTS, start=1):
        router = f"{code.lower()}-router"
        devices.append(
            {"name": router, "site": code, "address": f"127.0.2.{n}", "role": "router", "upstream": "dc-core"}
        )
        for c in range(1, COMMUNES_PER_DISTRICT + 1):
            commune = f"{code}-C{c:02d}"
            devices.append(
                {
                    "name": commune.lower(),
                    "site": commune,
                    "address": f"127.0.3.{(n - 1) * 10 + c}",
                    "role": "router",
                    "upstream": router,
                }
            )
    return devices


def _sites(snmp: bool, faults: bool) -> list[dict[str, Any]]:
    wan = {"interface": ROUTER_WAN[1]} if snmp else {}
    sites: list[dict[str, Any]] = [
        {
            "code": "QNM-DC",
            "name": "Trung tâm dữ liệu tỉnh Quảng Nam",
            "kind": "datacenter",
            "links": [{"device": "dc-inet", **wan, "name": "Internet", "contracted_bps": "20Mbps"}],
        }
    ]
    for code, name in DISTRICTS:
        sites.append(
            {
                "code": code,
                "name": name,
                "kind": "district",
                "parent": "QNM-DC",
                "links": [
                    {"device": f"{code.lower()}-router", **wan, "name": "Megawan", "contracted_bps": "4Mbps"}
                ],
            }
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
    if faults:
        for site in sites:
            if site["code"] in (FAULTED_COMMUNE, FAULTED_DISTRICT):
                site["name"] = f"{site['name']} {MARK}"
    return sites


def demo_inventory(*, snmp_port: int | None = None, faults: bool = True) -> dict[str, Any]:
    """The demo network as an inventory document; with ``snmp_port``, SNMP on the agents' devices."""
    devices = _devices()
    credentials: dict[str, Any] = {}
    if snmp_port is not None:
        plan = {d.device: d for d in snmp_devices()}
        for device in devices:
            agent = plan.get(device["name"])
            if agent is not None:
                device["collectors"] = {"icmp": None, "snmp": _snmp_settings(agent, snmp_port)}
                credentials[agent.community] = {"version": "2c", "community": agent.community}
    document: dict[str, Any] = {
        "province": {"code": "QNM", "name": "Quảng Nam"},
        "timezone": TIMEZONE,
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
        "sites": _sites(snmp_port is not None, faults),
        "devices": devices,
    }
    if credentials:
        document["credentials"] = credentials
    return document


def demo_faults(document: dict[str, Any]) -> tuple[Fault, ...]:
    """The demo's faults: a commune down for 3/8 of every period; a district, with its communes,
    for a quarter of every third period, after the commune is back."""
    parents = {str(s["code"]): s.get("parent") for s in document["sites"]}
    devices = document["devices"]
    return (
        Fault(FAULTED_COMMUNE, subtree_devices(devices, FAULTED_COMMUNE, parents), start=0.25, length=0.375),
        Fault(
            FAULTED_DISTRICT,
            subtree_devices(devices, FAULTED_DISTRICT, parents),
            start=0.625,
            length=0.25,
            every=3,
        ),
    )


def write_demo_inventory(directory: Path, document: dict[str, Any] | None = None) -> Path:
    """Write the demo inventory (by default :func:`demo_inventory`) as YAML into ``directory``; return its path."""
    path = directory / "demo-inventory.yaml"
    header = "# netwatch demo network: every address is on loopback (127.0.0.0/8).\n"
    body = yaml.safe_dump(
        document if document is not None else demo_inventory(), allow_unicode=True, sort_keys=False
    )
    path.write_text(header + body, encoding="utf-8")
    return path
