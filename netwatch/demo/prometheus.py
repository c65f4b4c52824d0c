"""``netwatch demo --prometheus``: a Prometheus beside the demo, with the shipped config and alert rules.

The config is a temporary copy of ``deploy/prometheus/prometheus.yml`` with the scrape target
rewritten to the demo's listen address and ``rule_files`` pointing at ``deploy/prometheus/rules``;
its ``alerting`` section is left out (the demo runs no Alertmanager). Prometheus listens on
127.0.0.1 only and keeps its TSDB in the demo's temporary directory.
"""

from __future__ import annotations

import shutil
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netwatch.demo import children

DEFAULT_PORT = 9090
READY_SECONDS = 30.0
JOB = "netwatch"


def deploy_dir() -> Path | None:
    """``deploy/prometheus`` of the source checkout (beside the package, else in the working directory)."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = root / "deploy" / "prometheus"
        if (candidate / "prometheus.yml").is_file():
            return candidate
    return None


def _tcp_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_port(preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` when free on 127.0.0.1, else any free port."""
    if _tcp_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(shipped: Path, target: str) -> dict[str, Any]:
    """The shipped config scraping ``target`` (HOST:PORT), with absolute rule paths and no Alertmanager."""
    config: dict[str, Any] = yaml.safe_load((shipped / "prometheus.yml").read_text(encoding="utf-8"))
    config["rule_files"] = [str((shipped / pattern).resolve()) for pattern in config.get("rule_files", [])]
    config.pop("alerting", None)
    for job in config.get("scrape_configs", []):
        if job.get("job_name") == JOB:
            job["static_configs"] = [{"targets": [target]}]
    return config


@dataclass
class PrometheusServer(children.Child):
    """The running Prometheus: its process, log and URL."""

    url: str


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_prometheus(workdir: Path, target: str) -> PrometheusServer | str:
    """Start Prometheus scraping ``target``; or return why not (not installed, no config, failed)."""
    program = shutil.which("prometheus")
    if program is None:
        return "prometheus is not on PATH (Debian: apt install prometheus); going on without it"
    shipped = deploy_dir()
    if shipped is None:
        return "deploy/prometheus/ not found (run from a netwatch checkout); going on without Prometheus"
    home = workdir / "prometheus"
    home.mkdir()
    config = home / "prometheus.yml"
    config.write_text(yaml.safe_dump(demo_config(shipped, target), sort_keys=False), encoding="utf-8")
    port = choose_port()
    log = home / "prometheus.log"
    proc = children.spawn(
        [
            program,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1d",
        ],
        log,
    )
    server = PrometheusServer(proc, log, f"http://127.0.0.1:{port}")
    give_up = time.monotonic() + READY_SECONDS
    while not _ready(server.url):
        if proc.poll() is not None or time.monotonic() > give_up:
            server.stop()
            return f"prometheus did not start; going on without it:\n{children.tail(log)}"
        time.sleep(0.2)
    return server
