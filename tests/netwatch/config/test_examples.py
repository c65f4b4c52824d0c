"""The example inventories shipped in config/ validate and describe the network they claim to."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from netwatch.config import Inventory, load_inventory

from .conftest import LOOPBACK, QUANGNAM

DOCUMENTATION_NETS = (ipaddress.ip_network("198.51.100.0/24"), ipaddress.ip_network("203.0.113.0/24"))
DISTRICTS = {
    "Tam Kỳ", "Hội An", "Điện Bàn", "Đại Lộc", "Duy Xuyên", "Quế Sơn", "Nông Sơn", "Thăng Bình", "Phú Ninh",
    "Núi Thành", "Tiên Phước", "Hiệp Đức", "Bắc Trà My", "Nam Trà My", "Phước Sơn", "Nam Giang", "Đông Giang",
    "Tây Giang",
}  # fmt: skip


@pytest.fixture
def quangnam(qnm_env: dict[str, str]) -> Inventory:
    return load_inventory(QUANGNAM)


def test_quangnam_has_the_structure_of_plan_477(quangnam: Inventory) -> None:
    kinds = Counter(site.kind for site in quangnam.sites.values())
    assert kinds["district"] == 18
    assert kinds["commune"] == 187
    assert kinds["party_board"] == 5
    assert kinds["affiliated"] == 5
    assert kinds["datacenter"] == 1
    districts = [s for s in quangnam.sites.values() if s.kind == "district"]
    assert {name for name in DISTRICTS if any(name in s.name for s in districts)} == DISTRICTS
    roles = Counter(device.role for device in quangnam.devices.values())
    assert roles["videoconf"] == 19


def test_quangnam_data_center_has_its_servers_and_20_mbps_uplink(quangnam: Inventory) -> None:
    dc = quangnam.sites["TTDL"]
    roles = Counter(d.role for d in quangnam.devices.values() if d.site == dc.code)
    assert roles["server"] == 7
    assert roles["san"] == 1
    assert roles["ups"] == 1
    assert [link.contracted_bps for link in dc.links] == [20_000_000]


def test_quangnam_communes_hang_off_their_districts(quangnam: Inventory) -> None:
    for site in quangnam.sites.values():
        if site.kind == "commune":
            assert site.parent is not None
            parent = quangnam.sites[site.parent]
            assert parent.kind == "district"
            assert site.district == parent.code
            device = quangnam.devices[site.links[0].device]
            assert device.upstream is not None
            assert quangnam.devices[device.upstream].site == parent.code
    assert all(s.district == s.code for s in quangnam.sites.values() if s.kind == "district")
    assert "quangnam/communes-tk.yaml" in " ".join(quangnam.source_files)


def test_quangnam_addresses_are_documentation_only(quangnam: Inventory) -> None:
    for device in quangnam.devices.values():
        try:
            address = ipaddress.ip_address(device.address)
        except ValueError:
            assert device.address.endswith(".example"), device.address
        else:
            assert any(address in net for net in DOCUMENTATION_NETS), device.address


def test_quangnam_polls_every_device_with_icmp_under_its_kind_settings(quangnam: Inventory) -> None:
    assert len(quangnam.jobs) == len(quangnam.devices)
    commune_router = quangnam.devices["tk-c01"].jobs[0]
    assert commune_router.kind == "icmp"
    assert commune_router.params.interval == 30
    assert dict(commune_router.target.labels) == {"site": "TK-C01", "district": "TK", "device": "tk-c01"}
    assert quangnam.sites["TK-C01"].rules.down_after == 4


def test_quangnam_has_a_sunday_evening_maintenance_window(quangnam: Inventory) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    window = quangnam.maintenance[0]
    local = ZoneInfo("Asia/Ho_Chi_Minh")
    assert window.covers(datetime(2024, 5, 5, 22, 30, tzinfo=local))  # a Sunday
    assert not window.covers(datetime(2024, 5, 5, 23, 0, tzinfo=local))
    assert not window.covers(datetime(2024, 5, 6, 22, 30, tzinfo=local))


def test_loopback_example_stays_on_loopback() -> None:
    inventory = load_inventory(LOOPBACK)
    assert inventory.devices
    for device in inventory.devices.values():
        assert ipaddress.ip_address(device.address) in ipaddress.ip_network("127.0.0.0/8")
