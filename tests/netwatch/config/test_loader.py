"""Resolution: includes, precedence (device > site > site kind > defaults), districts, links, windows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from collectors.icmp import IcmpParams
from netwatch.config import check_inventory, load_inventory
from netwatch.config.models import parse_bandwidth

BASE = """\
province: {code: QNM, name: Quảng Nam}
defaults:
  down_after: 5
  collectors: {icmp: {interval: 20, probes: 4}}
site_kinds:
  province: {}
  district:
    sla_target: 0.995
    collectors: {icmp: {interval: 15}}
  commune:
    down_after: 6
    collectors: {icmp: {interval: 30, timeout: 2}}
sites:
  - {code: TU, name: Tỉnh ủy, kind: province}
  - {code: TK, name: Thành ủy Tam Kỳ, kind: district, parent: TU}
  - code: TK-C01
    name: Phường An Mỹ
    kind: commune
    parent: TK
    up_after: 2
    collectors: {icmp: {probes: 3}}
    links: [{device: tk-c01, interface: ge-0/0/1, contracted_bps: 2 Mbit/s, name: Megawan}]
  - {code: UB-TK, name: UBND Tam Kỳ, kind: province, parent: TU, district: TK}
devices:
  - {name: tu-router, site: TU, address: 203.0.113.1, role: router}
  - {name: tk-router, site: TK, address: "2001:db8::1", port: 161, role: router, upstream: tu-router}
  - {name: tk-c01, site: TK-C01, address: tk-c01.qnm.example, upstream: tk-router,
     collectors: {icmp: {probes: 2, payload_size: 100}}}
  - {name: tk-c01-sw, site: TK-C01, address: 198.51.100.9, collectors: [icmp]}
"""


def _inventory(tmp_path: Path, text: str = BASE, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_params_follow_device_site_kind_defaults_precedence(tmp_path: Path) -> None:
    inventory = load_inventory(_inventory(tmp_path))
    assert inventory.devices["tu-router"].jobs[0].params == IcmpParams(interval=20, probes=4)
    assert inventory.devices["tk-router"].jobs[0].params == IcmpParams(interval=15, probes=4)
    assert inventory.devices["tk-c01"].jobs[0].params == IcmpParams(
        interval=30, timeout=2, probes=2, payload_size=100
    )
    assert inventory.devices["tk-c01-sw"].jobs[0].params == IcmpParams(interval=30, timeout=2, probes=3)


def test_rules_follow_site_kind_defaults_precedence(tmp_path: Path) -> None:
    sites = load_inventory(_inventory(tmp_path)).sites
    assert (sites["TU"].rules.down_after, sites["TU"].rules.sla_target) == (5, 0.99)
    assert sites["TK"].rules.sla_target == 0.995
    commune = sites["TK-C01"].rules
    assert (commune.down_after, commune.up_after, commune.degraded_loss_ratio) == (6, 2, 0.2)


def test_districts_are_inherited_or_given(tmp_path: Path) -> None:
    sites = load_inventory(_inventory(tmp_path)).sites
    assert {code: site.district for code, site in sites.items()} == {
        "TU": "QNM",
        "TK": "TK",
        "TK-C01": "TK",
        "UB-TK": "TK",
    }


def test_jobs_carry_identifying_labels_and_port(tmp_path: Path) -> None:
    inventory = load_inventory(_inventory(tmp_path))
    job = inventory.devices["tk-router"].jobs[0]
    assert job.key == "tk-router/icmp"
    assert (job.target.address, job.target.port) == ("2001:db8::1", 161)
    assert dict(job.target.labels) == {"site": "TK", "district": "TK", "device": "tk-router"}
    link = inventory.sites["TK-C01"].links[0]
    assert (link.device, link.interface, link.contracted_bps, link.name) == (
        "tk-c01",
        "ge-0/0/1",
        2e6,
        "Megawan",
    )


def test_inventory_is_read_only(tmp_path: Path) -> None:
    inventory = load_inventory(_inventory(tmp_path))
    with pytest.raises(TypeError):
        inventory.sites["X"] = inventory.sites["TU"]  # type: ignore[index]


def test_includes_add_sites_devices_and_maintenance(tmp_path: Path) -> None:
    (tmp_path / "communes").mkdir()
    (tmp_path / "communes" / "tk.yaml").write_text(
        "sites:\n  - {code: TK-C02, name: Phường An Sơn, kind: commune, parent: TK}\n"
        "devices:\n  - {name: tk-c02, site: TK-C02, address: tk-c02.qnm.example}\n"
        "maintenance:\n  - {name: x, sites: [TK-C02], start: '2024-05-01 22:00', end: '2024-05-01T23:30:00+07:00'}\n",
        encoding="utf-8",
    )
    path = _inventory(tmp_path, BASE + "include: [communes/*.yaml]\n")
    inventory = load_inventory(path)
    assert inventory.sites["TK-C02"].district == "TK"
    assert inventory.devices["tk-c02"].jobs[0].params.interval == 30
    assert inventory.source_files == (str(path), str(tmp_path / "communes" / "tk.yaml"))
    window = inventory.maintenance[0]
    assert window.start == datetime(2024, 5, 1, 15, 0, tzinfo=UTC)
    assert window.end == datetime(2024, 5, 1, 16, 30, tzinfo=UTC)


def test_recurring_and_daily_windows(tmp_path: Path) -> None:
    text = BASE + (
        "maintenance:\n"
        "  - {name: weekly, sites: [TK], every: [Saturday, sun], at: '22:00', duration: 1h30m}\n"
        "  - {name: nightly, sites: [TU], every: daily, at: '02:00', duration: 1800}\n"
    )
    weekly, nightly = load_inventory(_inventory(tmp_path, text)).maintenance
    assert (weekly.weekdays, weekly.daily_start, weekly.duration) == ((5, 6), time(22), timedelta(minutes=90))
    assert (nightly.weekdays, nightly.daily_start, nightly.duration) == ((), time(2), timedelta(minutes=30))


def test_all_errors_are_reported_not_just_the_first(tmp_path: Path) -> None:
    text = BASE.replace("kind: province}", "kind: provence}", 1).replace(
        "upstream: tu-router", "upstream: nobody"
    )
    text += "  - {name: tu-router, site: TU, address: 203.0.113.2}\n"
    issues = [str(i) for i in check_inventory(_inventory(tmp_path, text))]
    assert [i.split(": ", 1)[1] for i in issues] == [
        "sites[0].kind: unknown site kind 'provence'; known kinds: commune, district, province",
        "devices[1].upstream: no device is named 'nobody'",
        "devices[4].name: device name 'tu-router' is already defined at "
        + f"{tmp_path / 'inventory.yaml'}:25",
    ]


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("20Mbps", 20e6),
        ("2 Mbit/s", 2e6),
        ("512kbps", 512e3),
        ("1.5 Gbps", 1.5e9),
        ("64000", 64e3),
        ("10 mb/s", 10e6),
    ],
)
def test_bandwidth_units(text: str, bps: float) -> None:
    assert parse_bandwidth(text) == bps


SNMP_LAYERS = """\
province: {code: QNM, name: Quảng Nam}
credentials:
  lab: {version: "2c", community: "not-public-1"}
defaults:
  collectors: {snmp: {interval: 120, profiles: [system, if-mib]}}
site_kinds:
  datacenter:
    collectors: {snmp: {timeout: 3}}
sites:
  - {code: DC, name: Trung tâm dữ liệu, kind: datacenter}
devices:
  - {name: core, site: DC, address: 203.0.113.2, role: switch, collectors: {snmp: {credential: lab}}}
  - {name: ups, site: DC, address: 203.0.113.3, role: ups, collectors: [snmp]}
"""


def test_a_required_param_given_at_the_device_completes_the_layers_above(tmp_path: Path) -> None:
    text = SNMP_LAYERS.replace(
        "  - {name: ups, site: DC, address: 203.0.113.3, role: ups, collectors: [snmp]}\n", ""
    )
    inventory = load_inventory(_inventory(tmp_path, text))
    (job,) = inventory.devices["core"].jobs
    assert (job.kind, job.params.interval, job.params.timeout) == ("snmp", 120, 3)
    assert getattr(job.params, "credential", None) == "lab"


def test_a_required_param_given_nowhere_is_reported_at_the_device(tmp_path: Path) -> None:
    path = _inventory(tmp_path, SNMP_LAYERS)
    assert [str(i) for i in check_inventory(path)] == [
        f"{path}:13: devices[1].collectors.snmp.credential: required key is missing"
    ]


ALERTING = """\
province: {code: QNM, name: Quảng Nam}
site_kinds: {district: {}}
sites: [{code: TK, name: Thành ủy Tam Kỳ, kind: district}]
alerting:
  language: vi
  channels:
    noc: {type: webhook, url: "http://127.0.0.1:9/alerts"}
  routes:
    - {match: {district: [TK]}, channels: [noc-typo]}
"""


def test_the_alerting_section_is_validated_with_the_inventory(tmp_path: Path) -> None:
    good = load_inventory(_inventory(tmp_path, ALERTING.replace("noc-typo", "noc")))
    assert good.alerting is not None and good.alerting.language == "vi"
    issues = [str(i) for i in check_inventory(_inventory(tmp_path, ALERTING, "bad.yaml"))]
    # A cross-field rule of the section: reported at the section, naming the entry and the name.
    assert issues == [
        f"{tmp_path / 'bad.yaml'}:4: alerting: routes[0].channels: no channel named 'noc-typo' (channels: noc)"
    ]
