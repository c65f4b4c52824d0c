"""Child processes of ``netwatch demo`` (snmpsim, Prometheus): started with the demo, always stopped with it.

Children run in their own session, so Ctrl-C in the terminal reaches only netwatch, which stops the
daemon first and then its children by PID. Should netwatch itself be killed outright, Linux's
parent-death signal still sends each child SIGTERM.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
STOP_SECONDS = 10.0


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: only async-signal-safe work (one prctl call).
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output in ``log``, in its own session, bound to die with netwatch."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            # preexec_fn is unsafe only with threads running; the demo starts children before any.
            preexec_fn=_die_with_parent,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after :data:`STOP_SECONDS`; reap it either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_SECONDS)


@dataclass
class Child:
    """A running child process of the demo and its log."""

    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        stop(self.proc)


def tail(log: Path, chars: int = 2000) -> str:
    """The end of a child's log, for an error message."""
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
