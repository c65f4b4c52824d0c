"""The decoder's label memo: labels come from static columns, so a memo kept beside them gives the
same measurements as decoding afresh, and a new memo picks up renamed interfaces."""

from __future__ import annotations

from collectors.snmp.client import Value
from collectors.snmp.decode import LabelMemo, decode
from collectors.snmp.profiles import load_profiles

IF = load_profiles()["if-mib"]
IF_NAME, IF_ALIAS, HCIN = "1.3.6.1.2.1.31.1.1.1.1", "1.3.6.1.2.1.31.1.1.1.18", "1.3.6.1.2.1.31.1.1.1.6"


def _columns(name: str, octets: int) -> dict[str, dict[str, Value]]:
    return {
        IF_NAME: {"3": Value("OctetString", name.encode()), "10": Value("OctetString", b"ge-0/0/10")},
        IF_ALIAS: {"3": Value("OctetString", b"Megawan Tam Ky"), "10": Value("OctetString", b"")},
        HCIN: {"3": Value("Counter64", octets), "10": Value("Counter64", octets * 2)},
    }


def test_a_kept_memo_decodes_like_a_fresh_decode_and_a_new_one_sees_renames() -> None:
    memo: LabelMemo = {}
    first = decode([IF], {}, _columns("ge-0/0/3", 100), label_memo=memo)
    second = decode([IF], {}, _columns("ge-0/0/3", 250), label_memo=memo)
    assert second == decode([IF], {}, _columns("ge-0/0/3", 250))
    assert [m.value for m in second.measurements] == [250, 500]
    # Rows keep their labels objects from poll to poll (one labels tuple per row, not per value).
    assert first.measurements[0].labels is second.measurements[0].labels
    assert second.measurements[0].labels == (
        ("ifname", "ge-0/0/3"),
        ("ifalias", "Megawan Tam Ky"),
        ("ifindex", "3"),
    )
    # After a static refresh the collector starts a new memo: the renamed interface shows.
    renamed = decode([IF], {}, _columns("wan-vnpt", 300), label_memo={})
    assert dict(renamed.measurements[0].labels)["ifname"] == "wan-vnpt"
    assert renamed.counter_bits[("if_in_octets", renamed.measurements[0].labels)] == 64
