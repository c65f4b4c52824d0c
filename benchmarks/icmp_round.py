"""One ICMP round to many loopback targets: netwatch's engine vs fping vs icmplib, same addresses, same run.

Run as root from the repository root::

    .venv/bin/python benchmarks/icmp_round.py [--targets 1000] [--probes 5] [--repeat 3]

Targets are 127.1.x.y (loopback answers the whole 127.0.0.0/8): no packet leaves the machine.
Prints wall and CPU seconds, the median RTT each tool reports, replies received, and the ratios
netwatch/fping. Every run is bounded and the script exits by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.icmp import IcmpEngine


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
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root: fping, icmplib and the engine all use raw sockets here")
    if not 1 <= args.targets <= 20_000 or not 1 <= args.repeat <= 20 or not 1 <= args.probes <= 100:
        parser.error("--targets 1..20000, --probes 1..100, --repeat 1..20")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.targets + 256)), hard))

    targets = addresses(args.targets)
    shape = (targets, args.probes, args.spacing, args.timeout)
    results: dict[str, list[Run]] = {"netwatch": [], "fping": [], "icmplib": []}
    for _ in range(args.repeat):
        results["netwatch"].append(asyncio.run(run_netwatch(*shape)))
        results["fping"].append(run_fping(*shape))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
