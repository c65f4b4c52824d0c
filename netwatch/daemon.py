"""Wire everything together and run until told to stop.

The only module that imports everything: inventory → scheduler → pipeline → (state, storage)
→ exporter → web. SIGTERM/SIGINT stop scheduling, let polls in flight finish, flush storage and
exit 0; SIGHUP reloads the inventory, keeping the old one if the new one is invalid.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from collectors import REGISTRY, CollectContext
from collectors.icmp import IcmpEngine, IcmpPermissionError
from collectors.snmp.collector import SnmpResources, open_snmp_resources
from netwatch import __version__
from netwatch.alerting import Dispatcher
from netwatch.config import load_inventory
from netwatch.config.inventory import Inventory, Job
from netwatch.config.snmp import snmp_credentials
from netwatch.errors import ConfigError, MigrationError
from netwatch.exporter import make_registry
from netwatch.pipeline import Pipeline
from netwatch.recording import PollRecorder, restore_health
from netwatch.scheduler import PollScheduler
from netwatch.sentstore import SqlSentStore
from netwatch.sites import SiteTracker
from netwatch.state import LatestState
from netwatch.storage import migrate, repository
from netwatch.storage.engine import create_engine_for
from netwatch.storage.writer import BatchWriter
from netwatch.web import WebServer, parse_listen

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
TICK_SECONDS = 1.0
NOTIFICATION_MEMORY = timedelta(days=7)
"""How far back sent notifications are remembered across a restart (longer than any repeat interval)."""
SHUTDOWN_GRACE_SECONDS = 10.0
HISTORY_SECONDS = 300.0
"""How often rollups and retention run."""
HISTORY_MAX_BATCHES = 48


@dataclass(frozen=True)
class DaemonOptions:
    """What ``netwatch run`` (or ``demo``) asks for."""

    config: Path
    db_url: str
    listen: str = "127.0.0.1:9555"
    instance: str = socket.gethostname()
    shard: str = "0/1"


class Daemon:
    """One running netwatch."""

    def __init__(self, options: DaemonOptions, inventory: Inventory) -> None:
        self.options = options
        self.state = LatestState(inventory=inventory)
        self.ctx = CollectContext()
        self._stop = asyncio.Event()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._engine: Engine | None = None
        self._writer: BatchWriter | None = None
        self._scheduler: PollScheduler | None = None
        self._web: WebServer | None = None
        self._run_row: dict[str, Any] = {}
        self._resume: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        self._dispatcher: Dispatcher | None = None
        self._sent: dict[str, datetime] = {}
        self.ready = asyncio.Event()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or :meth:`stop`); return the exit code."""
        engine = self._engine = create_engine_for(self.options.db_url)
        await asyncio.to_thread(self._prepare_database, engine)
        writer = self._writer = BatchWriter(engine)
        writer.start()
        await self._open_collectors()
        recorder = self._recorder = PollRecorder(writer, self._run_row["run_id"], self.state.inventory)
        await self._start_alerting(self.state.inventory)
        tracker = self._tracker = SiteTracker(
            self.state.inventory, writer, self._run_row["run_id"], statuses=self.state.sites, notify=self
        )
        tracker.resume(*self._resume)
        if self._dispatcher is not None:
            self._dispatcher.resume(self.state.sites)
        pipeline = Pipeline(REGISTRY, self.ctx, self.state, [recorder, tracker])
        self._pipeline = pipeline
        scheduler = self._scheduler = PollScheduler(self._run_job, on_misfire=self._count_misfire)
        host, port = parse_listen(self.options.listen)
        self._web = WebServer(make_registry(self.state, writer), self._health, host, port, engine, self.state)
        await self._web.start()
        self._install_signals()
        scheduler.sync(self._active_jobs(self.state.inventory))
        scheduler.start()
        heartbeat = asyncio.create_task(self._heartbeat())
        ticker = asyncio.create_task(self._tick())
        history = asyncio.create_task(self._history(engine))
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
        repository.sync_inventory(engine, self.state.inventory)
        self._resume = (repository.load_site_states(engine), repository.open_outages(engine))
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
        return [job for job in inventory.jobs if job.kind not in self.state.disabled_kinds]

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))

    # -- running --------------------------------------------------------------------------

    async def _run_job(self, job: Job, scheduled_at: datetime) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._pipeline.run_once(job, scheduled_at)
        finally:
            if task is not None:
                self._in_flight.discard(task)

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

    def _count_misfire(self, job_key: str) -> None:
        self.state.misfires_total += 1

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            self._run_row["heartbeat_at"] = datetime.now(UTC)
            if self._writer is not None:
                self._writer.put("instance_runs", dict(self._run_row))

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
            await asyncio.sleep(HISTORY_SECONDS)
            try:
                await asyncio.to_thread(maintain, self.state.inventory.retention or RetentionPolicy())
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
            await asyncio.to_thread(repository.sync_inventory, self._engine, inventory)
        self.state.config_last_reload_successful = True
        return True

    # -- shutdown -------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        log.info("stopping: letting %d polls in flight finish, then flushing storage", len(self._in_flight))
        if self._scheduler is not None:
            self._scheduler.pause()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=SHUTDOWN_GRACE_SECONDS)
        if self._scheduler is not None:
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
            if self._writer.queue_length:
                log.error("%d rows could not be written before exit", self._writer.queue_length)
        if self._engine is not None:
            self._engine.dispose()
        writer = self._writer
        log.info(
            "stopped after %d polls; %d rows written, %d dropped",
            self.state.polls_total,
            writer.written_total if writer else 0,
            writer.dropped_total if writer else 0,
        )


async def run_daemon(options: DaemonOptions) -> int:
    """Load the inventory and run a daemon until stopped."""
    inventory = await asyncio.to_thread(load_inventory, options.config)
    return await Daemon(options, inventory).run()
