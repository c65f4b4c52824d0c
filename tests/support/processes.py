"""Start netwatch as a real subprocess and talk to it over HTTP, as an operator would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie waiting for its parent to reap it has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """Status and body of a GET (errors as their status)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed by prometheus_client's own text parser: {(sample name, sorted labels): value}."""
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, body
    return parsed(body)


def parsed(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """An exposition body by prometheus_client's own text parser: {(sample name, sorted labels): value}."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def samples(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, /, **labels: str
) -> list[float]:
    """Values of every sample called ``name`` whose labels include ``labels``."""
    return [v for (n, ls), v in metrics.items() if n == name and all((k, labels[k]) in ls for k in labels)]


@contextmanager
def netwatch_process(
    *args: str, port: int, cwd: Path, ready_timeout: float = 30.0
) -> Iterator[subprocess.Popen[str]]:
    """Run ``netwatch ARGS`` until /healthz answers; stop it (SIGTERM, then SIGKILL) on exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "netwatch", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"netwatch exited {proc.returncode}:\n{out}\n{err}")
            try:
                status, body = http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if status == 200 and json.loads(body).get("ok"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("netwatch did not become healthy in time")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 20) -> tuple[int, str, str]:
    """Send ``sig`` and wait; return (exit code, stdout, stderr)."""
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def terminate(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM a helper server, SIGKILL it if it lingers; reap it either way."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
