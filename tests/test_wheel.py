"""A plain (non-editable) wheel install works: migrations ship inside it, `db upgrade` and `check` run."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = next(dist.glob("netwatch-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True, check=False
    )
    assert install.returncode == 0, install.stderr
    netwatch = env_dir / "bin" / "netwatch"
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NETWATCH_DB")}
    upgrade = subprocess.run(
        [str(netwatch), "db", "upgrade", "--db", "sqlite:///fresh.db"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=clean_env,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    with sqlite3.connect(workdir / "fresh.db") as conn:
        tables = {
            row[0] for row in conn.execute("select name from sqlite_master where type in ('table', 'view')")
        }
    assert {
        "polls",
        "icmp_samples",
        "instance_runs",
        "target_states",
        "site_states",
        "alembic_version",
    } <= tables
    check = subprocess.run(
        [str(netwatch), "check", str(REPO / "config" / "loopback.example.yaml")],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=clean_env,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    help_text = subprocess.run(
        [str(netwatch), "--help"], capture_output=True, text=True, env=clean_env, check=True
    )
    for command in ("run", "demo", "check", "config", "probe", "db"):
        assert f"  {command} " in help_text.stdout
