"""The README's first command, run as written in a fresh copy of the source tree: it installs
netwatch from scratch and starts the demo, which must serve the province on the default port, and
Ctrl-C (SIGINT to the whole process group, as a terminal sends it) must stop everything cleanly.

The command is read from README.md (the first non-comment line of its first ``sh`` block), so the
test follows the README when the README changes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import http_get

REPO = Path(__file__).resolve().parents[1]
DEMO_PORT = 9555
INSTALL_AND_START_SECONDS = 230.0  # a cold pip cache on a new machine; ~100-140 s measured
STOP_SECONDS = 30.0
COPY_IGNORE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".import_linter_cache",
    "build",
    "dist",
    "*.egg-info",
    "*.db",
    "*.db-*",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="the command uses sudo, which would ask for a password"),
]


def first_command(readme: str) -> str:
    """The first non-comment, non-blank line of the README's first ```sh block."""
    block = re.search(r"^```sh\n(.*?)^```", readme, re.S | re.M)
    assert block is not None, "README.md has no ```sh block"
    lines = [line.strip() for line in block.group(1).splitlines()]
    command = next((line for line in lines if line and not line.startswith("#")), None)
    assert command is not None, "the README's first sh block has no command"
    return command


def listening(port: int) -> bool:
    """Whether a server accepts connections on 127.0.0.1:``port`` (the client's TIME_WAIT
    sockets from the scrapes may still hold the port for a plain bind)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def processes_in(directory: Path) -> list[int]:
    """PIDs of processes whose working directory, executable or program path lies under
    ``directory`` (sudo runs the command in a pty session of its own, so the process group alone
    would miss it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            places = [Path(os.readlink(entry / "cwd")), Path(os.readlink(entry / "exe"))]
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # A venv's python resolves to the base interpreter: its argv[0] still names the venv.
        places += [Path(os.fsdecode(arg)) for arg in argv[:2] if arg.startswith(b"/")]
        if any(place.is_relative_to(directory) for place in places):
            found.append(int(entry.name))
    return found


def clean_env() -> dict[str, str]:
    """The environment of a person at a shell: no test venv on PATH, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in p + "/"
    )
    return env


@pytest.fixture
def source_copy(tmp_path: Path) -> Iterator[Path]:
    """The source tree without venvs, git or caches; any process left running in it is killed."""
    src = tmp_path / "netwatch"
    shutil.copytree(REPO, src, ignore=COPY_IGNORE, symlinks=True)
    yield src
    for pid in processes_in(src):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_readme_first_command_installs_and_runs_the_demo(source_copy: Path, tmp_path: Path) -> None:
    command = first_command((REPO / "README.md").read_text(encoding="utf-8"))
    if listening(DEMO_PORT):
        pytest.skip(f"127.0.0.1:{DEMO_PORT} is in use, and the README's command needs that port")
    log_path = tmp_path / "command.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=source_copy,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        metrics = wait_for_metrics(proc, log_path)
        status, page = http_get(f"http://127.0.0.1:{DEMO_PORT}/", timeout=10)
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=STOP_SECONDS)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log_path.read_text(encoding="utf-8", errors="replace")
    print(f"README command: {command}\n--- output (tail) ---\n{output[-3000:]}")
    assert re.search(r'^netwatch_site_state\{[^}]*state="up"[^}]*\} 1\.0$', metrics, re.M), metrics[-2000:]
    assert status == 200 and "Quảng Nam" in page
    assert code == 0, output[-3000:]
    assert processes_in(source_copy) == [], "processes left running after Ctrl-C"
    assert not listening(DEMO_PORT), f"something still listens on {DEMO_PORT} after exit"


def wait_for_metrics(proc: subprocess.Popen[bytes], log_path: Path) -> str:
    """/metrics of the demo once it reports site states; fails if the command exits or time runs out."""
    deadline = time.monotonic() + INSTALL_AND_START_SECONDS
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"the command exited {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}"
            )
        try:
            status, body = http_get(f"http://127.0.0.1:{DEMO_PORT}/metrics", timeout=2)
            if status == 200 and 'state="up"} 1.0' in body:
                return body
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"no site states on /metrics in time:\n{log_path.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(1)
