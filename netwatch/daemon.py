"""Wire everything together and run until told to stop.

The only module that imports everything: inventory → scheduler → pipeline → (state, storage)
→ exporter → web. SIGTERM/SIGINT stop scheduling, let polls in flight finish, flush storage and
exit 0; SIGHUP reloads the inventory, keeping the old one if the new one is invalid.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from collectors import REGISTRY, CollectContext, CollectorSpec
from collectors.icmp import IcmpEngine, IcmpPermissionError
from collectors.snmp.collector import SnmpResources, open_snmp_resources
from netwatch import __version__
from netwatch.alerting import Dispatcher
from netwatch.config import load_inventory
from netwatch.config.inventory import Inventory, Job
from netwatch.config.snmp import snmp_credentials
from netwatch.config.warnings import weak_settings
from netwatch.errors import ConfigError, MigrationError
from netwatch.exporter import make_registry
from netwatch.gcpolicy import run_collections, settle_after, tune_for_daemon
from netwatch.health import TargetHealth
from netwatch.loopwatch import watch_loop
from netwatch.mallocpolicy import cap_heap_growth
from netwatch.pipeline import Pipeline
from netwatch.recording import PollRecorder, restore_health
from netwatch.reports.availability import compute, load_month
from netwatch.scheduler import PollScheduler
from netwatch.sentstore import SqlSentStore
from netwatch.sharding import external_parents, owned_devices, owned_sites, parse_shard, shard_of_site
from netwatch.sitehealth import SiteState
from netwatch.sites import SiteTracker
from netwatch.state import LatestState, MonthFigures
from netwatch.storage import migrate, repository
from netwatch.storage.engine import create_engine_for, in_memory
from netwatch.storage.locks import exclusive, run_once_per_period
from netwatch.storage.spool import DEFAULT_SPOOL_MAX_BYTES, spool_for
from netwatch.storage.writer import BatchWriter
from netwatch.web import WebServer, parse_listen
from netwatch.web.webconfig import WebSecurity

log = logging.getLogger(__name__)


def _seconds_from_env(name: str, default: float) -> float:
    # Tests shorten these (a sharded run's heartbeat expiry, a history period) without a config knob.
    value = os.environ.get(name)
    return float(value) if value else default


HEARTBEAT_SECONDS = _seconds_from_env("NETWATCH_HEARTBEAT_SECONDS", 15.0)
SHARD_SILENT_SECONDS = 3 * HEARTBEAT_SECONDS
"""A shard whose latest run has not heartbeaten for this long is taken for dead (as ``status`` does)."""
TICK_SECONDS = 1.0
NOTIFICATION_MEMORY = timedelta(days=7)
"""How far back sent notifications are remembered across a restart (longer than any repeat interval)."""
SHUTDOWN_GRACE_SECONDS = 10.0
HISTORY_SECONDS = _seconds_from_env("NETWATCH_HISTORY_SECONDS", 300.0)
"""How often rollups and retention run (once per period across all shards, on wall-clock boundaries)."""
HISTORY_MAX_BATCHES = 48
MONTH_FIGURES_SECONDS = 60.0
"""How often this month's availability per site is computed for the exporter."""
MONTH_FIGURES_FIRST_SECONDS = HEARTBEAT_SECONDS + 5.0
"""Delay before the first computation: until the first heartbeat the report counts this run's time
as unknown (not measured), which leaves no availability to show."""


@dataclass(frozen=True)
class DaemonOptions:
    """What ``netwatch run`` (or ``demo``) asks for."""

    config: Path
    db_url: str
    listen: str = "127.0.0.1:9555"
    instance: str = socket.gethostname()
    shard: str = "0/1"
    web_security: WebSecurity | None = None
    """TLS, basic auth and headers for the HTTP endpoint (``--web-config``), loaded by the caller."""
    spool_dir: Path | None = None
    """Where rows wait on disk while the database is away (None: beside the SQLite file or in
    ``$STATE_DIRECTORY``; see :func:`netwatch.storage.spool.default_spool_dir`)."""
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    """Bound of the disk spool; 0 disables it."""
    queue_max_rows: int = 200_000
    """Rows held in memory for the database before they go to the spool (or are dropped)."""
    write_in_child: bool = True
    """Write rows from a child process (:mod:`netwatch.storage.rowwriter`), so that binding them
    never holds the GIL the polling loop needs; an in-memory SQLite database is written in-process."""


class Daemon:
    """One running netwatch."""

    def __init__(
        self,
        options: DaemonOptions,
        inventory: Inventory,
        registry: Mapping[str, CollectorSpec[Any]] | None = None,
    ) -> None:
        self.options = options
        # Collector kinds by name; the demo passes REGISTRY with its simulated-fault wrappers.
        self.registry = REGISTRY if registry is None else registry
        self.state = LatestState(inventory=inventory)
        self.ctx = CollectContext()
        self._stop = asyncio.Event()
        self._engine: Engine | None = None
        self._writer: BatchWriter | None = None
        self._scheduler: PollScheduler | None = None
        self._web: WebServer | None = None
        self._run_row: dict[str, Any] = {}
        self._resume: tuple[dict[str, Any], dict[str, Any], dict[Any, Any]] = ({}, {}, {})
        self._dispatcher: Dispatcher | None = None
        self._sent: dict[str, datetime] = {}
        self.shard = parse_shard(options.shard)
        self._owned_sites: frozenset[str] | None = None
        self._owned_devices: frozenset[str] | None = None
        self._parent_devices: frozenset[str] = frozenset()
        self._parents_seen: dict[str, datetime] = {}
        self._parents_silenced: set[str] = set()
        self._apply_shard(inventory)
        self.ready = asyncio.Event()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or :meth:`stop`); return the exit code."""
        engine = self._engine = create_engine_for(self.options.db_url)
        await asyncio.to_thread(self._prepare_database, engine)
        opts = self.options
        spool = spool_for(
            opts.db_url, opts.spool_dir, opts.spool_max_bytes, opts.shard, os.environ.get("STATE_DIRECTORY")
        )
        writer = self._writer = BatchWriter(
            engine,
            max_queue=opts.queue_max_rows,
            spool=spool,
            in_process=in_memory(engine.url) or not opts.write_in_child,
        )
        writer.start()
        await self._open_collectors()
        recorder = self._recorder = PollRecorder(writer, self._run_row["run_id"], self.state.inventory)
        await self._start_alerting(self.state.inventory)
        _log_weak_settings(self.state.inventory)
        tracker = self._tracker = SiteTracker(
            self.state.inventory,
            writer,
            self._run_row["run_id"],
            statuses=self.state.sites,
            notify=self,
            owned=self._owned_sites,
        )
        tracker.resume(*self._resume)
        if self._dispatcher is not None:
            self._dispatcher.resume(self.state.sites)
        pipeline = Pipeline(self.registry, self.ctx, self.state, [recorder, tracker])
        scheduler = self._scheduler = PollScheduler(
            pipeline.run_once,
            on_misfire=self._count_misfire,
            on_clock_step=self._count_clock_step,
            start=pipeline.start,
        )
        host, port = parse_listen(self.options.listen)
        self._web = WebServer(
            make_registry(self.state, writer),
            self._health,
            host,
            port,
            engine,
            self.state,
            security=self.options.web_security,
        )
        await self._web.start()
        self._install_signals()
        scheduler.sync(self._active_jobs(self.state.inventory))
        tune_for_daemon()
        cap_heap_growth()
        intervals = [job.params.interval for job in self.state.inventory.jobs]
        collections = asyncio.create_task(run_collections(settle_after(intervals)))
        loop_watch = asyncio.create_task(watch_loop(self.state.loop_lag))
        scheduler.start()
        heartbeat = asyncio.create_task(self._heartbeat())
        ticker = asyncio.create_task(self._tick())
        history = asyncio.create_task(self._history(engine))
        parents = asyncio.create_task(self._parents_elsewhere(engine))
        month_figures = asyncio.create_task(self._month_figures(engine))
        log.info(
            "netwatch %s running: %d jobs, metrics on http://%s:%d/metrics",
            __version__,
            len(scheduler.jobs),
            host,
            port,
        )
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            heartbeat.cancel()
            ticker.cancel()
            history.cancel()
            parents.cancel()
            month_figures.cancel()
            collections.cancel()
            loop_watch.cancel()
            await self._shutdown()
        return 0

    def stop(self) -> None:
        """Ask the daemon to shut down cleanly."""
        self._stop.set()

    # -- start-up -------------------------------------------------------------------------

    def _prepare_database(self, engine: Engine) -> None:
        if engine.dialect.name == "sqlite":
            migrate.upgrade(engine)
        elif migrate.current_revision(engine) != migrate.head_revision():
            raise MigrationError(
                "the database schema is not at this netwatch's version: run `netwatch db upgrade --db URL` first"
            )
        sync_inventory(engine, self.state.inventory)
        self._resume = (
            repository.load_site_states(engine),
            repository.open_outages(engine),
            repository.open_link_outages(engine),
        )
        self._sent = repository.notifications_sent(engine, datetime.now(UTC) - NOTIFICATION_MEMORY)
        jobs = {(j.target.key, j.kind): j for j in self.state.inventory.jobs}
        for key, row in repository.load_target_states(engine).items():
            job = jobs.get(key)
            if job is not None:
                restore_health(self.state.job_state(job).health, row)
        run_id = repository.start_run(
            engine, instance=self.options.instance, shard=self.options.shard, version=__version__
        )
        now = datetime.now(UTC)
        self._run_row = {
            "run_id": run_id,
            "instance": self.options.instance,
            "shard": self.options.shard,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "version": __version__,
            "started_at": now,
            "heartbeat_at": now,
            "stopped_at": None,
        }

    async def _open_collectors(self) -> None:
        if any(job.kind == "icmp" for job in self.state.inventory.jobs):
            try:
                self.ctx.set("icmp", await IcmpEngine.open())
            except IcmpPermissionError as exc:
                self.state.disabled_kinds["icmp"] = str(exc)
                log.error("ICMP polling disabled, everything else keeps running: %s", exc)
        if any(job.kind == "snmp" for job in self.state.inventory.jobs):
            self.ctx.set("snmp", open_snmp_resources(snmp_credentials(self.state.inventory.credentials)))

    def _active_jobs(self, inventory: Inventory) -> list[Job]:
        owned = self._owned_devices
        return [
            job
            for job in inventory.jobs
            if job.kind not in self.state.disabled_kinds and (owned is None or job.target.key in owned)
        ]

    def _apply_shard(self, inventory: Inventory) -> None:
        """Work out what this shard owns in ``inventory``, and which other shards' devices it reads."""
        index, count = self.shard
        if count == 1:
            return
        self._owned_sites = self.state.owned_sites = owned_sites(inventory, self.shard)
        self._owned_devices = self.state.owned_devices = owned_devices(inventory, self.shard)
        parents = external_parents(inventory, self.shard)
        self._parent_devices = frozenset(n for n, d in inventory.devices.items() if d.site in parents)
        log.info(
            "shard %d/%d owns %d of %d sites and %d of %d devices; reads %d parent sites of other shards",
            index,
            count,
            len(self._owned_sites),
            len(inventory.sites),
            len(self._owned_devices),
            len(inventory.devices),
            len(parents),
        )

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))

    # -- running --------------------------------------------------------------------------

    def submit(self, events: Any) -> object:
        """Hand site events to the notification dispatcher, when one is configured."""
        return self._dispatcher.submit(events) if self._dispatcher is not None else None

    async def _start_alerting(self, inventory: Inventory) -> None:
        if self._dispatcher is not None and self._dispatcher.config == inventory.alerting:
            self._dispatcher.update_inventory(inventory)
            return
        if self._dispatcher is not None:
            await self._dispatcher.aclose()
            self._dispatcher = None
        if inventory.alerting is not None:
            assert self._writer is not None
            self._dispatcher = Dispatcher(
                inventory.alerting, inventory, SqlSentStore(self._writer, self._sent)
            )
            await self._dispatcher.start()
            self.state.notifications_failed = self._dispatcher.failed_total
            if self.state.sites:  # a reload that brings alerting in: start from the states known now
                self._dispatcher.resume(self.state.sites)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self._tracker.tick(datetime.now(UTC))

    async def _parents_elsewhere(self, engine: Engine) -> None:
        """Every tick: the ICMP health other shards wrote for the parent devices this shard's sites
        hang from, fed to the site engine as if polled here (so holds and suppression work alike);
        while the owning shard is silent, those parents are UNKNOWN rather than their last state."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            devices = self._parent_devices
            if not devices:
                continue
            try:
                rows = await asyncio.to_thread(repository.load_target_states, engine, devices)
                runs = await asyncio.to_thread(repository.shard_runs, engine)
            except Exception:  # a database hiccup must not stop polling; the next tick retries
                log.exception("could not read the parent devices' states written by other shards")
                continue
            now = datetime.now(UTC)
            live = repository.live_shards(runs, self.shard[1], now - timedelta(seconds=SHARD_SILENT_SECONDS))
            self.feed_parents(rows, live, now)

    def feed_parents(
        self, rows: Mapping[tuple[str, str], Mapping[str, Any]], live: frozenset[int], now: datetime
    ) -> None:
        """Feed the parent devices' persisted ICMP health (``rows`` by (device, kind)) to the site
        engine; a parent site whose shard is not in ``live`` becomes UNKNOWN instead."""
        inventory = self.state.inventory
        for job in inventory.jobs:
            device = job.target.key
            if device not in self._parent_devices or job.kind != "icmp":
                continue
            site = inventory.site_of_device(device)
            # Not the job's own state: this shard does not export another shard's device.
            health = TargetHealth(rules=site.rules)
            if shard_of_site(inventory, site.code, self.shard[1]) not in live:
                if device in self._parents_silenced:
                    continue
                self._parents_silenced.add(device)
                self._parents_seen.pop(device, None)
                self._silence_parent(site.code, device, now)
                continue
            row = rows.get((device, job.kind))
            if row is None or self._parents_seen.get(device) == row["updated_at"]:
                continue
            self._parents_silenced.discard(device)
            self._parents_seen[device] = row["updated_at"]
            restore_health(health, row)
            at = row.get("last_poll_at") or row["updated_at"]
            self._tracker.handle(self._tracker.engine.on_target(device, job.kind, health, at))

    def _silence_parent(self, site: str, device: str, now: datetime) -> None:
        # Its last known state is stale: the site is unmeasured (UNKNOWN) until a round of its
        # devices newer than now is read, and a failing dependent is held, then UNKNOWN, never DOWN.
        log.warning("the shard owning parent site %s is silent: treating %s as unknown", site, device)
        self._tracker.handle(self._tracker.engine.set_measured(site, False, now))

    def _count_misfire(self, job_key: str) -> None:
        self.state.misfires_total += 1

    def _count_clock_step(self, step: float) -> None:
        self.state.clock_steps_total += 1

    async def _heartbeat(self) -> None:
        while True:
            # No coarser than a round: after a kill -9 the report's unknown time (from the last
            # heartbeat to the next start) is then the dead time to within one round.
            intervals = [job.params.interval for job in self.state.inventory.jobs]
            await asyncio.sleep(max(1.0, min([HEARTBEAT_SECONDS, *intervals])))
            self._run_row["heartbeat_at"] = datetime.now(UTC)
            if self._writer is not None:
                self._writer.put("instance_runs", dict(self._run_row))

    async def _month_figures(self, engine: Engine) -> None:
        """Every minute: this month's availability per site, computed in a worker thread exactly as
        the report computes it, swapped into the state whole for the exporter."""
        await asyncio.sleep(MONTH_FIGURES_FIRST_SECONDS)
        while True:
            try:
                tz = self.state.inventory.timezone
                self.state.month_figures = await asyncio.to_thread(
                    month_figures, engine, tz, datetime.now(UTC), self._owned_sites
                )
            except Exception:  # a failing database must not stop polling; the next run retries
                log.exception("this month's availability could not be computed")
            await asyncio.sleep(MONTH_FIGURES_SECONDS)

    async def _history(self, engine: Engine) -> None:
        """Every few minutes: rollups, then retention, in a worker thread (never on the event loop)."""
        from netwatch.config.retention import RetentionPolicy
        from netwatch.storage.retention import apply_retention
        from netwatch.storage.rollups import roll_up

        def maintain(policy: RetentionPolicy) -> None:
            now = datetime.now(UTC)
            # Bounded: a long backlog (after downtime) is caught up over several runs.
            roll_up(engine, until=now, grace=policy.grace, max_batches=HISTORY_MAX_BATCHES)
            apply_retention(engine, policy, now)

        while True:
            # Wall-clock periods: every shard wakes for the same period, the first to take the lock
            # runs it, the others find it done (``singleton_runs``).
            now = time.time()
            boundary = (now // HISTORY_SECONDS + 1) * HISTORY_SECONDS
            await asyncio.sleep(boundary - now)
            period = datetime.fromtimestamp(boundary, UTC)
            policy = self.state.inventory.retention or RetentionPolicy()
            try:
                ran = await asyncio.to_thread(
                    run_once_per_period,
                    engine,
                    "history",
                    period,
                    functools.partial(maintain, policy),
                    instance=self.options.instance,
                    run_id=self._run_row["run_id"],
                )
                log.debug("history upkeep for %s: %s", period, "ran here" if ran else "done elsewhere")
            except Exception:  # history upkeep must never stop the daemon; the next run retries
                log.exception("rollups or retention failed")

    def _health(self) -> dict[str, object]:
        writer = self._writer
        return {
            "ok": self._scheduler is not None and not self._stop.is_set(),
            "version": __version__,
            "run_id": self._run_row.get("run_id"),
            "jobs": len(self._scheduler.jobs) if self._scheduler else 0,
            "storage_healthy": writer.healthy if writer else False,
            "storage_queue_length": writer.queue_length if writer else 0,
            "disabled_collectors": self.state.disabled_kinds,
            "config_last_reload_successful": self.state.config_last_reload_successful,
        }

    async def reload(self) -> bool:
        """Load the inventory again; swap it in whole, or keep the old one and say why."""
        try:
            inventory = await asyncio.to_thread(load_inventory, self.options.config)
        except ConfigError as exc:
            self.state.config_last_reload_successful = False
            for issue in exc.issues:
                log.error("reload rejected, keeping the running inventory: %s", issue)
            return False
        _log_weak_settings(inventory)
        self._apply_shard(inventory)
        self._tracker.owned = self._owned_sites
        self.state.replace_inventory(inventory)
        self._recorder.inventory = inventory
        self._tracker.replace_inventory(inventory, datetime.now(UTC))
        await self._start_alerting(inventory)
        snmp = self.ctx.get("snmp")
        if isinstance(snmp, SnmpResources):
            snmp.credentials = snmp_credentials(inventory.credentials)
        elif any(job.kind == "snmp" for job in inventory.jobs):
            self.ctx.set("snmp", open_snmp_resources(snmp_credentials(inventory.credentials)))
        if self._scheduler is not None:
            added, removed, changed = self._scheduler.sync(self._active_jobs(inventory))
            log.info(
                "reloaded %s: %d jobs added, %d removed, %d changed",
                self.options.config,
                added,
                removed,
                changed,
            )
        if self._engine is not None:
            await asyncio.to_thread(sync_inventory, self._engine, inventory)
        self.state.config_last_reload_successful = True
        return True

    # -- shutdown -------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self._scheduler is not None:
            log.info(
                "stopping: letting %d polls in flight finish, then flushing storage",
                self._scheduler.runs_in_flight,
            )
            self._scheduler.pause()
            await self._scheduler.drain(SHUTDOWN_GRACE_SECONDS)
            self._scheduler.shutdown()
        if self._web is not None:
            await self._web.stop()
        if self._dispatcher is not None:
            await self._dispatcher.aclose()
        icmp = self.ctx.get("icmp")
        if icmp is not None:
            await icmp.close()
        snmp = self.ctx.get("snmp")
        if isinstance(snmp, SnmpResources):
            await snmp.close()
        if self._writer is not None:
            now = datetime.now(UTC)
            self._writer.put("instance_runs", {**self._run_row, "heartbeat_at": now, "stopped_at": now})
            await asyncio.to_thread(self._writer.stop)
            # Rows in the spool are not lost: the next start writes them.
            unsaved = self._writer.queue_length - self._writer.spool_rows
            if unsaved:
                log.error("%d rows could not be written before exit", unsaved)
        if self._engine is not None:
            self._engine.dispose()
        writer = self._writer
        log.info(
            "stopped after %d polls; %d rows written, %d dropped",
            self.state.polls_total,
            writer.written_total if writer else 0,
            writer.dropped_total if writer else 0,
        )


def month_figures(
    engine: Engine, tz: str, now: datetime, owned: frozenset[str] | None = None
) -> dict[str, MonthFigures]:
    """Each site's local month to date in ``tz`` (availability and DOWN seconds), as the report has it;
    with ``owned`` (``--shard``) only those sites, the others being another shard's to compute and export."""
    month = now.astimezone(ZoneInfo(tz)).strftime("%Y-%m")
    # Only whether each site was polled: counting the month's polls (for the share on time, which
    # /metrics does not show) scanned the raw tail, up to an hour of every poll, every minute.
    data = load_month(engine, month, tz, count_polls=False)
    if owned is not None:
        data = dataclasses.replace(data, sites=tuple(s for s in data.sites if s.code in owned))
    report = compute(data, now)
    return {
        row.site.code: MonthFigures(
            month, row.figures.availability, row.figures[SiteState.DOWN].total_seconds()
        )
        for row in report.rows
    }


def sync_inventory(engine: Engine, inventory: Inventory) -> None:
    """Upsert the inventory at start and on reload, one instance at a time: shards upserting the
    same rows at once would deadlock or fail on unique keys."""
    with exclusive(engine, "sync_inventory"):
        repository.sync_inventory(engine, inventory)


def _log_weak_settings(inventory: Inventory) -> None:
    for issue in weak_settings(inventory):
        log.warning("weak setting: %s", issue)


async def run_daemon(options: DaemonOptions) -> int:
    """Load the inventory and run a daemon until stopped."""
    inventory = await asyncio.to_thread(load_inventory, options.config)
    return await Daemon(options, inventory).run()
