"""Cost of firing polls: netwatch's one-heap scheduler vs APScheduler 3 configured as netwatch used it.

Run from the repository root (APScheduler comes with the ``dev`` extra)::

    .venv/bin/python benchmarks/scheduler_fire.py [--jobs 3000] [--interval 1] [--seconds 20]

Both sides fire the same jobs (keys and grid offsets from the real inventory loader) on the same
grid into a no-op poll, in their own event loop, one after the other. APScheduler is set up as
netwatch's scheduler was before it was replaced: ``AsyncIOScheduler``, one ``IntervalTrigger`` job
per target × collector starting on the job's grid point, ``max_instances=1``, ``coalesce=True``,
misfire grace of half an interval; netwatch runs a second time with a timer wake-up per due run
instead of its 10 ms ticks. Prints fires, CPU µs per fire, lag percentiles (fire time − grid time)
and the ratios. Bounded by ``--seconds`` per side.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from netwatch.config import load_inventory
from netwatch.config.inventory import Job
from netwatch.scheduler import TICK, PollScheduler, grid_start, scheduled_time


def jobs(count: int, interval: float) -> list[Job]:
    """``count`` ICMP jobs from an inventory (never polled here)."""
    doc = {
        "province": {"code": "QNM", "name": "Quảng Nam"},
        "defaults": {"collectors": {"icmp": {"interval": interval, "probes": 1, "timeout": 0.5}}},
        "site_kinds": {"district": {}},
        "sites": [{"code": "S0", "name": "Site", "kind": "district"}],
        "devices": [
            {"name": f"d{i:05d}", "site": "S0", "address": f"127.30.{i // 250}.{i % 250 + 1}"}
            for i in range(count)
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return list(load_inventory(path).jobs)


class Tally:
    """Fires and their lag behind the grid."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def poll(self, job: Job, at: datetime) -> None:
        self.lags.append((datetime.now(UTC) - at).total_seconds())


async def run_netwatch(all_jobs: list[Job], seconds: float, tick: float = TICK) -> tuple[Tally, float]:
    """netwatch's scheduler for ``seconds``, waking on ``tick`` (0: for every due run);
    (tally, CPU seconds)."""
    tally = Tally()
    scheduler = PollScheduler(tally.poll, tick=tick)
    scheduler.sync(all_jobs)
    cpu = time.process_time()
    scheduler.start()
    await asyncio.sleep(seconds)
    scheduler.pause()
    cpu = time.process_time() - cpu
    scheduler.shutdown()
    return tally, cpu


async def run_apscheduler(all_jobs: list[Job], seconds: float) -> tuple[Tally, float]:
    """APScheduler 3 as netwatch configured it; (tally, CPU seconds)."""
    tally = Tally()
    scheduler = AsyncIOScheduler(timezone=UTC)

    async def fire(job: Job) -> None:
        await tally.poll(job, scheduled_time(job.key, job.params.interval, datetime.now(UTC)))

    for job in all_jobs:
        interval = job.params.interval
        scheduler.add_job(
            fire,
            IntervalTrigger(seconds=interval, start_date=grid_start(job.key, interval), timezone=UTC),
            args=(job,),
            id=job.key,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval / 2)),
        )
    cpu = time.process_time()
    scheduler.start()
    await asyncio.sleep(seconds)
    scheduler.pause()
    cpu = time.process_time() - cpu
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)
    return tally, cpu


def row(name: str, tally: Tally, cpu: float) -> str:
    """One line of the table."""
    lags = sorted(tally.lags) or [float("nan")]
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    per = cpu / len(tally.lags) * 1e6 if tally.lags else float("nan")
    return f"{name:<14}{len(tally.lags):>9,}{per:>12.1f}{statistics.median(lags) * 1000:>11.2f}{p99 * 1000:>11.2f}"


def main() -> None:
    """Both schedulers, one after the other; the table and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if not 1 <= args.jobs <= 100_000 or not 1 <= args.seconds <= 600:
        parser.error("--jobs 1..100000, --seconds 1..600")
    all_jobs = jobs(args.jobs, args.interval)
    ours, our_cpu = asyncio.run(run_netwatch(all_jobs, args.seconds))
    unticked, unticked_cpu = asyncio.run(run_netwatch(all_jobs, args.seconds, tick=0))
    theirs, their_cpu = asyncio.run(run_apscheduler(all_jobs, args.seconds))
    print(f"{args.jobs:,} jobs every {args.interval:g} s for {args.seconds:g} s each, no-op polls")
    print(f"{'scheduler':<14}{'fires':>9}{'µs CPU/fire':>12}{'lag p50 ms':>11}{'lag p99 ms':>11}")
    print(row("netwatch", ours, our_cpu))
    print(row("  no ticks", unticked, unticked_cpu))
    print(row("APScheduler 3", theirs, their_cpu))
    ratio = (our_cpu / len(ours.lags)) / (their_cpu / len(theirs.lags))
    print(f"ratio netwatch/APScheduler (CPU per fire): {ratio:.2f}")
    ticks = (our_cpu / len(ours.lags)) / (unticked_cpu / len(unticked.lags))
    print(f"ratio with/without {TICK * 1000:g} ms ticks (CPU per fire): {ticks:.2f}")
    print(
        f"RESULT scheduler jobs={args.jobs} cpu_per_fire_vs_apscheduler={ratio:.2f}"
        f" cpu_per_fire_vs_no_ticks={ticks:.2f}"
    )


if __name__ == "__main__":
    main()
