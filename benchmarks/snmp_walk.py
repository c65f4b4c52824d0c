"""SNMP interface walks: netwatch (fast v2c path and pysnmp) against snmpbulkwalk and snmp_exporter.

Needs root (a network namespace). Agents are Debian's snmpd inside a namespace whose veth carries N
macvlan interfaces (this kernel has no dummy links), addressed in 198.18.0.0/15 behind the safety route
``unreachable 198.18.0.0/15 metric 4000``. Scenarios: one agent with each of ``--sizes`` interfaces, and
``--agents`` agents at once (one snmpd listening on that many addresses, ``--agent-interfaces`` each),
all polled concurrently. Every tool walks the same 15 interface columns of every agent once per round.
CPU is the tool's own (netwatch: its process after start-up; snmpbulkwalk: its processes, start-up
included, as it is used; snmp_exporter: the server's CPU during the scrapes); RSS is the peak.
Everything made is removed at exit. Bounded: ``--repeat`` rounds, every walk and scrape has a timeout.

    .venv/bin/python benchmarks/snmp_walk.py [--sizes 500,5000] [--agents 100] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

IF, IFX = "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"
COLUMNS = {
    "ifDescr": f"{IF}.2", "ifType": f"{IF}.3", "ifSpeed": f"{IF}.5", "ifOperStatus": f"{IF}.8",
    "ifInOctets": f"{IF}.10", "ifInDiscards": f"{IF}.13", "ifInErrors": f"{IF}.14",
    "ifOutOctets": f"{IF}.16", "ifOutDiscards": f"{IF}.19", "ifOutErrors": f"{IF}.20",
    "ifName": f"{IFX}.1", "ifHCInOctets": f"{IFX}.6", "ifHCOutOctets": f"{IFX}.10",
    "ifHighSpeed": f"{IFX}.15", "ifAlias": f"{IFX}.18",
}  # fmt: skip
COMMUNITY = "bench-c0mmunity"
TEST_RANGE = "198.18.0.0/15"
NS = f"nwbench-snmp-{os.getpid()}"
HOST_IF, NS_IF = f"nwbs{os.getpid()}h", "eth0"
HOST_ADDR, NS_NET = "198.18.240.1", "198.18.240"
MAX_REPETITIONS = 25
WALK_TIMEOUT = 300.0


def run(*args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run a command (bounded), return its stdout."""
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False, timeout=120)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}… failed: {done.stderr.strip()}")
    return done.stdout


# -- the agents --------------------------------------------------------------------------------------


@contextmanager
def namespace() -> Iterator[None]:
    """The namespace behind a veth, IPv6 off, with the safety route; all removed on exit."""
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    added_route = "metric 4000" not in run("ip", "route", "show", "type", "unreachable", TEST_RANGE)
    if added_route:
        run("ip", "route", "add", "unreachable", TEST_RANGE, "metric", "4000")
    try:
        run("ip", "netns", "add", NS)
        try:
            run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS)
            for key in ("all", "default", "lo"):
                run("ip", "netns", "exec", NS, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
            run("ip", "addr", "add", f"{HOST_ADDR}/24", "dev", HOST_IF)
            run("ip", "link", "set", HOST_IF, "up")
            run("ip", "-n", NS, "link", "set", "lo", "up")
            run("ip", "-n", NS, "link", "set", NS_IF, "up")
            yield
        finally:
            run("ip", "netns", "del", NS, check=False)  # takes the veth and the macvlans with it
            run("ip", "link", "del", HOST_IF, check=False)
    finally:
        if added_route:
            run("ip", "route", "del", "unreachable", TEST_RANGE, "metric", "4000", check=False)


def grow_interfaces(have: int, want: int) -> None:
    """Add macvlan links on the namespace's veth up to ``want``, in one ``ip -batch`` call."""
    lines = []
    for i in range(have, want):
        lines += [f"link add link {NS_IF} name mv{i} type macvlan mode bridge", f"link set mv{i} up"]
    if lines:
        run("ip", "-n", NS, "-batch", "-", stdin="\n".join(lines) + "\n")


def agent_addresses(count: int) -> list[str]:
    """``count`` addresses in the namespace, one per simulated agent (added once)."""
    addresses = [f"{NS_NET}.{10 + i}" for i in range(count)]
    present = run("ip", "-n", NS, "-o", "-4", "addr", "show", "dev", NS_IF)
    lines = [f"addr add {a}/24 dev {NS_IF}" for a in addresses if f" {a}/" not in present]
    if lines:
        run("ip", "-n", NS, "-batch", "-", stdin="\n".join(lines) + "\n")
    return addresses


@contextmanager
def snmpd(addresses: list[str]) -> Iterator[int]:
    """snmpd in the namespace listening on ``addresses``; yields its PID, stops it on exit."""
    work = Path(tempfile.mkdtemp(prefix="nwbench-snmpd-"))
    (work / "snmpd.conf").write_text(f"rocommunity {COMMUNITY} {NS_NET}.0/24\nsysName bench-agent\n")
    (work / "persist").mkdir()
    endpoints = ",".join(f"udp:{a}:161" for a in addresses)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", NS, "/usr/sbin/snmpd", "-f", "-C", "-c", str(work / "snmpd.conf"),
         "-Lf", str(work / "snmpd.log"), "-M", "/dev/null", endpoints],
        env={**os.environ, "MIBS": ":", "SNMP_PERSISTENT_DIR": str(work / "persist")},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up and proc.poll() is None:
            probe = subprocess.run(
                ["snmpget", "-v2c", "-c", COMMUNITY, "-t", "1", "-r", "0", "-On", addresses[-1], "1.3.6.1.2.1.1.5.0"],
                capture_output=True, text=True, env={**os.environ, "MIBS": ":"}, check=False, timeout=10,
            )  # fmt: skip
            if "bench-agent" in probe.stdout:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(
                f"snmpd did not answer: {(work / 'snmpd.log').read_text(errors='replace')[-2000:]}"
            )
        yield proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


# -- measurement ------------------------------------------------------------------------------------


@dataclass
class Result:
    """One tool's rounds over one scenario."""

    tool: str
    varbinds: int
    wall: float
    cpu: float
    rss_mb: float | None
    note: str = ""


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    """VmHWM of a running process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def netwatch(mode: str, targets: list[str], repeat: int) -> Result:
    """Run the netwatch worker in its own process (clean CPU and RSS) and read its report."""
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, "--targets", ",".join(targets), "--repeat", str(repeat)],
        capture_output=True, text=True, check=True, timeout=WALK_TIMEOUT * repeat + 60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout  # fmt: skip
    report = json.loads(out.strip().splitlines()[-1])
    name = "netwatch fast v2c" if mode == "fast" else "netwatch pysnmp"
    return Result(name, report["varbinds"], report["wall"], report["cpu"], report["rss_mb"], report["note"])


async def _worker_walks(mode: str, targets: list[str], repeat: int) -> tuple[int, str]:
    from collectors.snmp import SnmpClient, SnmpCredentials, SnmpError, SnmpTarget

    creds = SnmpCredentials.v2c(COMMUNITY)
    snmp_targets = [SnmpTarget(t, creds, port=161, timeout=5.0, retries=2) for t in targets]
    varbinds = 0
    errors: list[str] = []
    async with SnmpClient(fast_v2c=mode == "fast", max_in_flight=max(64, len(targets))) as client:
        for _ in range(repeat):
            walks = await asyncio.gather(
                *(client.walk(t, list(COLUMNS.values()), max_repetitions=MAX_REPETITIONS, deadline=WALK_TIMEOUT)
                  for t in snmp_targets),
                return_exceptions=True,
            )  # fmt: skip
            for walked in walks:
                if isinstance(walked, SnmpError):
                    errors.append(walked.reason)
                elif isinstance(walked, BaseException):
                    raise walked
                else:
                    varbinds += sum(len(rows) for rows in walked.values())
    return varbinds, (f"{len(errors)} walks failed: {sorted(set(errors))}" if errors else "")


def worker(mode: str, targets: list[str], repeat: int) -> None:
    """The netwatch side, in its own process: walk, then print one JSON line."""
    import collectors.snmp.client  # noqa: F401  # import cost is start-up, not walking

    cpu, wall = time.process_time(), time.perf_counter()
    varbinds, note = asyncio.run(_worker_walks(mode, targets, repeat))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"varbinds": varbinds, "wall": wall, "cpu": cpu, "rss_mb": rss, "note": note}))


def snmpbulkwalk(targets: list[str], repeat: int) -> Result:
    """net-snmp's snmpbulkwalk, one process per column (it takes one OID), every agent at once."""
    env = {**os.environ, "MIBS": ":"}
    varbinds, cpu, rss = 0, 0.0, 0.0
    started = time.perf_counter()
    for _ in range(repeat):
        procs = [
            subprocess.Popen(
                [
                    "snmpbulkwalk",
                    "-v2c",
                    "-c",
                    COMMUNITY,
                    "-On",
                    "-Oq",
                    f"-Cr{MAX_REPETITIONS}",
                    "-t",
                    "5",
                    "-r",
                    "2",
                    target,
                    oid,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            for target in targets
            for oid in COLUMNS.values()
        ]
        for proc in procs:
            assert proc.stdout is not None
            varbinds += sum(1 for line in proc.stdout if line.startswith(b"."))
            proc.stdout.close()
            _pid, _status, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0
            cpu += usage.ru_utime + usage.ru_stime
            rss = max(rss, usage.ru_maxrss / 1024)
    note = f"{len(targets) * len(COLUMNS)} processes per round"
    return Result("snmpbulkwalk", varbinds, time.perf_counter() - started, cpu, rss, note)


@contextmanager
def snmp_exporter() -> Iterator[tuple[int, int]]:
    """prometheus-snmp-exporter on 127.0.0.1 with a hand-written numeric snmp.yml; yields (port, pid)."""
    from tests.support.snmpd import free_udp_port  # a TCP port free on loopback is as good

    binary = shutil.which("prometheus-snmp-exporter")
    if binary is None:
        raise FileNotFoundError("prometheus-snmp-exporter")
    work = Path(tempfile.mkdtemp(prefix="nwbench-exporter-"))
    index = [{"labelname": "ifIndex", "type": "gauge"}]
    metrics = [
        {"name": name, "oid": oid, "indexes": index,
         "type": "DisplayString" if name in ("ifDescr", "ifName", "ifAlias") else
                 "counter" if "Octets" in name or "Errors" in name or "Discards" in name else "gauge"}
        for name, oid in COLUMNS.items()
    ]  # fmt: skip
    # The 0.21 format (Debian 12): auth and version inside the module, no separate auths section.
    module = {"walk": list(COLUMNS.values()), "metrics": metrics, "version": 2,
              "auth": {"community": COMMUNITY}, "max_repetitions": MAX_REPETITIONS, "retries": 2,
              "timeout": "5s"}  # fmt: skip
    (work / "snmp.yml").write_text(json.dumps({"netwatch_if": module}))  # JSON is YAML
    port = free_udp_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={work / 'snmp.yml'}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        give_up = time.monotonic() + 20
        while True:
            with suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
                break
            if proc.poll() is not None or time.monotonic() > give_up:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"snmp_exporter did not start: {err[-2000:]}")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(work, ignore_errors=True)


def exporter_scrapes(port: int, pid: int, targets: list[str], repeat: int) -> Result:
    """Scrape /snmp for every agent at once, ``repeat`` rounds; count varbinds from its own metric."""

    def scrape(target: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/snmp?target={target}&module=netwatch_if",
            headers={"X-Prometheus-Scrape-Timeout-Seconds": str(int(WALK_TIMEOUT))},
        )
        body = urllib.request.urlopen(request, timeout=WALK_TIMEOUT + 10).read().decode()
        for line in body.splitlines():
            if line.startswith("snmp_scrape_pdus_returned "):
                return int(float(line.split()[1]))
        raise RuntimeError(f"scrape of {target} has no snmp_scrape_pdus_returned: {body[:300]}")

    varbinds = 0
    cpu = proc_cpu(pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(100, len(targets))) as pool:
        for _ in range(repeat):
            varbinds += sum(pool.map(scrape, targets))
    wall = time.perf_counter() - started
    return Result("snmp_exporter 0.21", varbinds, wall, proc_cpu(pid) - cpu, proc_peak_rss_mb(pid))


# -- the run ----------------------------------------------------------------------------------------


def measure(scenario: str, targets: list[str], repeat: int, exporter: tuple[int, int] | None) -> list[Result]:
    """Every tool over the same agents; the agent is warmed first (snmpd fills its caches on first walk)."""
    netwatch("fast", targets, 1)
    tools: list[Callable[[], Result]] = [
        lambda: netwatch("fast", targets, repeat),
        lambda: netwatch("pysnmp", targets, repeat),
        lambda: snmpbulkwalk(targets, repeat),
    ]
    if exporter is not None:
        tools.append(lambda: exporter_scrapes(*exporter, targets, repeat))
    results = []
    for tool in tools:
        result = tool()
        print(f"  {scenario}: {result.tool} done in {result.wall:.1f} s", file=sys.stderr, flush=True)
        results.append(result)
    return results


def table(scenario: str, results: list[Result]) -> str:
    """One scenario's results as an aligned text table with ratios against the reference tools."""
    by_tool = {r.tool: r for r in results}
    fast = by_tool["netwatch fast v2c"]
    lines = [f"\n{scenario}",
             f"{'tool':<20}{'varbinds':>10}{'varbinds/s':>12}{'wall s':>9}{'CPU s':>9}{'µs CPU/vb':>11}{'peak RSS MB':>13}  note"]  # fmt: skip
    for r in results:
        rss = f"{r.rss_mb:.0f}" if r.rss_mb is not None else "-"
        per = r.cpu / r.varbinds * 1e6 if r.varbinds else float("nan")
        rate = r.varbinds / r.wall if r.wall else float("nan")
        lines.append(
            f"{r.tool:<20}{r.varbinds:>10}{rate:>12.0f}{r.wall:>9.2f}{r.cpu:>9.2f}{per:>11.1f}{rss:>13}  {r.note}"
        )
    for name in ("snmpbulkwalk", "snmp_exporter 0.21", "netwatch pysnmp"):
        other = by_tool.get(name)
        if other and other.cpu and other.wall:
            lines.append(
                f"netwatch fast / {name}: CPU ×{fast.cpu / other.cpu:.2f}, wall ×{fast.wall / other.wall:.2f}"
            )
    ratios = " ".join(
        f"cpu_vs_{name.split()[0]}={fast.cpu / other.cpu:.2f}"
        for name in ("snmpbulkwalk", "snmp_exporter 0.21", "netwatch pysnmp")
        if (other := by_tool.get(name)) and other.cpu
    )
    per_vb = fast.cpu / fast.varbinds * 1e6 if fast.varbinds else float("nan")
    lines.append(
        f"RESULT snmp scenario={scenario.replace(' ', '_')} us_cpu_per_varbind={per_vb:.1f} {ratios}"
    )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments; run every scenario; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,5000", help="interfaces on the single agent, comma-separated")
    parser.add_argument("--agents", type=int, default=100, help="agents polled at once (0: skip)")
    parser.add_argument("--agent-interfaces", type=int, default=20, help="interfaces on each of those agents")
    parser.add_argument("--repeat", type=int, default=2, help="rounds per tool (1…10)")
    parser.add_argument("--no-exporter", action="store_true", help="leave prometheus-snmp-exporter out")
    parser.add_argument("--worker", choices=["fast", "pysnmp"], help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.targets.split(","), args.repeat)
        return
    repeat = max(1, min(10, args.repeat))
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    tables = []
    with ExitStack() as stack:
        stack.enter_context(namespace())
        exporter = None
        if not args.no_exporter and shutil.which("prometheus-snmp-exporter"):
            exporter = stack.enter_context(snmp_exporter())
        have = 0
        if args.agents:
            grow_interfaces(0, args.agent_interfaces)
            have = args.agent_interfaces
            addresses = agent_addresses(args.agents)
            with snmpd(addresses):
                name = f"{args.agents} agents at once, {have + 2} interfaces each"
                tables.append(table(name, measure(name, addresses, repeat, exporter)))
        address = agent_addresses(1)
        for size in sizes:
            grow_interfaces(have, size)
            have = max(have, size)
            with snmpd(address):
                name = f"one agent, {size + 2} interfaces"
                tables.append(table(name, measure(name, address, repeat, exporter)))
    print(
        f"\nSNMP interface walk: {len(COLUMNS)} columns, max-repetitions {MAX_REPETITIONS}, {repeat} round(s) per tool"
    )
    print("\n".join(tables))


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        main()
