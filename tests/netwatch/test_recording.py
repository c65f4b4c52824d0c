"""The poll recorder's rows: for SNMP polls that end early only what this poll read is a sample; an
ICMP round is one ``polls`` row with its figures."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collectors.base import CollectContext, CollectorParams, CollectorSpec, CollectResult, Measurement, Target
from collectors.icmp import RoundResult, round_result
from netwatch.config import load_inventory
from netwatch.pipeline import Pipeline
from netwatch.recording import PollRecorder
from netwatch.state import LatestState

INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
credentials:
  lab: {version: "2c", community: "recording-test"}
site_kinds:
  district: {}
sites:
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district}
devices:
  - name: tk-router
    site: TK
    address: 127.0.0.1
    collectors:
      snmp: {credential: lab, interval: 60, profiles: [if-mib]}
"""


class Rows:
    """The writer, as a list of (table, row)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []

    def put(self, table: str, row: Mapping[str, Any]) -> None:
        self.rows.append((table, dict(row)))

    def of(self, table: str) -> list[dict[str, Any]]:
        return [row for name, row in self.rows if name == table]


def _interface(ifindex: int, octets: float) -> list[Measurement]:
    labels = (("ifname", f"ge-0/0/{ifindex}"), ("ifalias", "Megawan"), ("ifindex", str(ifindex)))
    return [
        Measurement("if_in_octets", octets, labels, "counter"),
        Measurement("if_out_octets", octets / 2, labels, "counter"),
        Measurement("if_oper_up", 1.0, labels),
    ]


async def test_a_poll_cut_short_writes_only_the_interfaces_it_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)
    answers = [
        CollectResult(True, (*_interface(1, 1e6), *_interface(2, 2e6)), details={"sample_monotonic": 0.0}),
        # The next poll hit its deadline after the first interface: partial, failed.
        CollectResult(
            False, tuple(_interface(1, 1.6e6)), "walk cut", "deadline", details={"sample_monotonic": 60.0}
        ),
    ]

    async def collect(target: Target, params: CollectorParams, ctx: CollectContext) -> CollectResult:
        return answers.pop(0)

    rows = Rows()
    state = LatestState(inventory=inventory)
    recorder = PollRecorder(rows, "run-1", inventory)
    pipeline = Pipeline(
        {"snmp": CollectorSpec("snmp", CollectorParams, collect)}, CollectContext(), state, [recorder]
    )
    job = next(j for j in inventory.jobs if j.kind == "snmp")
    first = datetime(2026, 10, 1, tzinfo=UTC)
    with caplog.at_level(logging.ERROR):
        await pipeline.run_once(job, first)
        await pipeline.run_once(job, first + timedelta(seconds=60))
    assert not [r for r in caplog.records if "failed" in r.getMessage()], "a sink raised"
    second = [r for r in rows.of("interface_samples") if r["scheduled_at"] == first + timedelta(seconds=60)]
    assert [r["ifindex"] for r in second] == [1]
    assert second[0]["in_octets_total"] == pytest.approx(0.6e6)  # netwatch counts from its first sample
    assert second[0]["in_bps"] == pytest.approx(0.6e6 * 8 / 60)
    # Interface 2 was not read in that round: no sample, and no stray device metric either.
    assert not [
        r for r in rows.of("device_metric_samples") if r["scheduled_at"] == first + timedelta(seconds=60)
    ]


ICMP_INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
site_kinds:
  district: {}
sites:
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district}
devices:
  - name: tk-router
    site: TK
    address: 127.0.0.1
    collectors:
      icmp: {interval: 10, probes: 3}
"""


async def test_an_icmp_round_is_one_poll_row_with_its_figures(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(ICMP_INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)
    rounds = [
        RoundResult("127.0.0.1", 3, 2, (0.010, 0.030)),
        RoundResult("127.0.0.1", 3, 0, reason="timeout"),
        RoundResult("127.0.0.1", 0, 0, stepped=True),  # the clock stepped: measured nothing
    ]

    async def collect(target: Target, params: CollectorParams, ctx: CollectContext) -> CollectResult:
        return round_result(rounds.pop(0))

    rows = Rows()
    recorder = PollRecorder(rows, "run-1", inventory)
    pipeline = Pipeline(
        {"icmp": CollectorSpec("icmp", CollectorParams, collect)},
        CollectContext(),
        LatestState(inventory=inventory),
        [recorder],
    )
    job = next(j for j in inventory.jobs if j.kind == "icmp")
    first = datetime(2026, 10, 1, tzinfo=UTC)
    for n in range(3):
        await pipeline.run_once(job, first + timedelta(seconds=10 * n))

    polls = rows.of("polls")
    assert [name for name, _ in rows.rows if name != "target_states"] == ["polls"] * 3, "one row a round"
    figures = [
        (p["success"], p["reason"], p.get("sent"), p.get("received"), p.get("rtt_min_seconds"),
         p.get("rtt_avg_seconds"), p.get("rtt_max_seconds"), p.get("jitter_seconds"))
        for p in polls
    ]  # fmt: skip
    assert figures[0] == pytest.approx((True, None, 3, 2, 0.010, 0.020, 0.030, 0.020))
    assert figures[1] == (False, "timeout", 3, 0, None, None, None, None)
    assert figures[2] == (False, "clock_step", None, None, None, None, None, None)
