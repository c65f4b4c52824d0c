"""`netwatch demo`: the built-in loopback network runs, serves the province on /metrics, and Ctrl-C
stops it cleanly, leaving no temporary files behind."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.support.processes import free_port, netwatch_process, samples, scrape, stop

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ICMP on loopback needs root (CI runs as root)")


def test_demo_serves_the_province_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    with netwatch_process("demo", "--listen", f"127.0.0.1:{port}", port=port, cwd=tmp_path) as proc:
        deadline = time.monotonic() + 30
        while True:
            metrics = scrape(port)
            districts = samples(metrics, "netwatch_site_info", kind="district")
            up = samples(metrics, "netwatch_site_state", state="up")
            if (len(districts) == 18 and sum(up) == len(samples(metrics, "netwatch_site_info"))) or (
                time.monotonic() > deadline
            ):
                break
            time.sleep(0.5)
        code, out, err = stop(proc, signal.SIGINT)
    assert len(districts) == 18
    assert samples(metrics, "netwatch_site_info", site="TK", name="Thành ủy Tam Kỳ") == [1.0]
    assert sum(up) == len(samples(metrics, "netwatch_site_info")), "every loopback site is up"
    assert code == 0, err
    assert f"http://127.0.0.1:{port}/metrics" in out
    workdir = re.search(r"database:\s+(\S+)", out)
    assert workdir is not None and not Path(workdir.group(1)).parent.exists(), "temporary database removed"
