"""Table tests of the pure decoder: varbinds + profile → measurements."""

from __future__ import annotations

import pytest

from collectors.snmp.client import Value
from collectors.snmp.decode import Columns, InterfaceFilter, decode, label_text
from collectors.snmp.profiles import load_profiles

PROFILES = load_profiles()
IF = PROFILES["if-mib"]
HR = PROFILES["host-resources"]
SAN = PROFILES["san"]

IF_NAME, IF_DESCR, IF_TYPE = "1.3.6.1.2.1.31.1.1.1.1", "1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.2.2.1.3"
IN32, HCIN, OPER = "1.3.6.1.2.1.2.2.1.10", "1.3.6.1.2.1.31.1.1.1.6", "1.3.6.1.2.1.2.2.1.8"
SPEED, HIGH = "1.3.6.1.2.1.2.2.1.5", "1.3.6.1.2.1.31.1.1.1.15"


def c32(v: int) -> Value:
    return Value("Counter32", v)


def c64(v: int) -> Value:
    return Value("Counter64", v)


def i(v: int) -> Value:
    return Value("Integer32", v)


def s(v: str) -> Value:
    return Value("OctetString", v.encode())


def values(columns: Columns, name: str, flt: InterfaceFilter | None = None) -> dict[str, float]:
    """name's values by ifname."""
    out = decode([IF], {}, columns, flt)
    return {dict(m.labels)["ifname"]: m.value for m in out.measurements if m.name == name}


@pytest.mark.parametrize(
    ("columns", "expected", "bits"),
    [
        pytest.param({HCIN: {"1": c64(2**40)}, IN32: {"1": c32(7)}}, 2**40, 64, id="hc-present"),
        pytest.param({IN32: {"1": c32(7)}}, 7, 32, id="no-ifxtable"),
        pytest.param(
            {HCIN: {"2": c64(9)}, IN32: {"1": c32(7), "2": c32(8)}}, 7, 32, id="hc-missing-for-this-row"
        ),
        pytest.param({HCIN: {"1": s("x")}, IN32: {"1": c32(7)}}, 7, 32, id="hc-wrong-type-falls-back"),
    ],
)
def test_in_octets_prefers_hc_per_interface(columns: Columns, expected: int, bits: int) -> None:
    out = decode([IF], {}, {IF_NAME: {"1": s("ge-0/0/1")}, **columns})
    [m] = [m for m in out.measurements if m.name == "if_in_octets" and ("ifindex", "1") in m.labels]
    assert (m.value, m.kind) == (expected, "counter")
    assert out.counter_bits[(m.name, m.labels)] == bits


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({HIGH: {"1": Value("Gauge32", 10_000)}, SPEED: {"1": Value("Gauge32", 4294967295)}}, 10e9),
        ({HIGH: {"1": Value("Gauge32", 0)}, SPEED: {"1": Value("Gauge32", 100_000_000)}}, 1e8),
        ({SPEED: {"1": Value("Gauge32", 2_048_000)}}, 2_048_000),
    ],
    ids=["high-speed", "high-speed-zero", "no-high-speed"],
)
def test_speed_from_high_speed_or_speed(columns: Columns, expected: float) -> None:
    assert values({IF_DESCR: {"1": s("eth0")}, **columns}, "if_speed_bps") == {"eth0": expected}


@pytest.mark.parametrize(("status", "up"), [(1, 1.0), (2, 0.0), (7, 0.0)])
def test_oper_status_maps_to_up(status: int, up: float) -> None:
    assert values({IF_DESCR: {"1": s("eth0")}, OPER: {"1": i(status)}}, "if_oper_up") == {"eth0": up}


def test_ifname_falls_back_to_ifdescr_and_labels_are_complete() -> None:
    out = decode([IF], {}, {IF_DESCR: {"5": s("Serial0/0")}, IN32: {"5": c32(1)}})
    [m] = [m for m in out.measurements if m.name == "if_in_octets"]
    assert m.labels == (("ifname", "Serial0/0"), ("ifalias", ""), ("ifindex", "5"))


def test_wrong_type_is_skipped_and_counted_never_raised() -> None:
    out = decode([IF], {}, {IF_DESCR: {"1": s("eth0")}, IN32: {"1": s("garbage")}, OPER: {"1": s("up")}})
    assert not [m for m in out.measurements if m.name in ("if_in_octets", "if_oper_up")]
    assert out.problem_count == 2
    assert any("1.3.6.1.2.1.2.2.1.10 is OctetString" in p for p in out.problems)


def test_missing_columns_give_no_measurements() -> None:
    out = decode(list(PROFILES.profiles.values()), {}, {})
    assert out.measurements == () and out.problem_count == 0


FILTER_COLUMNS: Columns = {
    IF_NAME: {"1": s("lo"), "2": s("Gi1/0/1"), "3": s("Gi1/0/2"), "4": s("Po1")},
    IF_TYPE: {"1": i(24), "2": i(6), "3": i(6), "4": i(161)},
    OPER: {"1": i(1), "2": i(1), "3": i(2), "4": i(1)},
    IN32: {"1": c32(1), "2": c32(2), "3": c32(3), "4": c32(4)},
}


@pytest.mark.parametrize(
    ("flt", "kept"),
    [
        (InterfaceFilter(), {"lo", "Gi1/0/1", "Gi1/0/2", "Po1"}),
        (InterfaceFilter(exclude=("lo",)), {"Gi1/0/1", "Gi1/0/2", "Po1"}),
        (InterfaceFilter(include=("Gi*",)), {"Gi1/0/1", "Gi1/0/2"}),
        (InterfaceFilter(include=("Gi*",), exclude=("*/2",)), {"Gi1/0/1"}),
        (InterfaceFilter(types=frozenset({6, 161})), {"Gi1/0/1", "Gi1/0/2", "Po1"}),
        (InterfaceFilter(exclude_types=frozenset({24})), {"Gi1/0/1", "Gi1/0/2", "Po1"}),
        (InterfaceFilter(oper_up_only=True), {"lo", "Gi1/0/1", "Po1"}),
        (InterfaceFilter(include=("Gi*",), oper_up_only=True), {"Gi1/0/1"}),
    ],
    ids=[
        "none",
        "exclude",
        "include",
        "include-exclude",
        "types",
        "exclude-types",
        "oper-up",
        "include-oper-up",
    ],
)
def test_interface_filters(flt: InterfaceFilter, kept: set[str]) -> None:
    assert set(values(FILTER_COLUMNS, "if_in_octets", flt)) == kept


def test_storage_scaled_by_allocation_units_and_ram_is_memory() -> None:
    base = "1.3.6.1.2.1.25.2.3.1"
    columns: Columns = {
        f"{base}.2": {"1": Value("ObjectIdentifier", "1.3.6.1.2.1.25.2.1.2"), "31": Value("ObjectIdentifier", "1.3.6.1.2.1.25.2.1.4")},
        f"{base}.3": {"1": s("Physical memory"), "31": s("/")},
        f"{base}.4": {"1": i(1024), "31": i(4096)},
        f"{base}.5": {"1": i(1000), "31": i(500)},
        f"{base}.6": {"1": i(250), "31": i(100)},
    }  # fmt: skip
    got = {(m.name, m.labels): m.value for m in decode([HR], {}, columns).measurements}
    assert got[("host_storage_used_bytes", (("storage", "/"),))] == 409_600
    assert got[("host_storage_size_bytes", (("storage", "Physical memory"),))] == 1_024_000
    assert got[("host_memory_used_bytes", ())] == 256_000


def test_two_rows_with_the_same_labels_keep_the_first_and_say_so() -> None:
    """Two file systems mounted at "/" (a bind mount in a container): one series, the first row's,
    and a decode problem, never two samples of one series in a scrape."""
    base = "1.3.6.1.2.1.25.2.3.1"
    columns: Columns = {
        f"{base}.2": {r: Value("ObjectIdentifier", "1.3.6.1.2.1.25.2.1.4") for r in ("31", "32")},
        f"{base}.3": {"31": s("/"), "32": s("/")},
        f"{base}.4": {"31": i(4096), "32": i(4096)},
        f"{base}.5": {"31": i(500), "32": i(900)},
        f"{base}.6": {"31": i(100), "32": i(700)},
    }
    out = decode([HR], {}, columns)
    used = [m.value for m in out.measurements if m.name == "host_storage_used_bytes"]
    assert used == [409_600]
    assert out.problem_count == 2  # used and size of row 32
    assert all("duplicate series" in text for text in out.problems)


def test_cpu_load_is_a_ratio() -> None:
    out = decode([HR], {}, {"1.3.6.1.2.1.25.3.3.1.2": {"196608": i(37)}})
    assert [(m.name, m.labels, m.value) for m in out.measurements] == [
        ("host_cpu_load_ratio", (("cpu", "196608"),), 0.37)
    ]


def test_ups_scalars_enum_and_scale() -> None:
    scalars = {
        "1.3.6.1.2.1.33.1.4.1.0": i(5),
        "1.3.6.1.2.1.33.1.2.4.0": i(80),
        "1.3.6.1.2.1.33.1.2.3.0": i(12),
    }
    got = {m.name: m.value for m in decode([PROFILES["ups-mib"]], scalars, {}).measurements}
    assert got == {"ups_on_battery": 1, "ups_battery_charge_ratio": 0.8, "ups_battery_runtime_seconds": 720}


def test_ucd_load_from_text_when_no_integer_column() -> None:
    out = decode([PROFILES["ucd-snmp"]], {"1.3.6.1.4.1.2021.10.1.3.1": s("0.42")}, {})
    assert [(m.name, m.value) for m in out.measurements] == [("host_load1", 0.42)]


def test_san_fc_counters_and_brocade_only_without_fcmgmt() -> None:
    fc_rx, sw_rx = "1.3.6.1.3.94.4.5.1.7", "1.3.6.1.4.1.1588.2.1.1.1.6.2.1.12"
    index = "16.0.1.2.3.4.5.6.7.0.0.0.0.0.0.0.0.3"
    both: Columns = {
        "1.3.6.1.3.94.4.5.1.2": {index: i(3)},
        fc_rx: {index: Value("OctetString", (5000).to_bytes(8, "big"))},
        sw_rx: {"3": c32(100)},
    }
    out = decode([SAN], {}, both)
    assert [(m.name, m.labels, m.value) for m in out.measurements] == [
        ("san_port_rx_octets", (("port", "3"),), 5000)
    ]
    out = decode([SAN], {}, {sw_rx: {"3": c32(100)}})
    [m] = out.measurements
    assert (m.value, out.counter_bits[(m.name, m.labels)], out.counter_scale[(m.name, m.labels)]) == (
        400,
        32,
        4,
    )
    unsupported = {fc_rx: {index: Value("OctetString", bytes.fromhex("8000000000000000"))}}
    assert decode([SAN], {}, unsupported).measurements == ()


def test_discontinuity_time_is_reported_per_counter_series() -> None:
    out = decode(
        [IF],
        {},
        {
            IF_NAME: {"1": s("Gi0/0")},
            IN32: {"1": c32(5)},
            "1.3.6.1.2.1.31.1.1.1.19": {"1": Value("TimeTicks", 4200)},
        },
    )
    [m] = out.measurements
    assert out.discontinuity == {(m.name, m.labels): 4200}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (s("Gi0/1 "), "Gi0/1"),
        (Value("OctetString", b"\x00\x1b\x21\xff"), "00:1b:21:ff"),
        (i(7), "7"),
        (None, ""),
    ],
)
def test_label_text(value: Value | None, text: str) -> None:
    assert label_text(value) == text
