"""``/metrics`` with many series: netwatch's custom collector vs a plain prometheus_client registry.

Run from the repository root::

    .venv/bin/python benchmarks/exposition.py [--devices 200] [--interfaces 50] [--repeat 5]

netwatch's side is the real thing: an inventory of SNMP devices loaded by the inventory loader, two
polls of every device through the real pipeline (so totals and rates exist), then ``/metrics``
scraped over HTTP from netwatch's own aiohttp server. The floor is the same number of series in
plain ``Gauge``/``Counter`` objects of a stock ``CollectorRegistry``, scraped from prometheus_client's
own HTTP server. Both listen on 127.0.0.1. Each side is scraped plain and asking for gzip, as
Prometheus does (prometheus_client compresses its whole body at the end; netwatch each family as it
is written). Prints series, bytes, scrape wall time, peak memory of one render and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)

from collectors.base import CollectContext, CollectorParams, CollectorSpec, CollectResult, Measurement, Target
from netwatch.config import load_inventory
from netwatch.config.inventory import Inventory
from netwatch.exporter import make_registry
from netwatch.exposition import render, render_stepped
from netwatch.pipeline import Pipeline
from netwatch.state import LatestState
from netwatch.web import WebServer

COUNTERS = (
    "if_in_octets",
    "if_out_octets",
    "if_in_errors",
    "if_out_errors",
    "if_in_discards",
    "if_out_discards",
)


def inventory_file(directory: Path, devices: int) -> Path:
    """An inventory of ``devices`` SNMP devices (never polled: the collector is synthetic)."""
    doc: dict[str, Any] = {
        "province": {"code": "QNM", "name": "Quảng Nam"},
        "credentials": {"lab": {"version": "2c", "community": "bench-only"}},
        "site_kinds": {"district": {}},
        "sites": [{"code": f"S{i:04d}", "name": f"Site {i}", "kind": "district"} for i in range(devices)],
        "devices": [
            {
                "name": f"dev{i:04d}",
                "site": f"S{i:04d}",
                "address": f"127.9.{i // 250}.{i % 250 + 1}",
                "collectors": {"snmp": {"credential": "lab", "interval": 60, "profiles": ["if-mib"]}},
            }
            for i in range(devices)
        ],
    }
    path = directory / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def synthetic_snmp(interfaces: int) -> CollectorSpec[CollectorParams]:
    """A collector that answers like the if-mib profile, with counters that move between polls."""
    polls: dict[str, int] = {}

    async def collect(target: Target, params: CollectorParams, ctx: CollectContext) -> CollectResult:
        n = polls[target.key] = polls.get(target.key, 0) + 1
        out: list[Measurement] = []
        for i in range(1, interfaces + 1):
            labels = (("ifname", f"ge-0/0/{i}"), ("ifalias", f"link {i}"), ("ifindex", str(i)))
            out += [Measurement(name, float(n * 1_000_000 * i), labels, "counter") for name in COUNTERS]
            out.append(Measurement("if_oper_up", 1.0, labels))
            out.append(Measurement("if_speed_bps", 1e9, labels))
        return CollectResult(True, tuple(out), details={"sample_monotonic": time.monotonic()})

    return CollectorSpec("snmp", CollectorParams, collect)


async def populate(inventory: Inventory, interfaces: int) -> tuple[LatestState, Pipeline]:
    """Two polls of every job through the real pipeline; the pipeline, to poll again."""
    state = LatestState(inventory=inventory)
    pipeline = Pipeline({"snmp": synthetic_snmp(interfaces)}, CollectContext(), state)
    for _ in range(2):
        for job in inventory.jobs:
            await pipeline.run_once(job, datetime.now(UTC))
    return state, pipeline


def scrape(url: str, encoding: str = "identity") -> tuple[float, bytes]:
    """One scrape asking for ``encoding``: wall seconds and the body as sent."""
    started = time.perf_counter()
    request = urllib.request.Request(url, headers={"Accept-Encoding": encoding})
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
        sent = response.headers.get("Content-Encoding", "identity")
    if sent != encoding:
        raise SystemExit(f"asked for {encoding}, got {sent}")
    return time.perf_counter() - started, body


def series_count(body: bytes) -> int:
    """Sample lines in an exposition body."""
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def plain_registry(series: int) -> CollectorRegistry:
    """``series`` samples in stock metric objects, with labels like netwatch's interface series."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # netwatch exports no _created series: compare like with like
    registry = CollectorRegistry()
    gauge = Gauge(
        "bench_if_gauge",
        "g",
        ["site", "district", "device", "ifname", "ifalias", "ifindex", "m"],
        registry=registry,
    )
    counter = Counter(
        "bench_if_counter",
        "c",
        ["site", "district", "device", "ifname", "ifalias", "ifindex", "m"],
        registry=registry,
    )
    for i in range(series):
        labels = (
            f"S{i // 500:04d}",
            "QNM",
            f"dev{i // 500:04d}",
            f"ge-0/0/{i % 500}",
            f"link {i}",
            str(i),
            str(i % 10),
        )
        if i % 2:
            gauge.labels(*labels).set(i)
        else:
            counter.labels(*labels).inc(i)
    return registry


async def netwatch_scrapes(
    state: LatestState, pipeline: Pipeline, port: int, repeat: int, encoding: str, polled_share: float
) -> tuple[list[float], bytes]:
    """Scrape netwatch's own server ``repeat`` times (from a thread, as Prometheus would, off its
    loop), after polling ``polled_share`` of the devices again before each scrape, in turn: 1 is
    every device polled since the last scrape (every sample written afresh), 0.25 is Prometheus'
    15 s scrapes of devices polled every 60 s (the others copied from the text kept for them)."""
    server = WebServer(make_registry(state), lambda: {"ok": True}, "127.0.0.1", port)
    await server.start()
    jobs = list(state.inventory.jobs)
    per_scrape = round(len(jobs) * polled_share)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        await asyncio.to_thread(scrape, url, encoding)  # the scrape before: every device written once
        times: list[float] = []
        body = b""
        for n in range(repeat):
            for i in range(n * per_scrape, (n + 1) * per_scrape):
                await pipeline.run_once(jobs[i % len(jobs)], datetime.now(UTC))
            took, body = await asyncio.to_thread(scrape, url, encoding)
            times.append(took)
        return times, body
    finally:
        await server.stop()


def render_gzip(registry: Any) -> bytes:
    """netwatch's gzip body, rendered as a scrape that asks for gzip renders it."""
    return b"".join(asyncio.run(render_stepped(registry, slice_seconds=0, gzip=True)))


def plain_gzip(registry: CollectorRegistry) -> bytes:
    """prometheus_client's gzip body (its HTTP handler: the whole text, then ``gzip.compress``)."""
    return gzip.compress(generate_latest(registry))


def peak_mb(registry: CollectorRegistry, exposition: Callable[[CollectorRegistry], bytes]) -> float:
    """Peak Python memory one exposition of ``registry`` allocates (tracemalloc), in MB: a daemon
    scraped every 15 s keeps that peak in its RSS."""
    tracemalloc.start()
    try:
        exposition(registry)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    """Build both sides, scrape each ``--repeat`` times, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--interfaces", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=19561)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = load_inventory(inventory_file(Path(tmp), args.devices))
    state, pipeline = asyncio.run(populate(inventory, args.interfaces))
    rows = []
    sides = (("identity", render, generate_latest), ("gzip", render_gzip, plain_gzip))
    for offset, (encoding, nw_render, pl_render) in enumerate(sides):
        port = args.port + 3 * offset
        steady, _ = asyncio.run(netwatch_scrapes(state, pipeline, port + 2, args.repeat, encoding, 0.25))
        nw_times, nw_body = asyncio.run(netwatch_scrapes(state, pipeline, port, args.repeat, encoding, 1.0))
        text = gzip.decompress(nw_body) if encoding == "gzip" else nw_body
        nw_series = series_count(text)
        registry = plain_registry(nw_series)
        server, thread = start_http_server(port + 1, addr="127.0.0.1", registry=registry)
        try:
            plain = [scrape(f"http://127.0.0.1:{port + 1}/metrics", encoding) for _ in range(args.repeat)]
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        nw_peak = peak_mb(make_registry(state), nw_render)
        pl_peak = peak_mb(registry, pl_render)
        nw = statistics.median(nw_times)
        pl = statistics.median(t for t, _ in plain)
        kept = statistics.median(steady)
        rows.append((encoding, nw_series, len(nw_body), len(plain[-1][1]), nw, kept, pl, nw_peak, pl_peak))

    print(f"/metrics exposition, median of {args.repeat} scrapes over HTTP on 127.0.0.1")
    print(
        "netwatch: every device polled since the last scrape, and a quarter of them (15 s scrapes, 60 s polls)"
    )
    print(f"{'':36} {'encoding':>8} {'series':>9} {'MB':>7} {'scrape s':>9} {'peak MB':>8}")
    for encoding, series, nw_bytes, pl_bytes, nw, kept, pl, nw_peak, pl_peak in rows:
        for name, size, took, peak in (
            ("netwatch, all polled since", nw_bytes, nw, f"{nw_peak:>8.0f}"),
            ("netwatch, a quarter polled since", nw_bytes, kept, ""),
            ("prometheus_client registry", pl_bytes, pl, f"{pl_peak:>8.0f}"),
        ):
            print(f"{name:36} {encoding:>8} {series:>9,} {size / 1e6:>7.1f} {took:>9.3f} {peak:>8}")
        print(
            f"ratio netwatch/plain, {encoding}: {nw / pl:.2f}× time all polled, {kept / pl:.2f}× a quarter,"
            f" {nw_peak / pl_peak:.2f}× peak memory"
        )
    for encoding, series, _, _, nw, kept, pl, nw_peak, pl_peak in rows:
        tag = "" if encoding == "identity" else "_gzip"
        print(
            f"RESULT exposition{tag} series={series} netwatch_s={nw:.3f} netwatch_quarter_polled_s={kept:.3f}"
            f" plain_s={pl:.3f} ratio={nw / pl:.2f} ratio_quarter_polled={kept / pl:.2f}"
            f" netwatch_peak_mb={nw_peak:.0f} plain_peak_mb={pl_peak:.0f}"
        )


if __name__ == "__main__":
    main()
