"""One ICMP round to many loopback targets: netwatch's engine vs fping, blackbox_exporter and icmplib.

Run as root from the repository root::

    .venv/bin/python benchmarks/icmp_round.py [--targets 1000] [--probes 5] [--repeat 3]

Targets are 127.1.x.y (loopback answers the whole 127.0.0.0/8): no packet leaves the machine.
Prints wall and CPU seconds, the median RTT each tool reports, replies received, and the ratios
netwatch/fping and netwatch/blackbox. blackbox_exporter (Debian's prometheus-blackbox-exporter, on
127.0.0.1) is driven as Prometheus drives it: one ``/probe?module=icmp`` request per target and probe
(its icmp prober sends one echo per request), 200 requests in flight; its CPU is the exporter
process's own.

``--sustained SECONDS`` measures the daemon's steady load instead: every target polled in rounds of
``--probes`` every ``--interval`` seconds, ``--round-spacing`` apart (each probe waiting as long for
its reply), rounds spread evenly over the interval as the scheduler spreads them. netwatch's engine
runs it twice, with its 10 ms timer ticks and with a wake-up per event; fping runs the same probe
rate (each target every interval / probes, sends spread by ``-i``). Prints each one's share of a
core, probes sent per second, CPU per probe and replies received. Every run is bounded and the
script exits by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.icmp import TICK, IcmpEngine, RoundResult


@dataclass(frozen=True)
class Run:
    """One tool's round over all targets."""

    tool: str
    wall: float
    cpu: float
    rtts: list[float]
    sent: int

    @property
    def median_rtt_ms(self) -> float:
        """Median of every RTT reported, in ms (NaN when no reply)."""
        return statistics.median(self.rtts) * 1000 if self.rtts else float("nan")


def addresses(count: int) -> list[str]:
    """``count`` distinct loopback addresses in 127.1.0.0/16 and beyond."""
    return [f"127.{1 + i // 64516}.{i // 254 % 254 + 1}.{i % 254 + 1}" for i in range(count)]


async def run_netwatch(targets: list[str], probes: int, spacing: float, timeout: float) -> Run:
    """The shared engine, every round in flight at once."""
    async with await IcmpEngine.open() as engine:
        cpu, wall = time.process_time(), time.monotonic()
        rounds = await asyncio.gather(
            *(engine.round(a, probes=probes, probe_spacing=spacing, timeout=timeout) for a in targets)
        )
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    rtts = [rtt for r in rounds for rtt in r.rtts]
    return Run("netwatch", wall, cpu, rtts, sum(r.sent for r in rounds))


def run_fping(targets: list[str], probes: int, spacing: float, timeout: float) -> Run:
    """fping in count mode, all targets from a file, CPU from the children's rusage."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(targets) + "\n")
        listing.flush()
        command = [
            "fping", "-C", str(probes), "-q", "-i", "0", "-p", str(max(1, round(spacing * 1000))),
            "-t", str(max(1, round(timeout * 1000))), "-f", listing.name,
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        wall = time.monotonic() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rtts: list[float] = []
    for line in done.stderr.splitlines():
        _, sep, values = line.partition(" : ")
        if sep:
            rtts.extend(float(v) / 1000 for v in values.split() if v != "-")
    return Run("fping", wall, cpu, rtts, probes * len(targets))


async def run_icmplib(targets: list[str], probes: int, spacing: float, timeout: float) -> Run:
    """icmplib's async_multiping, one task (and one raw socket) per target, all in flight."""
    from icmplib import async_multiping

    cpu, wall = time.process_time(), time.monotonic()
    hosts = await asyncio.wait_for(
        async_multiping(
            targets, count=probes, interval=spacing, timeout=timeout, concurrent_tasks=len(targets)
        ),
        timeout=probes * (spacing + timeout) + 120,
    )
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    rtts = [rtt / 1000 for host in hosts for rtt in host.rtts]
    return Run("icmplib", wall, cpu, rtts, probes * len(targets))


BLACKBOX_CONFIG = """\
modules:
  icmp:
    prober: icmp
    timeout: {timeout}s
    icmp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _blackbox_wave(port: int, targets: list[str], in_flight: int) -> list[float]:
    import aiohttp

    limit = asyncio.Semaphore(in_flight)
    rtts: list[float] = []

    async def one(session: aiohttp.ClientSession, address: str) -> None:
        async with (
            limit,
            session.get(
                f"http://127.0.0.1:{port}/probe", params={"module": "icmp", "target": address}
            ) as response,
        ):
            body = await response.text()
        success = rtt = None
        for line in body.splitlines():
            if line.startswith("probe_success "):
                success = float(line.split()[1])
            elif line.startswith('probe_icmp_duration_seconds{phase="rtt"}'):
                rtt = float(line.split()[1])
        if success == 1 and rtt is not None:
            rtts.append(rtt)

    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.wait_for(asyncio.gather(*(one(session, a) for a in targets)), timeout=300)
    return rtts


def run_blackbox(targets: list[str], probes: int, spacing: float, timeout: float) -> Run:
    """prometheus-blackbox-exporter's icmp module, one HTTP probe per target per probe."""
    binary = shutil.which("prometheus-blackbox-exporter")
    if binary is None:
        raise SystemExit("prometheus-blackbox-exporter not found: apt install prometheus-blackbox-exporter")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "blackbox.yml"
        config.write_text(BLACKBOX_CONFIG.format(timeout=max(timeout, 0.1)))
        with socket.socket() as probe_port:
            probe_port.bind(("127.0.0.1", 0))
            port = probe_port.getsockname()[1]
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("blackbox_exporter did not start") from None
                    time.sleep(0.05)
            cpu, wall = _proc_cpu(proc.pid), time.monotonic()
            rtts: list[float] = []
            for _ in range(probes):
                rtts += asyncio.run(_blackbox_wave(port, targets, 200))
            wall, cpu = time.monotonic() - wall, _proc_cpu(proc.pid) - cpu
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return Run("blackbox", wall, cpu, rtts, probes * len(targets))


@dataclass(frozen=True)
class Sustained:
    """One tool's steady load: CPU share of one core and probes sent per second over the measured
    window, and every probe sent and answered in the run."""

    tool: str
    cpu_share: float
    rate: float
    sent: int
    received: int

    @property
    def cpu_per_probe(self) -> float:
        """CPU seconds per probe sent (the fair comparison when a tool falls short of the rate)."""
        return self.cpu_share / self.rate if self.rate else float("nan")


async def sustained_netwatch(
    targets: list[str], seconds: float, interval: float, probes: int, spacing: float, tick: float
) -> Sustained:
    """Rounds of every target every ``interval``, spread evenly, each probe waiting up to ``spacing``
    for its reply; the engine wakes on ``tick`` (0: for every event)."""
    loop = asyncio.get_running_loop()
    counts = [0, 0]

    def done(result: RoundResult) -> None:
        counts[0] += result.sent
        counts[1] += result.received

    async with await IcmpEngine.open(tick=tick) as engine:
        begin = loop.time() + 0.2
        end = begin + seconds

        def fire(address: str, at: float) -> None:
            if at < end:
                engine.start_round(
                    address, probes=probes, probe_spacing=spacing, timeout=spacing, on_done=done
                )
                loop.call_at(at + interval, fire, address, at + interval)

        for i, address in enumerate(targets):
            at = begin + interval * i / len(targets)
            loop.call_at(at, fire, address, at)
        await asyncio.sleep(0.2 + interval)  # the first interval fills the pipeline
        cpu, wall, sent = time.process_time(), time.monotonic(), counts[0]
        await asyncio.sleep(max(0.0, seconds - interval))
        window = time.monotonic() - wall
        share = (time.process_time() - cpu) / window
        rate = (counts[0] - sent) / window  # counted as rounds end: the window's rounds, shifted
        await asyncio.sleep(probes * spacing + 0.5)
    name = f"netwatch, {tick * 1000:g} ms ticks" if tick else "netwatch, no ticks"
    return Sustained(name, share, rate, counts[0], counts[1])


def sustained_fping(targets: list[str], seconds: float, interval: float, probes: int) -> Sustained:
    """fping at the same probe rate: each target every interval / probes seconds (count mode, quiet:
    its loop mode prints every reply even with ``-q``), stopped by SIGINT once measured."""
    period_ms = interval / probes * 1000
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(targets) + "\n")
        listing.flush()
        command = [
            "fping", "-c", str(int(seconds * 1000 / period_ms) + 10), "-q", "-p", f"{period_ms:g}",
            "-i", f"{period_ms / len(targets):.3f}", "-t", "1000", "-f", listing.name,
        ]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started = time.monotonic()
        try:
            time.sleep(interval)
            cpu, wall = _proc_cpu(proc.pid), time.monotonic()
            time.sleep(max(0.0, seconds - interval))
            share = (_proc_cpu(proc.pid) - cpu) / (time.monotonic() - wall)
        finally:
            proc.send_signal(2)  # SIGINT: fping prints its per-target summary and exits
            ran = time.monotonic() - started
            _, summary = proc.communicate(timeout=30)
    sent = received = 0
    for line in summary.splitlines():
        # "127.1.0.1 : xmt/rcv/%loss = 50/50/0%, min/avg/max = ..."
        _, sep, figures = line.partition("xmt/rcv/%loss = ")
        if sep:
            xmt, rcv, _loss = figures.split(",")[0].split("/")
            sent, received = sent + int(xmt), received + int(rcv)
    return Sustained("fping", share, sent / ran, sent, received)  # its rate over the whole run


def run_sustained(targets: list[str], seconds: float, interval: float, probes: int, spacing: float) -> None:
    """The daemon's steady load through each tool in turn, side by side."""
    rows = [
        asyncio.run(sustained_netwatch(targets, seconds, interval, probes, spacing, TICK)),
        asyncio.run(sustained_netwatch(targets, seconds, interval, probes, spacing, 0)),
        sustained_fping(targets, seconds, interval, probes),
    ]
    rate = len(targets) * probes / interval
    print(
        f"{len(targets)} loopback targets, rounds of {probes} probes {spacing * 1000:g} ms apart every"
        f" {interval:g} s, spread over the interval ({rate:,.0f} probes/s), {seconds:g} s"
    )
    print(f"{'tool':<22} {'% of a core':>12} {'probes/s':>9} {'µs CPU/probe':>13} {'replies':>16}")
    for row in rows:
        print(
            f"{row.tool:<22} {100 * row.cpu_share:>12.1f} {row.rate:>9,.0f} {row.cpu_per_probe * 1e6:>13.1f}"
            f" {f'{row.received}/{row.sent}':>16}"
        )
    ticked, unticked, fping = rows
    print(
        f"RESULT icmp_sustained targets={len(targets)} cpu_share={ticked.cpu_share:.3f}"
        f" per_probe_vs_no_tick={ticked.cpu_per_probe / unticked.cpu_per_probe:.2f}"
        f" per_probe_vs_fping={ticked.cpu_per_probe / fping.cpu_per_probe:.2f}"
    )


def summarize(runs: list[Run]) -> Run:
    """The median of each figure over repeated runs of one tool."""
    return Run(
        runs[0].tool,
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        [rtt for r in runs for rtt in r.rtts],
        runs[0].sent,
    )


def main() -> int:
    """Parse arguments, run each tool ``--repeat`` times, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000, help="loopback targets (max 20000)")
    parser.add_argument("--probes", type=int, default=5, help="echo requests per target")
    parser.add_argument("--spacing", type=float, default=0.02, help="seconds between a target's probes")
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds to wait for each reply")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool (medians are reported)")
    parser.add_argument("--no-icmplib", action="store_true", help="skip icmplib (slow at high concurrency)")
    parser.add_argument("--no-blackbox", action="store_true", help="skip prometheus-blackbox-exporter")
    parser.add_argument(
        "--sustained", type=float, metavar="SECONDS", help="measure the steady load for SECONDS instead"
    )
    parser.add_argument("--interval", type=float, default=10.0, help="--sustained: seconds between rounds")
    parser.add_argument(
        "--round-spacing", type=float, default=1.0, help="--sustained: seconds between a round's probes"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: fping, icmplib and the engine all use raw sockets here")
    if not 1 <= args.targets <= 20_000 or not 1 <= args.repeat <= 20 or not 1 <= args.probes <= 100:
        parser.error("--targets 1..20000, --probes 1..100, --repeat 1..20")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.targets + 256)), hard))

    targets = addresses(args.targets)
    if args.sustained is not None:
        if not args.interval * 2 <= args.sustained <= 600:
            parser.error("--sustained must be at least two intervals and at most 600 seconds")
        run_sustained(targets, args.sustained, args.interval, args.probes, args.round_spacing)
        return 0
    shape = (targets, args.probes, args.spacing, args.timeout)
    results: dict[str, list[Run]] = {"netwatch": [], "fping": [], "blackbox": [], "icmplib": []}
    for _ in range(args.repeat):
        results["netwatch"].append(asyncio.run(run_netwatch(*shape)))
        results["fping"].append(run_fping(*shape))
        if not args.no_blackbox:
            results["blackbox"].append(run_blackbox(*shape))
        if not args.no_icmplib:
            results["icmplib"].append(asyncio.run(run_icmplib(*shape)))

    print(
        f"{args.targets} loopback targets × {args.probes} probes, spacing {args.spacing * 1000:g} ms,"
        f" timeout {args.timeout * 1000:g} ms, median of {args.repeat} run(s)"
    )
    print(f"{'tool':<10} {'wall s':>8} {'cpu s':>8} {'median rtt ms':>14} {'replies':>14}")
    summary = {tool: summarize(runs) for tool, runs in results.items() if runs}
    for run in summary.values():
        replies = f"{len(run.rtts) // args.repeat}/{run.sent}"
        print(f"{run.tool:<10} {run.wall:>8.3f} {run.cpu:>8.3f} {run.median_rtt_ms:>14.4f} {replies:>14}")
    ours, theirs = summary["netwatch"], summary["fping"]
    print(
        f"{'netwatch/fping':<10} {ours.wall / theirs.wall:>8.2f} {ours.cpu / max(theirs.cpu, 1e-9):>8.2f}"
        f" {ours.median_rtt_ms / theirs.median_rtt_ms:>14.2f}"
    )
    line = f"RESULT icmp targets={args.targets} cpu_vs_fping={ours.cpu / max(theirs.cpu, 1e-9):.2f}"
    line += f" wall_vs_fping={ours.wall / theirs.wall:.2f}"
    if "blackbox" in summary:
        box = summary["blackbox"]
        print(
            f"{'nw/blackbox':<10} {ours.wall / box.wall:>8.2f} {ours.cpu / max(box.cpu, 1e-9):>8.2f}"
            f" {ours.median_rtt_ms / box.median_rtt_ms:>14.2f}"
        )
        line += f" cpu_vs_blackbox={ours.cpu / max(box.cpu, 1e-9):.3f} wall_vs_blackbox={ours.wall / box.wall:.3f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
