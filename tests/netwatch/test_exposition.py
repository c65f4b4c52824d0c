"""netwatch's own text for the interface families is exactly what prometheus_client would write."""

from __future__ import annotations

import asyncio
import gc
import gzip
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from collectors.base import CollectContext, CollectorParams, CollectorSpec, CollectResult, Measurement, Target
from netwatch import exposition
from netwatch.config.inventory import Device, HealthRules, Inventory, Job, Link, Province, Site
from netwatch.exporter import NetwatchCollector, make_registry
from netwatch.exposition import (
    KeptBlocks,
    LabelTexts,
    SeriesTexts,
    TextFamily,
    go_float,
    label_text,
    render,
    render_stepped,
)
from netwatch.pipeline import Pipeline
from netwatch.state import JobState, LatestState
from netwatch.web import WebServer
from tests.support.processes import parsed, samples

label_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**63), 2**64).map(float), st.just(0.0)
)
rows = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(["ifname", "ifalias", "device", "site"]), label_values), values
    ),
    max_size=8,
)


class Registry:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


@given(rows=rows, kind=st.sampled_from(["gauge", "counter"]), doc=label_values)
def test_text_families_render_as_prometheus_client_renders_samples(
    rows: list[tuple[dict[str, str], float]], kind: str, doc: str
) -> None:
    suffix = "_total" if kind == "counter" else ""
    stock = Metric("netwatch_if_in_octets", doc, kind)
    ours = TextFamily("netwatch_if_in_octets", doc, kind)
    for labels, value in rows:
        stock.samples.append(Sample("netwatch_if_in_octets" + suffix, labels, value))
        ours.add(label_text(labels), value)
    before, after = Metric("netwatch_up", "Up.", "gauge"), Metric("netwatch_up2", "Up.", "gauge")
    before.samples.append(Sample("netwatch_up", {"device": 'r"1'}, 1.0))
    after.samples.append(Sample("netwatch_up2", {}, 0.0))
    assert render(Registry([before, ours, after])) == generate_latest(Registry([before, stock, after]))


def test_label_texts_are_kept_between_scrapes_and_forgotten_when_unused() -> None:
    texts = LabelTexts()
    device = {"device": "r1", "site": "TK"}
    eth0, eth1 = (("ifname", "eth0"),), (("ifname", "eth1"),)
    first = texts.device(("r1", "TK"), device)[eth0]
    assert first == '{device="r1",ifname="eth0",site="TK"}'
    assert texts.device(("r1", "TK"), device)[()] == '{device="r1",site="TK"}'
    texts.device(("r1", "TK"), device)[eth1]
    texts.end_scrape()
    # The next scrape reuses the text (the same object, not a new string) of eth0; eth1 is gone.
    assert texts.device(("r1", "TK"), device)[eth0] is first
    texts.end_scrape()
    texts.end_scrape()
    assert texts.device(("r1", "TK"), device)[eth0] is not first, "a label set unused for a scrape is rebuilt"
    moved = texts.device(("r1", "HA"), {"device": "r1", "site": "HA"})[eth0]
    assert moved == '{device="r1",ifname="eth0",site="HA"}', "a device whose labels changed gets new texts"


@given(value=values)
def test_values_are_written_as_prometheus_client_writes_them(value: float) -> None:
    assert go_float(value) == floatToGoString(value)


def _province(devices: int, contracted_bps: float = 2e6) -> Inventory:
    """``devices`` SNMP devices and as many ICMP targets, one site each, whose link is its device's
    ``ge-0/0/1`` at ``contracted_bps``."""
    sites, by_name = {}, {}
    for i in range(devices):
        code = f"S{i:03d}"
        link = Link(device=f"d{i}", interface="ge-0/0/1", contracted_bps=contracted_bps)
        sites[code] = Site(
            code=code,
            name=f"Site {i}",
            kind="district",
            district=code,
            parent=None,
            rules=HealthRules(),
            links=(link,),
        )
        labels = {"site": code, "district": code, "device": f"d{i}"}
        target = Target(key=f"d{i}", address=f"127.0.9.{i + 1}", labels=labels)
        jobs = (
            Job(target=target, kind="snmp", params=CollectorParams(interval=60)),
            Job(target=target, kind="icmp", params=CollectorParams(interval=10)),
        )
        by_name[f"d{i}"] = Device(name=f"d{i}", site=code, address=target.address, role="router", jobs=jobs)
    return Inventory(province=Province("QNM", "Quảng Nam"), sites=sites, devices=by_name)


async def _polled(devices: int, interfaces: int) -> LatestState:
    """Two polls of every job through the real pipeline, so totals and rates exist."""
    state, _ = await _polled_with_pipeline(devices, interfaces)
    return state


async def _polled_with_pipeline(devices: int, interfaces: int) -> tuple[LatestState, Pipeline]:
    """:func:`_polled`, and the pipeline that polled, to poll again."""

    async def snmp(target: Target, params: CollectorParams, ctx: CollectContext) -> CollectResult:
        polls[target.key] = polls.get(target.key, 0) + 1
        out: list[Measurement] = []
        for i in range(1, interfaces + 1):
            labels = (("ifindex", str(i)), ("ifname", f"ge-0/0/{i}"), ("ifalias", 'to "TK"\\'))
            out.append(Measurement("if_in_octets", float(polls[target.key] * 10**9 * i), labels, "counter"))
            out.append(Measurement("if_oper_up", 1.0, labels))
            out.append(Measurement("if_speed_bps", 1e9, labels))
            # A Brocade-like counter of 4-octet words, reported in octets (the decode scales it).
            out.append(Measurement("fc_words", float(polls[target.key] * 4000 * i), labels, "counter"))
        scales = {(m.name, m.labels): 4 for m in out if m.name == "fc_words"}
        details = {"sample_monotonic": float(polls[target.key] * 60), "counter_scale": scales}
        return CollectResult(True, tuple(out), details=details)

    async def icmp(target: Target, params: CollectorParams, ctx: CollectContext) -> CollectResult:
        return CollectResult(
            True,
            (
                Measurement("icmp_packets_sent", 5, kind="delta"),
                Measurement("icmp_packets_received", 4, kind="delta"),
                Measurement("icmp_rtt_avg_seconds", 0.0021),
                Measurement("icmp_loss_ratio", 0.2),
            ),
        )

    polls: dict[str, int] = {}
    inventory = _province(devices)
    state = LatestState(inventory=inventory)
    specs = {
        "snmp": CollectorSpec("snmp", CollectorParams, snmp),
        "icmp": CollectorSpec("icmp", CollectorParams, icmp),
    }
    pipeline = Pipeline(specs, CollectContext(), state)
    for _ in range(2):
        for job in inventory.jobs:
            await pipeline.run_once(job, datetime.now(UTC))
    return state, pipeline


async def test_a_scrape_on_the_event_loop_writes_the_same_body_and_lets_polls_run() -> None:
    state = await _polled(devices=200, interfaces=20)
    registry = make_registry(state)
    ticks = 0

    async def poller() -> None:  # stands for the polls the loop runs while a scrape renders
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.create_task(poller())
    await asyncio.sleep(0)
    before = ticks
    stepped = b"".join(await render_stepped(registry, slice_seconds=0))
    during = ticks - before
    ticker.cancel()
    assert stepped == render(registry), "the stepped render writes exactly the one-go body"
    assert during >= 200 // 10, "the loop ran other tasks between the devices of one scrape"
    samples = {
        (
            s.name,
            s.labels.get("device"),
            s.labels.get("ifname", s.labels.get("stat", s.labels.get("collector"))),
        ): s.value
        for family in text_string_to_metric_families(stepped.decode())
        for s in family.samples
    }
    assert samples[("netwatch_if_in_octets_total", "d7", "ge-0/0/3")] == 10**9 * 3, "what netwatch saw grow"
    assert samples[("netwatch_if_in_bps", "d7", "ge-0/0/3")] == 8 * 10**9 * 3 / 60
    assert samples[("netwatch_fc_words_total", "d7", "ge-0/0/3")] == 4000 * 3, "in octets, not words"
    assert ("netwatch_fc_words_bps", "d7", "ge-0/0/3") not in samples  # bits per second of octets only
    assert samples[("netwatch_icmp_rtt_seconds", "d7", "avg")] == 0.0021
    assert samples[("netwatch_icmp_packets_sent_total", "d7", None)] == 10
    assert samples[("netwatch_up", "d7", "icmp")] == 1.0
    assert (
        registry.get_sample_value(
            "netwatch_icmp_loss_ratio", {"site": "S007", "district": "S007", "device": "d7"}
        )
        == 0.2
    )


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


async def test_memory_for_label_texts_stays_flat_however_many_scrapes() -> None:
    """Each scrape keeps the previous one's texts to reuse, and nothing older: a chain of scrapes
    once kept every device's texts of every scrape since start (the province soak grew 26 MB/min)."""
    state = await _polled(devices=30, interfaces=5)
    registry = make_registry(state)
    body = b"".join(await render_stepped(registry, slice_seconds=0))
    for _ in range(2):
        assert b"".join(await render_stepped(registry, slice_seconds=0)) == body
    after_three = _live(SeriesTexts)
    for _ in range(12):
        assert b"".join(await render_stepped(registry, slice_seconds=0)) == body
    assert _live(SeriesTexts) == after_three <= 2 * len(state.inventory.devices)


def _in_octets(body: bytes, device: str, ifindex: str = "2") -> float:
    """The total ``netwatch_if_in_octets_total`` of one interface in an exposition body."""
    (value,) = samples(parsed(body.decode()), "netwatch_if_in_octets_total", device=device, ifindex=ifindex)
    return value


async def test_a_device_not_polled_since_the_last_scrape_is_copied_from_the_text_kept_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prometheus scrapes every 15 s and interfaces are polled every 60 s: a device's samples are
    written once per poll, and every scrape is still byte for byte what a collector keeping
    nothing writes, plain or gzipped."""
    state, pipeline = await _polled_with_pipeline(devices=20, interfaces=5)
    registry = make_registry(state)
    written: list[str] = []
    write = NetwatchCollector._snmp_job

    def counted(self: NetwatchCollector, js: JobState, *args: Any) -> None:
        written.append(js.job.target.key)
        write(self, js, *args)

    monkeypatch.setattr(NetwatchCollector, "_snmp_job", counted)
    first = render(registry)
    assert len(written) == 20
    written.clear()
    assert render(registry) == first
    gzipped = b"".join(await render_stepped(registry, slice_seconds=0, gzip=True))
    assert gzip.decompress(gzipped) == first
    assert written == [], "nothing was polled since: every device came from its kept text"

    snmp = {job.target.key: job for job in state.inventory.jobs if job.kind == "snmp"}
    await pipeline.run_once(snmp["d3"], datetime.now(UTC))
    after_poll = render(registry)
    assert written == ["d3"], "only the device polled since was written again"
    assert after_poll == render(make_registry(state)), "as a collector that kept nothing writes it"
    assert _in_octets(first, "d3") == 2 * 10**9 and _in_octets(after_poll, "d3") == 4 * 10**9
    assert _in_octets(after_poll, "d4") == _in_octets(first, "d4") == 2 * 10**9


async def test_after_a_reload_no_device_is_copied_from_text_kept_before_it() -> None:
    """A reload may change a link's contracted rate (or labels) without its device being polled
    again: no scrape may show the old figures from kept text."""
    state, _ = await _polled_with_pipeline(devices=5, interfaces=2)
    registry = make_registry(state)
    labels = {"site": "S001", "district": "S001", "device": "d1", "ifindex": "1", "ifname": "ge-0/0/1"}
    labels["ifalias"] = 'to "TK"\\'
    before = render(registry)
    assert registry.get_sample_value("netwatch_if_contracted_bps", labels) == 2e6
    state.replace_inventory(_province(5, contracted_bps=5e6))
    after = render(registry)
    assert registry.get_sample_value("netwatch_if_contracted_bps", labels) == 5e6
    assert after == render(make_registry(state))
    assert _in_octets(after, "d1") == _in_octets(before, "d1"), "the device's totals are kept"


class _Book:
    """A scrape's families, as the exporter keeps them."""

    def __init__(self) -> None:
        self.families: dict[str, TextFamily] = {}

    def family(self, name: str, kind: str) -> TextFamily:
        return self.families.setdefault(name, TextFamily(name, "", kind))

    def by_name(self) -> dict[str, TextFamily]:
        return self.families


def test_kept_blocks_are_copied_while_current_and_forgotten_once_a_scrape_does_not_use_them() -> None:
    book = _Book()
    blocks = KeptBlocks()
    for key in ("a", "b"):
        with blocks.writing(key, 1, book):
            book.family("netwatch_x", "gauge").add(f'{{device="{key}"}}', 1.0)
            book.family("netwatch_y", "counter").add(f'{{device="{key}"}}', 2.0)
    blocks.end_scrape()
    assert blocks.replay("a", 1, book)
    assert not blocks.replay("b", 2, book), "b was polled since (version 2): it must be written"
    blocks.end_scrape()
    assert not blocks.replay("b", 1, book), "the last scrape did not use b's block: forgotten"
    assert blocks.replay("a", 1, book)
    assert book.families["netwatch_x"].text.decode().splitlines() == [
        'netwatch_x{device="a"} 1.0',
        'netwatch_x{device="b"} 1.0',
        'netwatch_x{device="a"} 1.0',
        'netwatch_x{device="a"} 1.0',
    ]
    assert book.families["netwatch_y"].text.decode().count('netwatch_y_total{device="a"} 2.0') == 3


def _members(body: bytes) -> int:
    """How many gzip members ``body`` is, one after the other."""
    count = 0
    while body:
        stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
        stream.decompress(body)
        assert stream.eof, "a member cut short"
        body, count = stream.unused_data, count + 1
    return count


async def test_a_gzip_scrape_is_the_plain_body_compressed_family_by_family_as_it_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a scraper taking gzip reads is, decompressed, byte for byte the plain body; the text
    families compress their samples during the scrape instead of holding them all until its end."""
    state = await _polled(devices=200, interfaces=20)
    registry = make_registry(state)
    plain = render(registry)
    monkeypatch.setattr(exposition, "SQUEEZE_BYTES", 16 * 1024)
    held: list[int] = []
    squeeze = TextFamily.squeeze

    def watched(family: TextFamily) -> None:
        squeeze(family)
        held.append(len(family.text))

    monkeypatch.setattr(TextFamily, "squeeze", watched)
    body = b"".join(await render_stepped(registry, slice_seconds=0, gzip=True))
    assert gzip.decompress(body) == plain
    families = sum(1 for line in plain.splitlines() if line.startswith(b"# TYPE"))
    assert 1 < _members(body) <= families  # one per text family, one per run of the others
    assert len(body) < len(plain) / 5
    assert max(held) < 16 * 1024, "no family held more text than its squeeze threshold between steps"
    assert held.count(0) > 10, "families compressed what they held during the scrape"


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [("gzip", True), ("deflate, gzip;q=0.5", True), ("gzip;q=0", False), ("identity", False), (None, False)],
)
async def test_metrics_are_gzipped_for_a_scraper_that_takes_gzip(accept: str | None, gzipped: bool) -> None:
    state = await _polled(devices=20, interfaces=4)
    registry = make_registry(state)
    server = WebServer(registry, lambda: {"ok": True})
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    async with TestClient(TestServer(server.app()), auto_decompress=False) as client:
        # (aiohttp's client asks for gzip itself unless told not to)
        response = await client.get("/metrics", headers=headers, skip_auto_headers=["Accept-Encoding"])
        assert response.status == 200
        raw = await response.read()
    assert len(raw) == int(response.headers["Content-Length"])
    assert response.headers.get("Content-Encoding") == ("gzip" if gzipped else None)
    assert (gzip.decompress(raw) if gzipped else raw) == render(registry)
