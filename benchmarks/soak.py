"""Province-scale soak: thousands of SNMP devices and ICMP targets polled for minutes by ``netwatch run``.

Run as root from the repository root (a network namespace, raw ICMP); not part of CI::

    .venv/bin/python benchmarks/soak.py [--devices 6000] [--icmp-only 4000] [--minutes 15]

The agents: one Debian ``snmpd`` inside a network namespace whose veth carries macvlan links (so
its ifTable has ``--interfaces`` rows), listening on the wildcard address, with the whole of
198.18.0.0/19 routed to the namespace and made local there (AnyIP): every address is a "device"
answering SNMP and ICMP, and 6,000 devices × 17 interfaces is about 100,000 interfaces. The safety
route ``unreachable 198.18.0.0/15 metric 4000`` exists for the run. ICMP-only targets are loopback
addresses in 127.20.0.0/16. netwatch polls every SNMP device every 60 s (system + if-mib) and every
address with ICMP in 10-second rounds of 5 probes, writing to SQLite (or ``--db``).

Every 10 s it samples netwatch's CPU and RSS from /proc; at the end it scrapes /metrics and reads the
database. It reports: CPU share of one core after warm-up, RSS over time (growth after warm-up),
poll lag percentiles (from netwatch's own histogram), share of polls on time, samples written vs the
polls made, rows dropped. Aims (issue 7): under one core, under 500 MB RSS, ≥ 99.9 % on time.
Everything it creates is removed at exit; the run is bounded by ``--minutes``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import snmp_walk  # noqa: E402  (its namespace and macvlan helpers)

ANYIP = "198.18.0.0/19"
NS_ADDR = "198.18.240.2"
COMMUNITY = "soak-c0mmunity"
SNMP_INTERVAL = 60
ICMP_INTERVAL = 10
AGENT_BUFFER = 4 * 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def device_address(i: int) -> str:
    """The i-th SNMP device: 198.18.0.1 … within 198.18.0.0/19, skipping .0 and .255."""
    return f"198.18.{i // 254}.{i % 254 + 1}"


def icmp_address(i: int) -> str:
    """The i-th ICMP-only target on loopback."""
    return f"127.20.{i // 254}.{i % 254 + 1}"


@contextmanager
def agents(interfaces: int) -> Iterator[int]:
    """The namespace with ``interfaces`` rows in ifTable, AnyIP for the device range, snmpd on it.

    Yields snmpd's pid (``ip netns exec`` execs it), so its CPU can be reported beside netwatch's.
    """
    with snmp_walk.namespace():
        snmp_walk.grow_interfaces(0, max(0, interfaces - 2))
        run = snmp_walk.run
        run("ip", "-n", snmp_walk.NS, "addr", "add", f"{NS_ADDR}/24", "dev", snmp_walk.NS_IF)
        run("ip", "-n", snmp_walk.NS, "route", "add", "local", ANYIP, "dev", "lo")
        run("ip", "route", "add", ANYIP, "via", NS_ADDR)
        work = Path(tempfile.mkdtemp(prefix="nwsoak-snmpd-"))
        # One agent answers for 6,000 devices: with the default 208 KiB receive buffer it drops
        # requests as soon as a few hundred wait (each small datagram costs ~2 KiB of buffer), which
        # 6,000 real agents never would. serverRecvBuf asks for more (capped by net.core.rmem_max).
        (work / "snmpd.conf").write_text(
            f"rocommunity {COMMUNITY} 198.18.0.0/15\nsysName soak-agent\n[snmp] serverRecvBuf {AGENT_BUFFER}\n"
        )
        (work / "persist").mkdir()
        proc = subprocess.Popen(
            ["ip", "netns", "exec", snmp_walk.NS, "/usr/sbin/snmpd", "-f", "-C", "-c", str(work / "snmpd.conf"),
             "-Lf", str(work / "snmpd.log"), "-M", "/dev/null", "udp:161"],
            env={**os.environ, "MIBS": ":", "SNMP_PERSISTENT_DIR": str(work / "persist")},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            give_up = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < give_up:
                probe = subprocess.run(
                    ["snmpget", "-v2c", "-c", COMMUNITY, "-t", "1", "-r", "0", device_address(4321),
                     "1.3.6.1.2.1.1.5.0"],
                    capture_output=True, text=True, env={**os.environ, "MIBS": ":"}, check=False, timeout=10,
                )  # fmt: skip
                if "soak-agent" in probe.stdout:
                    break
                time.sleep(0.3)
            else:
                raise SystemExit("snmpd in the namespace did not answer")
            yield proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            run("ip", "route", "del", ANYIP, "via", NS_ADDR, check=False)
            shutil.rmtree(work, ignore_errors=True)


def inventory(devices: int, icmp_only: int, sites: int, *, device_icmp: bool = True) -> dict[str, Any]:
    """The soak network: ``sites`` district-like sites sharing the devices round-robin."""
    snmp = {
        "credential": "soak",
        "interval": SNMP_INTERVAL,
        "timeout": 5,
        "retries": 1,
        "profiles": ["system", "if-mib"],
    }
    device_collectors: dict[str, Any] = {"icmp": {}, "snmp": snmp} if device_icmp else {"snmp": snmp}
    return {
        "province": {"code": "QNM", "name": "Quảng Nam"},
        "credentials": {"soak": {"version": "2c", "community": COMMUNITY}},
        "defaults": {"collectors": {"icmp": {"interval": ICMP_INTERVAL, "probes": 5, "probe_spacing": 0.2, "timeout": 1}}},
        "site_kinds": {"district": {}},
        "sites": [{"code": f"S{s:03d}", "name": f"Site {s}", "kind": "district"} for s in range(sites)],
        "devices": [
            {"name": f"snmp{i:05d}", "site": f"S{i % sites:03d}", "address": device_address(i),
             "collectors": device_collectors}
            for i in range(devices)
        ] + [
            {"name": f"icmp{i:05d}", "site": f"S{i % sites:03d}", "address": icmp_address(i),
             "collectors": {"icmp": {}}}
            for i in range(icmp_only)
        ],
    }  # fmt: skip


def proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE / 2**20


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (netwatch's database writer)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def tree_sample(pid: int) -> tuple[float, float, float, float]:
    """(CPU seconds, RSS MB) of a process and its children together, then of the children alone:
    netwatch's figures include its writer process."""
    cpu, rss = proc_sample(pid)
    child_cpu = child_rss = 0.0
    for child in children_of(pid):
        try:
            c, r = proc_sample(child)
        except OSError:
            continue
        child_cpu, child_rss = child_cpu + c, child_rss + r
    return cpu + child_cpu, rss + child_rss, child_cpu, child_rss


def thread_cpu(pid: int) -> dict[int, tuple[float, float]]:
    """(user, kernel) CPU seconds per thread of a process; the thread whose id is the pid runs the
    event loop. On loopback the kernel time of the loop includes answering its own pings and
    carrying its SNMP requests to the agent, work a real network does elsewhere."""
    found: dict[int, tuple[float, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended between listing and reading
            continue
        found[int(task.name)] = (int(fields[11]) / TICK, int(fields[12]) / TICK)
    return found


def agent_drops() -> int:
    """Requests the agent's socket dropped for want of buffer (UDP RcvbufErrors in its namespace)."""
    out = subprocess.run(
        ["ip", "netns", "exec", snmp_walk.NS, "cat", "/proc/net/snmp"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    header, values = [line.split() for line in out.splitlines() if line.startswith("Udp:")][:2]
    return int(dict(zip(header, values, strict=True)).get("RcvbufErrors", 0))


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def scrape_seconds(port: int, encoding: str) -> float:
    """Fetch /metrics once, as Prometheus would (which asks for gzip); returns how long it took
    (the body is dropped)."""
    started = time.monotonic()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": encoding}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        while response.read(1 << 20):
            pass
    return time.monotonic() - started


class Scraper:
    """Scrapes /metrics every ``every`` seconds from a thread, one scrape at a time."""

    def __init__(self, port: int, every: float, encoding: str) -> None:
        self.port, self.every, self.encoding = port, every, encoding
        self.times: list[float] = []
        self.failed = 0
        self._started = 0
        self._busy = threading.Event()

    def maybe(self, now: float) -> None:
        """Start the next scrape if it is due and none is running."""
        if not self.every or self._busy.is_set() or now < self.every * self._started:
            return
        self._started += 1
        self._busy.set()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            self.times.append(scrape_seconds(self.port, self.encoding))
        except OSError:
            self.failed += 1  # e.g. the daemon not listening yet
        finally:
            self._busy.clear()


def scrape(port: int) -> dict[str, list[tuple[str, float]]]:
    """Every sample of /metrics, by name: [(labels text, value)]."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        body = response.read().decode()
    out: dict[str, list[tuple[str, float]]] = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        out.setdefault(name, []).append((labels, float(value)))
    return out


def total(metrics: dict[str, list[tuple[str, float]]], name: str) -> float:
    """The sum of a family's samples."""
    return sum(v for _, v in metrics.get(name, []))


def print_loop_stalls(metrics: dict[str, list[tuple[str, float]]]) -> None:
    """How often the event loop woke up late: the stalls every poll waited behind."""
    wakeups = total(metrics, "netwatch_event_loop_lag_seconds_count")
    if not wakeups:
        return
    within = dict(metrics.get("netwatch_event_loop_lag_seconds_bucket", []))
    late = {le: wakeups - within.get(f'le="{le}"}}', wakeups) for le in ("0.5", "1.0")}
    print(f"  loop wake-ups:       {wakeups:,.0f}, later than 0.5 s: {late['0.5']:,.0f}, later than 1 s: "
          f"{late['1.0']:,.0f}; {total(metrics, 'netwatch_event_loop_lag_seconds_sum'):.1f} s late in all")  # fmt: skip


Outcomes = dict[str, tuple[int, int, int]]
"""Per collector kind: (polls that succeeded, polls that failed, slots its schedule had)."""


def read_database(db_url: str, intervals: dict[str, int]) -> tuple[dict[str, int] | None, Outcomes]:
    """(rows per table, what each kind's polls came to) from a SQLite soak database; (None, {}) otherwise.

    A target's slots are counted from its first recorded poll to the kind's last slot in the run,
    every ``intervals[kind]`` seconds: slots skipped in between or at the end count, and each
    target's own phase in the interval is kept (the run's whole span for every target counted up to
    a slot too many each; a target's own first-to-last span missed the slots skipped at the end).
    """
    if not db_url.startswith("sqlite:///"):
        return None, {}
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        # icmp_samples: a view of the ICMP rounds in polls since revision 0009 (a table before).
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("polls", "icmp_samples", "interface_samples")}  # fmt: skip
        query = (
            "SELECT p.kind, sum(p.success), sum(1 - p.success),"
            " (julianday(e.last) - julianday(min(p.scheduled_at))) * 86400"
            " FROM polls p JOIN (SELECT kind, max(scheduled_at) AS last FROM polls GROUP BY kind) e"
            " ON e.kind = p.kind GROUP BY p.kind, p.target"
        )
        outcomes: Outcomes = {}
        for kind, ok, failed, span in conn.execute(query):
            total_ok, total_failed, slots = outcomes.get(kind, (0, 0, 0))
            # julianday() keeps ~50 µs: a span of whole intervals may read a hair short
            slots += int(span / intervals.get(kind, 60) + 0.01) + 1
            outcomes[kind] = (total_ok + int(ok), total_failed + int(failed), slots)
    return rows, outcomes


def print_outcomes(outcomes: Outcomes) -> None:
    """What each kind got done against the slots its schedule had: a kind starved by a saturated
    loop shows here, not in the share of polls on time."""
    for kind, (done, failed, due) in sorted(outcomes.items()):
        print(f"  {kind} polls:           {done:,} succeeded, {failed:,} failed, of {due:,} slots "
              f"({done / due * 100 if due else 0:.1f} % succeeded)")  # fmt: skip


def lag_quantile(metrics: dict[str, list[tuple[str, float]]], q: float) -> float:
    """A quantile of poll lag from the cumulative histogram buckets (upper bound of its bucket)."""
    buckets = sorted(
        (float("inf") if (le := labels.split('le="')[1].split('"')[0]) == "+Inf" else float(le), v)
        for labels, v in metrics.get("netwatch_poll_lag_seconds_bucket", [])
    )
    count = buckets[-1][1] if buckets else 0
    for bound, cumulative in buckets:
        if cumulative >= q * count:
            return bound
    return float("nan")


def main() -> int:
    """Start the agents and netwatch; sample; report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=6000, help="SNMP devices (max 8000)")
    parser.add_argument("--interfaces", type=int, default=17, help="interfaces per device")
    parser.add_argument("--icmp-only", type=int, default=4000, help="extra ICMP-only targets on loopback")
    parser.add_argument("--sites", type=int, default=250)
    parser.add_argument(
        "--no-device-icmp", action="store_true", help="SNMP devices without ICMP (to measure SNMP alone)"
    )
    parser.add_argument("--minutes", type=float, default=15)
    # Every SNMP device needs two polls (60 s apart) before its counters give rates, and the first
    # round also walks every static column: the heap reaches its steady size after about 150 s.
    parser.add_argument("--warmup", type=float, default=180, help="seconds excluded from CPU and RSS growth")
    parser.add_argument(
        "--scrape-every",
        type=float,
        default=15.0,
        help="seconds between /metrics scrapes, as deploy/prometheus scrapes (0: none until the end)",
    )
    parser.add_argument(
        "--scrape-encoding",
        default="gzip",
        help="Accept-Encoding of the scrapes: gzip as Prometheus asks, or identity for the plain text",
    )
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--port", type=int, default=19600)
    parser.add_argument(
        "--profile", help="also record py-spy's collapsed stacks after warm-up into this file"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root")
    if not 0 <= args.devices <= 8000 or not 0 < args.minutes <= 120:
        parser.error("--devices 0..8000, --minutes up to 120")
    # A plain SIGTERM would skip the clean-up below and leave the namespace, routes and snmpd behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="nwsoak-"))
    config = work / "inventory.yaml"
    config.write_text(
        yaml.safe_dump(
            inventory(args.devices, args.icmp_only, args.sites, device_icmp=not args.no_device_icmp),
            allow_unicode=True,
        )
    )
    db_url = args.db or f"sqlite:///{work / 'soak.db'}"
    netwatch = str(HERE.parent / ".venv" / "bin" / "netwatch")
    timeline: list[tuple[float, float, float]] = []
    agent_cpu: list[tuple[float, float]] = []  # (t, snmpd CPU seconds)
    children: list[tuple[float, float, float]] = []  # (t, CPU seconds, RSS MB) of netwatch's writer process
    busy: list[tuple[float, float, float]] = []  # (t, machine busy jiffies, total jiffies)
    scraper = Scraper(args.port, args.scrape_every, args.scrape_encoding)
    scrape_times = scraper.times
    threads_at_warmup: dict[int, tuple[float, float]] | None = None
    threads_at_end: dict[int, tuple[float, float]] = {}
    with agents(args.interfaces) as snmpd_pid:
        log = (work / "netwatch.log").open("w")
        proc = subprocess.Popen(
            [netwatch, "--log-level", "WARNING", "run", "-c", str(config), "--db", db_url,
             "--listen", f"127.0.0.1:{args.port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started = time.monotonic()
        profiler: subprocess.Popen[bytes] | None = None
        try:
            end = started + args.minutes * 60
            while time.monotonic() < end and proc.poll() is None:
                if args.profile and profiler is None and time.monotonic() - started >= args.warmup:
                    seconds = str(max(10, int(end - time.monotonic()) - 10))
                    # Blocking samples: py-spy pauses the daemon for each, so no stack is read
                    # while it changes.
                    profiler = subprocess.Popen(
                        [str(HERE.parent / ".venv" / "bin" / "py-spy"), "record", "--format",
                         "raw", "-r", "50", "-d", seconds, "-p", str(proc.pid), "-o", args.profile],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                cpu, rss, child_cpu, child_rss = tree_sample(proc.pid)
                now = time.monotonic() - started
                timeline.append((now, cpu, rss))
                children.append((now, child_cpu, child_rss))
                agent_cpu.append((now, proc_sample(snmpd_pid)[0]))
                busy.append((now, *machine_busy()))
                threads_at_end = thread_cpu(proc.pid)
                if threads_at_warmup is None and now >= args.warmup:
                    threads_at_warmup = threads_at_end
                print(f"  t={timeline[-1][0]:6.0f} s  CPU {cpu:8.1f} s  RSS {rss:6.0f} MB", file=sys.stderr)
                scraper.maybe(now)
                time.sleep(10)
            if proc.poll() is not None:
                raise SystemExit(f"netwatch exited early ({proc.returncode}): see {work / 'netwatch.log'}")
            dropped_by_agent = agent_drops()
            metrics = scrape(args.port)
        finally:
            if profiler is not None:
                profiler.wait(timeout=120)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    polls = total(metrics, "netwatch_polls_total")
    late = total(metrics, "netwatch_polls_late_total")
    # A skipped slot (a misfire: the job's previous run still going, or the loop half an interval
    # late) is a poll that was not on time either: without it the share would hide a starved kind.
    misfires = total(metrics, "netwatch_poll_misfires_total")
    rows, outcomes = read_database(db_url, {"snmp": SNMP_INTERVAL, "icmp": ICMP_INTERVAL})
    warm = [p for p in timeline if p[0] >= args.warmup] or timeline
    cpu_total = timeline[-1][1]
    cpu_share = (warm[-1][1] - warm[0][1]) / max(warm[-1][0] - warm[0][0], 1e-9)
    warm_agent = [p for p in agent_cpu if p[0] >= args.warmup] or agent_cpu
    agent_share = (warm_agent[-1][1] - warm_agent[0][1]) / max(warm_agent[-1][0] - warm_agent[0][0], 1e-9)
    warm_busy = [p for p in busy if p[0] >= args.warmup] or busy
    machine_share = (warm_busy[-1][1] - warm_busy[0][1]) / max(warm_busy[-1][2] - warm_busy[0][2], 1)
    # Where the CPU goes: the event loop (polling, decoding, the pipeline) or the other threads
    # (the storage writer, worker threads for rollups and month figures, the web server).
    before = threads_at_warmup or {}
    spent_split = {
        tid: (user - before.get(tid, (0.0, 0.0))[0], kernel - before.get(tid, (0.0, 0.0))[1])
        for tid, (user, kernel) in threads_at_end.items()
    }
    loop_user, loop_kernel = spent_split.pop(proc.pid, (0.0, 0.0))
    spent = {tid: user + kernel for tid, (user, kernel) in spent_split.items()}
    span = max(warm[-1][0] - warm[0][0], 1e-9)
    loop_share = (loop_user + loop_kernel) / span
    others = sorted(spent.values(), reverse=True)
    others_share = [v / max(warm[-1][0] - warm[0][0], 1e-9) for v in others]
    rss_warm, rss_end, rss_peak = warm[0][2], timeline[-1][2], max(p[2] for p in timeline)
    child_rss_end = children[-1][2] if children else 0.0
    icmp_targets = (0 if args.no_device_icmp else args.devices) + args.icmp_only
    expected_icmp = icmp_targets * 60 // ICMP_INTERVAL
    expected_snmp = args.devices * 60 // SNMP_INTERVAL
    print(f"\nsoak: {args.devices} SNMP devices × {args.interfaces} interfaces "
          f"({args.devices * args.interfaces:,} interfaces, {SNMP_INTERVAL} s), {icmp_targets:,} ICMP targets "
          f"({ICMP_INTERVAL} s rounds × 5 probes), {args.minutes:g} min")  # fmt: skip
    warm_children = [p for p in children if p[0] >= args.warmup] or children
    child_share = (warm_children[-1][1] - warm_children[0][1]) / max(
        warm_children[-1][0] - warm_children[0][0], 1e-9
    )
    print(f"  CPU after warm-up:   {cpu_share * 100:.1f} % of one core (aim < 100 %), writer process "
          f"{child_share * 100:.1f} % of it")  # fmt: skip
    print(
        f"  by thread:           event loop {loop_share * 100:.1f} % (user {loop_user / span * 100:.1f}, "
        f"kernel {loop_kernel / span * 100:.1f}), others "
        + ", ".join(f"{v * 100:.1f} %" for v in others_share[:4])
        + f" ({len(others)} threads)"
    )
    # The agent shares the machine: when both together want more than its cores, polls start late.
    print(f"  snmpd (the agent):   {agent_share * 100:.1f} % of one core; machine busy "
          f"{machine_share * 100:.1f} % of its {os.cpu_count()} cores; requests it dropped: "
          f"{dropped_by_agent:,}")  # fmt: skip
    # CPU per poll is insensitive to how long the other processes on the machine kept netwatch waiting.
    print(
        f"  CPU per poll:        {cpu_total / polls * 1e6 if polls else 0:.0f} µs (whole run incl. warm-up)"
    )
    print(f"  RSS:                 {rss_warm:.0f} MB after warm-up, {rss_end:.0f} MB at the end, peak {rss_peak:.0f} MB"
          f" (growth {rss_end - rss_warm:+.0f} MB; aim < 500 MB), writer process {child_rss_end:.0f} MB of it")  # fmt: skip
    print(f"  poll lag:            p50 ≤ {lag_quantile(metrics, 0.5):g} s, p99 ≤ {lag_quantile(metrics, 0.99):g} s,"
          f" p99.9 ≤ {lag_quantile(metrics, 0.999):g} s")  # fmt: skip
    slots = polls + misfires
    on_time = (polls - late) / slots if slots else 0.0
    print(f"  polls on time:       {on_time * 100:.3f} % of {slots:,.0f} slots (aim ≥ 99.9 %); {misfires:,.0f} "
          f"skipped (previous run still going, or the loop too late), {late:,.0f} started late")  # fmt: skip
    print(f"  polls per minute:    expected ≈ {expected_icmp + expected_snmp:,}, "
          f"made {polls / (args.minutes):,.0f}")  # fmt: skip
    print(f"  rows written:        {total(metrics, 'netwatch_samples_written_total'):,.0f}, dropped "
          f"{total(metrics, 'netwatch_samples_dropped_total'):,.0f}, queue at end "
          f"{total(metrics, 'netwatch_storage_queue_length'):,.0f}")  # fmt: skip
    if rows is not None:
        print(f"  database rows:       polls {rows['polls']:,} (ICMP rounds {rows['icmp_samples']:,}), "
              f"interface_samples {rows['interface_samples']:,}")  # fmt: skip
        print_outcomes(outcomes)
    gc_seconds = dict(metrics.get("netwatch_gc_seconds_total", []))
    gc_runs = dict(metrics.get("netwatch_gc_collections_total", []))
    print("  garbage collector:   " + ", ".join(
        f"{name} {gc_runs.get(labels, 0):.0f} × {gc_seconds[labels] / max(gc_runs.get(labels, 1), 1) * 1e3:.0f} ms"
        for name, labels in (("young", 'generation="0"}'), ("middle", 'generation="1"}'), ("full", 'generation="2"}'))
        if labels in gc_seconds
    ) + f"; {sum(gc_seconds.values()):.1f} s in all; cycles freed "
      f"{sum(v for _, v in metrics.get('netwatch_gc_collected_objects_total', [])):,.0f}")  # fmt: skip
    print_loop_stalls(metrics)
    errors = sorted(metrics.get("netwatch_poll_errors_total", []), key=lambda s: -s[1])[:5]
    print("  poll errors:         " + (", ".join(f"{lab} {v:.0f}" for lab, v in errors) or "none"))
    print(f"RESULT soak cpu_core_share={cpu_share:.3f} rss_end_mb={rss_end:.0f} "
          f"on_time={on_time:.5f} dropped={total(metrics, 'netwatch_samples_dropped_total'):.0f}")  # fmt: skip
    if scrape_times:
        print(
            f"  /metrics scrapes:    {len(scrape_times)} every {args.scrape_every:g} s, "
            f"median {sorted(scrape_times)[len(scrape_times) // 2]:.1f} s, longest {max(scrape_times):.1f} s"
            f", {scraper.failed} failed"
        )
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"  machine load:        {' '.join(load)} (1/5/15 min, {os.cpu_count()} CPUs)")
    print(f"(work files in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
