"""Process faults with the real daemon as a subprocess: kill -9 mid-outage and restart, SIGTERM.

One run answers several questions an operator asks after a crash: are samples duplicated, is an
outage that was open at the kill still one outage, is the dead time reported as unknown (not as up
or down), and does a clean stop lose nothing. A site is made to fail with an nftables rule that
drops echo requests to its loopback address (127.0.0.0/8 only; the table is removed at the end).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from tests.support.processes import REPO, free_port, http_get, samples, scrape

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP and nftables need root (CI runs as root)")

T = TypeVar("T")

INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
defaults:
  down_after: 3
  collectors:
    icmp: {interval: 1, probes: 3, probe_spacing: 0.05, timeout: 0.3}
site_kinds:
  district: {}
sites:
  - {code: HA, name: "Hội An", kind: district, links: [{device: ha-router}]}
  - {code: NS, name: "Nam Giang", kind: district, links: [{device: ns-router}]}
devices:
  - {name: ha-router, site: HA, address: 127.0.88.1, role: router}
  - {name: ns-router, site: NS, address: 127.0.88.2, role: router}
"""
FAILING = "127.0.88.2"


def wait_for(predicate: Callable[[], T | None], timeout: float = 20.0, step: float = 0.2) -> T:
    """Poll ``predicate`` until it returns something truthy (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError, AssertionError):
            value = predicate()
            if value:
                return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


class DaemonProcess:
    """``netwatch run`` as a subprocess, its output in files (a pipe nobody reads would fill and block it)."""

    def __init__(self, config: Path, db: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = workdir / f"netwatch-{self.port}.log"
        self._out = self.log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netwatch", "run", "-c", str(config), "--db", f"sqlite:///{db}",
             "--listen", f"127.0.0.1:{self.port}"],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until /healthz says ok (fails at once if the process died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"netwatch exited {self.proc.returncode}:\n{self.output()}")
            with suppress(OSError):
                status, body = http_get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                if status == 200 and json.loads(body).get("ok"):
                    return
            time.sleep(0.1)
        raise AssertionError(f"netwatch did not become healthy:\n{self.output()}")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """/metrics, parsed."""
        return scrape(self.port)

    def output(self) -> str:
        """Everything the daemon logged so far."""
        self._out.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: int, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Stop it if still running (SIGTERM, then SIGKILL) and close the log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@contextmanager
def daemon(
    config: Path, db: Path, workdir: Path, env: dict[str, str] | None = None
) -> Iterator[DaemonProcess]:
    """A healthy daemon for the length of the block."""
    run = DaemonProcess(config, db, workdir, env)
    try:
        run.wait_healthy()
        yield run
    finally:
        run.close()


@contextmanager
def echo_blocked(address: str) -> Iterator[Callable[[], None]]:
    """Drop echo requests to ``address`` (a loopback address) until the returned function is called."""
    table = f"netwatch_faults_{os.getpid()}"
    rules = (
        f"table ip {table} {{\n  chain output {{\n    type filter hook output priority 0; policy accept;\n"
        f"    ip daddr {address} icmp type echo-request drop\n  }}\n}}\n"
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, capture_output=True, timeout=10)
    removed = False

    def unblock() -> None:
        nonlocal removed
        if not removed:
            subprocess.run(
                ["nft", "delete", "table", "ip", table], check=True, capture_output=True, timeout=10
            )
            removed = True

    try:
        yield unblock
    finally:
        unblock()


def site_state(run: DaemonProcess, site: str) -> str | None:
    """The state /metrics gives ``site`` now."""
    metrics = run.metrics()
    for state in ("up", "degraded", "down", "unreachable", "maintenance", "unknown"):
        if samples(metrics, "netwatch_site_state", site=site, state=state) == [1.0]:
            return state
    return None


def rounds(run: DaemonProcess, device: str) -> float:
    """ICMP probes sent to ``device`` so far ÷ probes per round."""
    sent = samples(run.metrics(), "netwatch_icmp_packets_sent_total", device=device)
    return sent[0] / 3 if sent else 0.0


def availability_csv(db: Path, month: str, site: str, workdir: Path) -> dict[str, str]:
    """One site's row of ``netwatch report availability --format csv --lang en``."""
    done = subprocess.run(
        [sys.executable, "-m", "netwatch", "report", "availability", "--month", month, "--format", "csv",
         "--lang", "en", "--site", site, "--db", f"sqlite:///{db}"],
        cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(done.stdout.lstrip("\ufeff"))))
    return next(r for r in rows if site in r.values())


def column(row: dict[str, str], word: str) -> float:
    """The number of seconds in the one column whose header starts with ``word``."""
    names = [k for k in row if k.lower().startswith(word) and k.endswith("(s)")]
    assert len(names) == 1, (word, list(row))
    return float(row[names[0]])


def test_kill_9_mid_outage_restart_and_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    db = tmp_path / "netwatch.db"
    with echo_blocked(FAILING) as unblock:
        first = DaemonProcess(config, db, tmp_path)
        try:
            first.wait_healthy()
            wait_for(lambda: site_state(first, "NS") == "down" and rounds(first, "ha-router") >= 4)
            assert site_state(first, "HA") == "up"
            time.sleep(1.5)  # a few more rounds written, and the outage's ledger row with them
            first.proc.kill()  # SIGKILL: no flush, no stopped_at
            first.proc.wait(timeout=10)
            killed_at = datetime.now(UTC)
        finally:
            first.close()
        time.sleep(6)  # dead time
        with daemon(config, db, tmp_path) as second:
            # resumed from the database: still down at the first scrape, not UNKNOWN then DOWN again
            assert site_state(second, "NS") == "down"
            wait_for(lambda: rounds(second, "ns-router") >= 3)
            assert site_state(second, "NS") == "down"
            unblock()
            wait_for(lambda: site_state(second, "NS") == "up")
            wait_for(lambda: rounds(second, "ha-router") >= 8)
            code = second.signal(signal.SIGTERM)
            log = second.output()
    assert code == 0, log
    polls_run = int(re.search(r"stopped after (\d+) polls", log).group(1))  # type: ignore[union-attr]

    with sqlite3.connect(db) as conn:
        runs = conn.execute(
            "select run_id, started_at, stopped_at from instance_runs order by started_at"
        ).fetchall()
        assert len(runs) == 2 and runs[0][2] is None and runs[1][2] is not None
        # SIGTERM flushed every poll the second run made, with its samples
        second_polls = conn.execute("select count(*) from polls where run_id = ?", (runs[1][0],)).fetchone()[
            0
        ]
        assert second_polls == polls_run
        duplicates = conn.execute(
            "select count(*) from (select target, scheduled_at from icmp_samples group by 1, 2 having count(*) > 1)"
        ).fetchone()[0]
        duplicate_polls = conn.execute(
            "select count(*) from (select target, kind, scheduled_at from polls group by 1, 2, 3 having count(*) > 1)"
        ).fetchone()[0]
        orphans = conn.execute(
            "select count(*) from polls p where kind = 'icmp' and not exists (select 1 from icmp_samples s"
            " where s.target = p.target and s.scheduled_at = p.scheduled_at)"
        ).fetchone()[0]
        outages = conn.execute(
            "select state, started_at, ended_at from outages where site = 'NS' order by started_at"
        ).fetchall()
        ha_outages = conn.execute("select count(*) from outages where site = 'HA'").fetchone()[0]
    assert duplicates == 0 and duplicate_polls == 0
    assert orphans == 0  # every poll row has its sample: no half-written round
    # one DOWN interval, opened by the first run, closed by the second after the rule was removed
    assert [row[0] for row in outages] == ["down"], outages
    started, ended = (datetime.fromisoformat(v).replace(tzinfo=UTC) for v in outages[0][1:])
    assert started < killed_at < ended
    assert ha_outages == 0

    first_start, second_start, second_stop = (
        datetime.fromisoformat(v).replace(tzinfo=UTC) for v in (runs[0][1], runs[1][1], runs[1][2])
    )
    local = ZoneInfo("Asia/Ho_Chi_Minh")
    month = datetime.now(local).strftime("%Y-%m")
    month_start = datetime.now(local).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    before = datetime.now(UTC)
    row = availability_csv(db, month, "NS", tmp_path)
    after = datetime.now(UTC)
    unknown = column(row, "unknown")
    # unknown = before the first run + the dead time + after the clean stop (until the report's "now")
    known_parts = (first_start - month_start).total_seconds()
    dead = (second_start - killed_at).total_seconds()
    low = known_parts + dead + (before - second_stop).total_seconds()
    high = known_parts + dead + (after - second_stop).total_seconds()
    # the last heartbeat before the kill is at most one round (1 s) old, plus the writer's 1 s flush
    slack = 2.0
    assert low - slack <= unknown <= high + slack, (unknown, low, high, row)
    assert column(row, "down") > 3  # the outage's time outside the dead time is DOWN, not lost
    assert row["Outages"] == "1"
