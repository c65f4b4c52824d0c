"""Load on the side never delays polling: a webhook receiver that takes 20 s per request while a
site flaps (notifications pile up behind it), and eight HTTP clients fetching /metrics and the
status page for 20 s, all at once, against the real daemon.

The deadline is in rounds, not in seconds of speed: every target's round still happens on its 1 s
grid (no scheduled time missing from the ``polls`` table during the load), and netwatch's own lag
histogram and ``netwatch_polls_late_total`` show no poll starting more than a tenth of its
interval late. Traffic goes only to 127.0.0.0/8; the nftables table that makes the site flap is
removed at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.netwatch.test_faults_process import DaemonProcess, daemon, echo_blocked, wait_for
from tests.support.processes import samples
from tests.support.receivers import WebhookReceiver

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP and nftables need root (CI runs as root)")

INVENTORY = """\
province: {{code: QNM, name: "Quảng Nam"}}
defaults:
  down_after: 1
  up_after: 1
  collectors:
    icmp: {{interval: 1, probes: 3, probe_spacing: 0.05, timeout: 0.3}}
site_kinds:
  district: {{}}
sites:
  - {{code: HA, name: "Hội An", kind: district, links: [{{device: ha-router}}]}}
  - {{code: NS, name: "Nam Giang", kind: district, links: [{{device: ns-router}}]}}
  - {{code: TK, name: "Tam Kỳ", kind: district, links: [{{device: tk-router}}]}}
devices:
  - {{name: ha-router, site: HA, address: 127.0.87.1, role: router}}
  - {{name: ns-router, site: NS, address: 127.0.87.2, role: router}}
  - {{name: tk-router, site: TK, address: 127.0.87.3, role: router}}
alerting:
  language: en
  notify_flapping: false
  retry: {{attempts: 2, initial_backoff: 1, max_backoff: 1}}
  channels:
    noc-hook: {{type: webhook, url: "{url}", timeout: 30}}
"""
TARGETS = ("ha-router", "ns-router", "tk-router")
FLAPPING = "127.0.87.2"
INTERVAL = 1.0
LOAD_SECONDS = 20.0
CLIENTS = 8
MAX_REQUESTS_PER_CLIENT = 2_000
RECEIVER_SECONDS = 20.0
FLAP_HALF_PERIOD = 2.0


class SlowReceiver(WebhookReceiver):
    """A webhook receiver that notes each POST on arrival, then takes ``RECEIVER_SECONDS`` to answer."""

    async def _handle(self, request: web.Request) -> web.Response:
        response = await super()._handle(request)
        await asyncio.sleep(RECEIVER_SECONDS)
        return response


async def _fetch_loop(
    session: aiohttp.ClientSession, base: str, until: float, statuses: Counter[int]
) -> None:
    for n in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= until:
            return
        async with session.get(base + ("/metrics" if n % 2 == 0 else "/")) as response:
            await response.read()
            statuses[response.status] += 1


async def _http_load(port: int, seconds: float) -> Counter[int]:
    """``CLIENTS`` concurrent clients fetching /metrics and / for ``seconds`` (bounded in count too)."""
    statuses: Counter[int] = Counter()
    until = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        base = f"http://127.0.0.1:{port}"
        await asyncio.gather(*(_fetch_loop(session, base, until, statuses) for _ in range(CLIENTS)))
    return statuses


def _flap(seconds: float) -> int:
    """Block and unblock the flapping site's echo requests in turn for ``seconds``; how many blocks."""
    blocks = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        with echo_blocked(FLAPPING):
            blocks += 1
            time.sleep(FLAP_HALF_PERIOD)
        time.sleep(FLAP_HALF_PERIOD)
    return blocks


def _lag_counts(run: DaemonProcess) -> tuple[float, float, float]:
    """(polls late, polls with lag ≤ a tenth of the interval, polls observed) from /metrics."""
    metrics = run.metrics()
    (late,) = samples(metrics, "netwatch_polls_late_total")
    (on_time,) = samples(metrics, "netwatch_poll_lag_seconds_bucket", le=str(INTERVAL / 10))
    (count,) = samples(metrics, "netwatch_poll_lag_seconds_count")
    return late, on_time, count


def _polls(db: Path, since: datetime, until: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
    """Each ICMP target's (scheduled_at, started_at) between ``since`` and ``until``, in order."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select target, scheduled_at, started_at from polls where kind = 'icmp' order by scheduled_at"
        ).fetchall()
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for target, scheduled, started in rows:
        at = datetime.fromisoformat(scheduled).replace(tzinfo=UTC)
        if since <= at <= until:
            out.setdefault(target, []).append((at, datetime.fromisoformat(started).replace(tzinfo=UTC)))
    return out


def test_slow_webhook_and_http_load_do_not_delay_rounds(tmp_path: Path) -> None:
    receiver = SlowReceiver()
    receiver.start()
    try:
        config = tmp_path / "inventory.yaml"
        config.write_text(INVENTORY.format(url=receiver.url), encoding="utf-8")
        db = tmp_path / "nw.db"
        with daemon(config, db, tmp_path) as run:
            wait_for(lambda: all(samples(run.metrics(), "netwatch_up", device=d) == [1.0] for d in TARGETS))
            before = _lag_counts(run)
            started = datetime.now(UTC)
            with ThreadPoolExecutor(1) as pool:
                load = pool.submit(asyncio.run, _http_load(run.port, LOAD_SECONDS))
                blocks = _flap(LOAD_SECONDS)
                statuses = load.result(timeout=LOAD_SECONDS + 30)
            ended = datetime.now(UTC)
            after = _lag_counts(run)
            posts = receiver.posts
            log = run.output()
            assert run.signal(signal.SIGTERM) == 0, log
    finally:
        receiver.stop()

    # the load was real: many pages served, every one of them whole
    assert set(statuses) == {200} and statuses[200] >= 10 * CLIENTS, statuses
    # notifications piled up: the site went DOWN once per block, the receiver answered one in 20 s
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select started_at from outages where site = 'NS' and state = 'down'").fetchall()
    outages = sum(datetime.fromisoformat(r[0]).replace(tzinfo=UTC) >= started for r in rows)
    assert outages >= blocks - 1 >= 3, (outages, blocks)
    assert 1 <= len(posts) < outages, (len(posts), outages)

    # every target's round still ran on its 1 s grid through the load: none missing, none late
    window = _polls(db, started + timedelta(seconds=INTERVAL), ended - timedelta(seconds=INTERVAL))
    assert set(window) == set(TARGETS), window.keys()
    worst = 0.0
    for target, polls in window.items():
        steps = {round((b[0] - a[0]).total_seconds(), 6) for a, b in itertools.pairwise(polls)}
        assert steps == {INTERVAL}, (target, steps)
        assert len(polls) >= (ended - started).total_seconds() / INTERVAL - 4, (target, len(polls))
        worst = max(worst, *((s - at).total_seconds() for at, s in polls))
    late, on_time, count = (a - b for a, b in zip(after, before, strict=True))
    assert count >= len(TARGETS) * (LOAD_SECONDS - 2), count
    assert late == 0 and on_time == count, (late, on_time, count, worst)
    assert worst <= INTERVAL / 10, worst
