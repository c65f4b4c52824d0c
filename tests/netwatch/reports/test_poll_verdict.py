"""The on-time verdict the availability report counts is the recorder's, by the same rule as
``netwatch_polls_late_total``: judged at poll time against the job's configured interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from collectors.base import CollectContext, CollectorParams, CollectorSpec, CollectResult, Target
from netwatch.config import load_inventory
from netwatch.pipeline import Pipeline
from netwatch.recording import PollRecorder
from netwatch.state import LatestState
from tests.netwatch.test_recording import Rows

INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
credentials:
  lab: {version: "2c", community: "verdict-test"}
site_kinds:
  district: {}
sites:
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district}
devices:
  - name: tk-router
    site: TK
    address: 127.0.0.1
    collectors:
      snmp: {credential: lab, interval: 60}
"""


async def test_a_poll_is_on_time_within_a_tenth_of_its_interval(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)

    async def collect(target: Target, params: CollectorParams, ctx: CollectContext) -> CollectResult:
        return CollectResult(True, ())

    rows = Rows()
    state = LatestState(inventory=inventory)
    pipeline = Pipeline(
        {"snmp": CollectorSpec("snmp", CollectorParams, collect)},
        CollectContext(),
        state,
        [PollRecorder(rows, "run-1", inventory)],
    )
    (job,) = inventory.jobs
    now = datetime.now(UTC)
    # Interval 60 s: a tenth is 6 s. Started 2 s late (on time), 30 s late (late), early (on time).
    for lag in (2, 30, -1):
        await pipeline.run_once(job, now - timedelta(seconds=lag))

    polls = [row for table, row in rows.rows if table == "polls"]
    assert [row["on_time"] for row in polls] == [True, False, True]
    assert state.polls_late_total == 1  # the exporter's counter agrees with the rows
