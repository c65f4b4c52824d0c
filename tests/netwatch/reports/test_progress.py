"""The progress bar of long reports and rebuilds: steps in order to the total, drawn only for a
person at a terminal, never in piped output."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from netwatch.reports.availability import compute, load_month
from netwatch.reports.progress import ProgressBar
from netwatch.storage.engine import create_engine_for
from netwatch.storage.migrate import upgrade
from tests.netwatch.reports.month_data import MONTH, SITES, local, populate
from tests.netwatch.reports.test_cli_report import netwatch


def test_bar_draws_on_a_terminal_after_the_delay_and_not_when_piped() -> None:
    screen = io.StringIO()
    with ProgressBar("Đang tính", console=Console(file=screen, force_terminal=True), delay=0) as bar:
        bar(1, 4)
        bar(2, 4)
        assert bar.shown
    assert "Đang tính" in screen.getvalue()

    piped = io.StringIO()
    with ProgressBar("Đang tính", stream=piped, delay=0) as quiet:
        quiet(1, 4)
    assert not quiet.enabled and not quiet.shown
    assert piped.getvalue() == ""

    with ProgressBar("quick", console=Console(file=io.StringIO(), force_terminal=True)) as quick:
        quick(1, 2)  # within the delay: a quick job shows nothing
        assert not quick.shown


def test_report_steps_count_sites_to_the_total_and_piped_output_is_clean(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nw.db'}"
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        populate(engine)
        steps: list[tuple[int, int]] = []
        compute(load_month(engine, MONTH), local(11, 5, 0), progress=lambda *step: steps.append(step))
    finally:
        engine.dispose()
    assert steps == [(n, len(SITES)) for n in range(1, len(SITES) + 1)]

    env = {"TERM": "xterm-256color", "COLUMNS": "120"}
    result = netwatch("report", "availability", "--month", MONTH, "--format", "csv", "--db", url, env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    assert result.stdout.startswith("\ufeff".encode())
    assert b"\x1b" not in result.stdout  # no terminal escapes in what a script reads

    rollup = netwatch("db", "rollup", "--from", "2026-10-01", "--to", "2026-10-02", "--db", url, env=env)
    assert rollup.returncode == 0, rollup.stderr.decode()
    assert rollup.stderr == b""
    assert [line.split(":")[0] for line in rollup.stdout.decode().splitlines()] == [
        "interface_5m",
        "interface_1h",
        "icmp_5m",
        "icmp_1h",
        "polls_1h",
    ]
