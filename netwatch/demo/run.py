"""``netwatch demo``: the daemon on the built-in loopback network, with simulated SNMP agents and faults.

Start-up order: temporary directory → snmpsim (when installed) → inventory → Prometheus (when asked
and installed) → daemon. Whatever way the demo ends (Ctrl-C, SIGTERM, an error), the children are
stopped and the temporary directory removed (unless ``--keep-db``).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from collectors import REGISTRY
from netwatch.config import load_inventory
from netwatch.daemon import Daemon, DaemonOptions
from netwatch.demo import recordings
from netwatch.demo.agents import INSTALL_HINT, SnmpAgents, choose_port, responder, start_agents
from netwatch.demo.faults import DEFAULT_PERIOD, REASON, FaultSchedule, faulted_registry
from netwatch.demo.inventory import (
    TIMEZONE,
    SnmpDevice,
    demo_faults,
    demo_inventory,
    snmp_devices,
    write_demo_inventory,
)
from netwatch.demo.prometheus import PrometheusServer, start_prometheus
from netwatch.web import parse_listen


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As the server itself binds: a previous demo's sockets in TIME_WAIT do not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def recording(data: Path, device: SnmpDevice) -> str:
    """The ``.snmprec`` text answering for ``device``."""
    if device.model == "router":
        assert device.traffic is not None
        return recordings.router(data, device.device, device.wan_alias, device.traffic)
    if device.model == "switch":
        return recordings.switch(data, device.device)
    if device.model == "server":
        return recordings.server(data, device.device, device.cpu_base, device.memory_share)
    if device.model == "san":
        return recordings.san(data, device.device)
    return recordings.ups(data, device.device)


def _start_snmp(workdir: Path) -> tuple[SnmpAgents | None, str]:
    data = recordings.snmpsim_data_dir()
    if responder() is None or data is None:
        return None, f"SNMP agents: off (snmpsim is not installed: {INSTALL_HINT}); ICMP only"
    plan = snmp_devices()
    port = choose_port([d.address for d in plan])
    texts = {d.community: recording(data, d) for d in plan}
    agents = start_agents(workdir, texts, [d.address for d in plan], port)
    return agents, f"SNMP agents: snmpsim pid {agents.pid}, {len(plan)} devices on 127.0.x.x:{port} (UDP)"


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Until the daemon installs its own handlers, SIGTERM unwinds like Ctrl-C so children are stopped."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _banner(
    host: str,
    port: int,
    config: Path,
    db: Path,
    sites: int,
    devices: int,
    notes: list[str],
    schedule: FaultSchedule,
) -> str:
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    month = datetime.now(ZoneInfo(TIMEZONE)).strftime("%Y-%m")
    lines = [
        f"netwatch demo: {sites} sites, {devices} devices on loopback (127.0.0.0/8)",
        f"  status page: {base}/",
        f"  metrics:     {base}/metrics",
        f"  health:      {base}/healthz",
        f"  reports:     {base}/reports/availability?month={month}&format=html",
        *(f"  {note}" for note in notes),
        f"  inventory:   {config}",
        f"  database:    {db}",
    ]
    if schedule.faults:
        lines.append(f"  SIMULATED faults (nothing really goes down; polls fail with reason {REASON!r}):")
        lines.extend(f"    {line}" for line in schedule.describe())
    else:
        lines.append("  simulated faults: off")
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)


def run_demo(
    *,
    listen: str = "127.0.0.1:9555",
    keep_db: bool = False,
    prometheus: bool = False,
    fault_period: float = DEFAULT_PERIOD,
) -> int:
    """Run the demo until Ctrl-C or SIGTERM; return the exit code. ``fault_period`` 0 turns faults off."""
    host, port = parse_listen(listen)
    if not _port_free(host, port):
        print(f"netwatch demo: {listen} is in use; pass --listen 127.0.0.1:OTHERPORT", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="netwatch-demo-"))
    agents: SnmpAgents | None = None
    prom: PrometheusServer | None = None
    try:
        with _sigterm_exits():
            agents, snmp_note = _start_snmp(workdir)
            document = demo_inventory(snmp_port=agents.port if agents else None, faults=fault_period > 0)
            config = write_demo_inventory(workdir, document)
            inventory = load_inventory(config)
            schedule = FaultSchedule(demo_faults(document) if fault_period > 0 else (), fault_period or 1.0)
            notes = [snmp_note]
            if prometheus:
                started = start_prometheus(workdir, f"{host}:{port}")
                if isinstance(started, PrometheusServer):
                    prom = started
                    notes.append(f"prometheus:  {prom.url}/ (pid {prom.pid}, job 'netwatch')")
                else:
                    notes.append(f"prometheus:  {started}")
            db_path = workdir / "netwatch-demo.db"
            options = DaemonOptions(
                config=config, db_url=f"sqlite:///{db_path}", listen=listen, instance="demo"
            )
            text = _banner(
                host, port, config, db_path, len(inventory.sites), len(inventory.devices), notes, schedule
            )
            print(text, flush=True)
            schedule.start()
            daemon = Daemon(options, inventory, registry=faulted_registry(REGISTRY, schedule))
        return asyncio.run(daemon.run())
    except KeyboardInterrupt:
        return 0
    finally:
        for child in (prom, agents):
            if child is not None:
                child.stop()
        if keep_db:
            print(f"netwatch demo: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
