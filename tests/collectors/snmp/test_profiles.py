"""Profile loading: every shipped profile loads; each invalid one gives exactly its expected errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collectors.snmp.profiles import SHIPPED_PROFILE_DIR, ProfileError, load_profile, load_profiles

REPO = Path(__file__).resolve().parents[3]
TESTDATA = Path("tests/testdata/profiles")
CASES = sorted(p.name for p in (REPO / TESTDATA).glob("invalid-*.yaml"))


def test_shipped_profiles_load_and_define_the_contract_metrics() -> None:
    profiles = load_profiles()
    assert profiles.names() == ["host-resources", "if-mib", "san", "system", "ucd-snmp", "ups-mib"]
    names = {n for p in profiles.profiles.values() for n in p.metric_names()}
    # Names from ARCHITECTURE.md's Metrics section (without netwatch_ and _total).
    assert {
        "device_uptime_seconds", "if_in_octets", "if_out_octets", "if_in_errors", "if_out_errors",
        "if_in_discards", "if_out_discards", "if_oper_up", "if_speed_bps", "host_cpu_load_ratio",
        "host_storage_used_bytes", "host_storage_size_bytes", "host_memory_used_bytes", "ups_on_battery",
        "ups_battery_charge_ratio", "ups_battery_runtime_seconds", "ups_input_voltage_volts",
        "ups_output_load_ratio", "san_port_up", "san_port_rx_octets", "san_port_tx_octets", "san_port_errors",
    } <= names  # fmt: skip


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 7
    for name in CASES:
        assert (REPO / TESTDATA / name).with_suffix(".expected").is_file(), name


@pytest.mark.parametrize("name", CASES)
def test_invalid_profile_reports_exact_errors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    path = TESTDATA / name
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    with pytest.raises(ProfileError) as raised:
        load_profile(path)
    assert [str(p) for p in raised.value.problems] == expected


def test_a_metric_defined_by_two_profiles_is_an_error(tmp_path: Path) -> None:
    shutil.copy(SHIPPED_PROFILE_DIR / "system.yaml", tmp_path / "system.yaml")
    text = (SHIPPED_PROFILE_DIR / "system.yaml").read_text().replace("name: system", "name: vendor-x")
    (tmp_path / "vendor-x.yaml").write_text(text)
    with pytest.raises(ProfileError) as raised:
        load_profiles([tmp_path])
    assert [str(p) for p in raised.value.problems] == [
        f"{tmp_path / 'vendor-x.yaml'}:8: scalars[0].name: "
        "metric 'device_uptime_seconds' is already defined by profile 'system'"
    ]


def test_a_later_directory_adds_a_vendor_profile(tmp_path: Path) -> None:
    (tmp_path / "apc-powernet.yaml").write_text(
        "name: apc-powernet\ndescription: APC PowerNet-MIB battery temperature.\nscalars:\n"
        "  - name: ups_battery_temperature_celsius\n    kind: gauge\n    description: Battery temperature.\n"
        "    sources:\n      - {oid: 1.3.6.1.4.1.318.1.1.1.2.2.2.0}\n"
    )
    profiles = load_profiles([SHIPPED_PROFILE_DIR, tmp_path])
    assert "apc-powernet" in profiles and "if-mib" in profiles
