"""Three ``netwatch run --shard k/3`` on one loopback inventory against one real PostgreSQL.

Every target is polled by exactly one shard; rollups and retention run once per period across the
three; a district on shard k≠0 behind the province hub (polled by shard 0) goes UNREACHABLE, not
DOWN, when the hub fails; a stopped shard's sites, and a killed one's from its last heartbeat, are
UNKNOWN in the report, and ``status`` says which shard stopped and which died.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from netwatch.config import load_inventory
from netwatch.sharding import owned_devices, owned_sites
from tests.support.processes import REPO, free_port, netwatch_process, stop

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP and nft need root (CI runs as root)"),
]

T = TypeVar("T")
DISTRICTS = 6
HISTORY_SECONDS = 3


def _inventory() -> str:
    lines = [
        'province: {code: LO, name: "Tỉnh thử nghiệm"}',
        "defaults:",
        "  down_after: 2",
        "  collectors:",
        "    icmp: {interval: 1, probes: 2, probe_spacing: 0.05, timeout: 0.3}",
        "site_kinds: {province: {}, district: {}, commune: {}}",
        "sites:",
        "  - {code: HQ, name: Trụ sở tỉnh, kind: province, links: [{device: hub}]}",
    ]
    devices = ["devices:", "  - {name: hub, site: HQ, address: 127.0.60.1, role: router}"]
    for d in range(1, DISTRICTS + 1):
        lines.append(
            f"  - {{code: D{d}, name: Huyện {d}, kind: district, parent: HQ, links: [{{device: d{d}}}]}}"
        )
        devices.append(
            f"  - {{name: d{d}, site: D{d}, address: 127.0.60.{10 + d}, role: router, upstream: hub}}"
        )
        for c in (1, 2):
            code = f"D{d}-C{c}"
            lines.append(
                f"  - {{code: {code}, name: Xã {d}.{c}, kind: commune, parent: D{d}, links: [{{device: {code.lower()}}}]}}"
            )
            devices.append(
                f"  - {{name: {code.lower()}, site: {code}, address: 127.0.61.{10 * d + c}, role: router, upstream: d{d}}}"
            )
    return "\n".join(lines + devices) + "\n"


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def netwatch(*args: str, db: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "netwatch", *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def dropped() -> Iterator[Callable[[list[str]], None]]:
    """Drop ICMP echo requests to some loopback addresses (nft table removed afterwards)."""
    table = f"netwatch_shard_test_{os.getpid()}"
    made = False

    def drop(addresses: list[str]) -> None:
        nonlocal made
        script = (
            f"add table ip {table}\n"
            f"add chain ip {table} out {{ type filter hook output priority 0; policy accept; }}\n"
            f"add rule ip {table} out ip daddr {{ {', '.join(addresses)} }} icmp type echo-request drop\n"
        )
        subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)
        made = True

    yield drop
    if made:
        subprocess.run(["nft", "delete", "table", "ip", table], check=False)


def unknown_seconds(db: str) -> dict[str, float]:
    """Each site's unknown seconds this month to date, from ``netwatch report availability`` as CSV."""
    month = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
    report = netwatch("report", "availability", "--month", month, "--format", "csv", "--lang", "en", db=db)
    table = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))
    head = table[0]
    site, link = head.index("Site"), head.index("Link")
    unknown = next(i for i, h in enumerate(head) if h.startswith("Unknown"))
    return {r[site]: float(r[unknown]) for r in table[1:] if not r[link]}


def start_together(
    stack: ExitStack, managers: dict[int, AbstractContextManager[subprocess.Popen[str]]]
) -> dict[int, subprocess.Popen[str]]:
    """Enter every process context at once (each waits for its own /healthz); all are exited with
    ``stack``, even when one of them fails to start."""
    with ThreadPoolExecutor(len(managers)) as pool:
        futures = {k: pool.submit(m.__enter__) for k, m in managers.items()}
    for k, future in futures.items():
        if future.exception() is None:
            stack.push(managers[k])
    return {k: future.result() for k, future in futures.items()}


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def test_three_shards_split_the_work_run_singletons_once_and_leave_gaps_when_one_stops(
    tmp_path: Path,
    postgres_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    dropped: Callable[[list[str]], None],
) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(_inventory(), encoding="utf-8")
    inventory = load_inventory(config)
    sites = {k: owned_sites(inventory, (k, 3)) for k in range(3)}
    devices = {k: owned_devices(inventory, (k, 3)) for k in range(3)}
    # Pick a district on a shard other than the hub's, and a shard to stop that is not shard 0.
    victim = next(k for k in (1, 2) if any(s.startswith("D") for s in sites[k]))
    district = min(s for s in sites[victim] if "-" not in s and s != "HQ")
    netwatch("db", "upgrade", db=postgres_db_url)
    monkeypatch.setenv("NETWATCH_HISTORY_SECONDS", str(HISTORY_SECONDS))
    monkeypatch.setenv("NETWATCH_HEARTBEAT_SECONDS", "1")
    engine = create_engine(postgres_db_url, poolclass=NullPool)
    with ExitStack() as stack:
        ports = {k: free_port() for k in range(3)}
        procs = start_together(
            stack,
            {
                k: netwatch_process(
                    "run",
                    "-c",
                    str(config),
                    "--db",
                    postgres_db_url,
                    "--listen",
                    f"127.0.0.1:{ports[k]}",
                    "--shard",
                    f"{k}/3",
                    "--instance",
                    f"shard-{k}",
                    port=ports[k],
                    cwd=tmp_path,
                    ready_timeout=60,
                )
                for k in range(3)
            },
        )
        wait_for(
            lambda: rows(engine, "SELECT count(DISTINCT target) FROM polls")[0][0] == len(inventory.devices),
            30,
            "every device polled",
        )
        # The hub (shard 0) fails, then a district of another shard with its communes. Not at the
        # same instant: the other shard reads the hub's state from the database a tick or two late,
        # which with 1-second rounds could outlast the district's hold (minutes of margin at 60 s).
        dropped([inventory.devices["hub"].address])
        wait_for(
            lambda: rows(engine, "SELECT 1 FROM target_states WHERE target = 'hub' AND failed_rounds > 0"),
            30,
            "the hub failing",
        )
        failing = [district.lower(), f"{district.lower()}-c1", f"{district.lower()}-c2"]
        dropped([inventory.devices[name].address for name in failing])

        def site_states() -> dict[str, tuple[str, str | None]]:
            found = {
                r.site: (r.state, r.cause) for r in rows(engine, "SELECT site, state, cause FROM site_states")
            }
            ready = found.get("HQ") == ("down", None) and found.get(district, ("",))[0] == "unreachable"
            return found if ready else {}

        states = wait_for(site_states, 30, "hub down and its district unreachable")
        assert states[district] == ("unreachable", "HQ")
        assert states[f"{district}-C1"][0] == "unreachable"
        downs = rows(engine, "SELECT site FROM outages WHERE state = 'down'")
        assert {r.site for r in downs} == {"HQ"}, "only the hub itself counts an outage"

        # Every target polled, each by exactly one shard's run, and the one that owns it.
        runs = {r.run_id: r.shard for r in rows(engine, "SELECT run_id, shard FROM instance_runs")}
        polled = rows(engine, "SELECT target, array_agg(DISTINCT run_id) AS runs FROM polls GROUP BY target")
        assert {r.target for r in polled} == set(inventory.devices)
        for r in polled:
            assert len(r.runs) == 1, f"{r.target} polled by {len(r.runs)} runs"
            k = int(runs[r.runs[0]].split("/")[0])
            assert r.target in devices[k]

        # Rollups and retention: one run per period across the three, each period in turn.
        wait_for(
            lambda: (
                rows(engine, "SELECT count(*) FROM singleton_runs WHERE finished_at IS NOT NULL")[0][0] >= 3
            ),
            4 * HISTORY_SECONDS + 5,
            "three history periods",
        )
        history = rows(engine, "SELECT period_start, run_id FROM singleton_runs WHERE name = 'history'")
        periods = sorted(r.period_start for r in history)
        assert len(periods) == len(set(periods))
        gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(periods)}
        assert gaps == {float(HISTORY_SECONDS)}, f"a period was skipped or repeated: {gaps}"
        assert {r.run_id for r in history} <= set(runs)

        # Stop one shard and kill shard 0: their sites become unknown (the killed one's from its last
        # heartbeat), the third shard's do not.
        before = unknown_seconds(postgres_db_url)
        procs[0].send_signal(signal.SIGKILL)
        code, _, err = stop(procs[victim])
        assert code == 0, err
        assert procs[0].wait(timeout=20) == -signal.SIGKILL
        silent = sites[0] | sites[victim]
        stopped = time.monotonic()

        asked = [stopped]

        def grown() -> dict[str, float]:
            # The report counts up to its own start: the CLI's exit and this test's wake-up after it
            # are not silence the report could have seen.
            asked[0] = time.monotonic()
            after = unknown_seconds(postgres_db_url)
            growth = {site: after[site] - before[site] for site in inventory.sites}
            return growth if all(growth[s] >= 2 for s in silent) else {}

        grew = wait_for(grown, 30, "the silent shards' sites unknown")
        since_stop = asked[0] - stopped
        for site in inventory.sites:
            if site in silent:
                assert grew[site] >= since_stop - 1, (
                    f"{site}: {grew[site]:.1f} s more unknown, silent for {since_stop:.1f} s"
                )
            else:
                assert grew[site] < 3, f"{site} of a running shard: {grew[site]:.1f} s more unknown"

        def status_seeing_the_death() -> str:
            out = netwatch("status", db=postgres_db_url)
            return out if "shard 0/3 dead" in out else ""

        status = wait_for(status_seeing_the_death, 30, "status saying shard 0 is dead")
        assert f"shard {victim}/3 stopped" in status
        assert district in status
    engine.dispose()
