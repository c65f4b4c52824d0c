"""Every benchmark in one command, each against its reference tools, then one summary table.

Run as root from the repository root (ICMP raw sockets, network namespaces, a throwaway PostgreSQL)::

    .venv/bin/python benchmarks/run_all.py [--quick]

Runs, one after another (never two at once: they would measure each other):
- ``icmp_round.py`` at 1,000 and 10,000 loopback targets × 5 probes: netwatch vs fping -C 5 and
  prometheus-blackbox-exporter's icmp module; and the daemon's steady ICMP load (10,000 targets
  in spread rounds, 5,000 probes/s) with and without the engine's timer ticks vs fping;
- ``snmp_walk.py``: ifTable+ifXTable of 500- and 5,000-interface agents and 100 agents at once:
  netwatch vs snmpbulkwalk, prometheus-snmp-exporter and plain pysnmp;
- ``storage_write.py``: rows/s through the batched writer on SQLite and PostgreSQL vs executemany;
- ``exposition.py``: /metrics with ~100,000 series vs a plain prometheus_client registry;
- ``scheduler_fire.py``: CPU per poll fired, netwatch's scheduler vs APScheduler 3;
- ``report_month.py``: the monthly reports vs a hand-written SQL floor.
Each script's own output is kept in ``benchmarks/results/<name>.txt``; the summary collects the
``RESULT`` lines (ratios: netwatch ÷ reference, below 1 is netwatch ahead). ``--quick`` shrinks every
size for a smoke run. Every script is bounded and given a timeout here.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def plan(quick: bool) -> list[tuple[str, list[str], int]]:
    """(name, arguments, timeout seconds) of every run."""
    if quick:
        return [
            ("icmp_1000", ["icmp_round.py", "--targets", "200", "--repeat", "1", "--no-icmplib"], 300),
            ("icmp_sustained", ["icmp_round.py", "--targets", "500", "--sustained", "20"], 300),
            ("snmp", ["snmp_walk.py", "--sizes", "500", "--agents", "10", "--repeat", "1"], 900),
            ("storage", ["storage_write.py", "--rows", "20000", "--postgres"], 600),
            ("exposition", ["exposition.py", "--devices", "20", "--interfaces", "50", "--repeat", "2"], 300),
            ("scheduler", ["scheduler_fire.py", "--jobs", "1000", "--seconds", "5"], 120),
            (
                "report_month",
                [
                    "report_month.py",
                    "--devices",
                    "60",
                    "--sites",
                    "25",
                    "--interfaces",
                    "600",
                    "--raw-days",
                    "1",
                    "--repeat",
                    "1",
                ],
                900,
            ),
        ]
    return [
        ("icmp_1000", ["icmp_round.py", "--targets", "1000", "--repeat", "3", "--no-icmplib"], 900),
        ("icmp_10000", ["icmp_round.py", "--targets", "10000", "--repeat", "1", "--no-icmplib"], 1800),
        ("icmp_sustained", ["icmp_round.py", "--targets", "10000", "--sustained", "40"], 600),
        ("snmp", ["snmp_walk.py", "--sizes", "500,5000", "--agents", "100", "--repeat", "2"], 2400),
        ("storage", ["storage_write.py", "--rows", "200000", "--postgres"], 1800),
        ("exposition", ["exposition.py", "--devices", "200", "--interfaces", "50", "--repeat", "5"], 900),
        ("scheduler", ["scheduler_fire.py", "--jobs", "3000", "--seconds", "20"], 300),
        # 600 devices and 250 sites as in the province; interfaces and the raw window cut down so
        # the generator (not the reports) stays within minutes
        (
            "report_month",
            ["report_month.py", "--interfaces", "600", "--raw-days", "0.5", "--repeat", "2"],
            3600,
        ),
    ]


def run(name: str, args: list[str], timeout: int, results: Path) -> tuple[str, float, int]:
    """Run one benchmark script; keep its output; return (output, seconds, exit code)."""
    started = time.monotonic()
    print(f"== {name}: {' '.join(args)}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            [PYTHON, str(HERE / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=HERE.parent,
        )
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        output, code = f"{partial}\ntimed out after {timeout} s", -1
    (results / f"{name}.txt").write_text(output, encoding="utf-8")
    return output, time.monotonic() - started, code


def summary_rows(output: str) -> list[tuple[str, str]]:
    """(what, figures) from a script's RESULT lines and, for the reports, its timing table."""
    rows = []
    for line in output.splitlines():
        if line.startswith("RESULT "):
            _, what, *figures = line.split()
            rows.append((what, " ".join(figures)))
        elif m := re.match(r"^(availability|bandwidth)\S*\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", line):
            rows.append((f"report {m[1]}", f"report_s={m[2]} floor_s={m[3]} ratio={m[4]}"))
    return rows


def main() -> int:
    """Run the plan; print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every benchmark")
    parser.add_argument("--only", help="comma-separated names to run (see the plan)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root (raw ICMP sockets, network namespaces, PostgreSQL)")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else None
    table: list[tuple[str, str, str]] = []
    failed = 0
    for name, script_args, timeout in plan(args.quick):
        if wanted and name not in wanted:
            continue
        output, seconds, code = run(name, script_args, timeout, results)
        rows = summary_rows(output)
        if code != 0 or not rows:
            failed += 1
            table.append((name, "FAILED", f"exit {code}, see benchmarks/results/{name}.txt"))
        for what, figures in rows:
            table.append((name, what, figures))
        print(f"   {name}: {seconds:.0f} s", file=sys.stderr, flush=True)
    width = max((len(w) for _, w, _ in table), default=10)
    print(f"\n{'benchmark':<14}{'what':<{width + 2}}figures (ratio = netwatch ÷ reference; < 1 is faster)")
    for name, what, figures in table:
        print(f"{name:<14}{what:<{width + 2}}{figures}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
