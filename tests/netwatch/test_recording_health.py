"""The recorder persists a target's health when it changes, and otherwise only every minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from collectors.base import CollectContext, CollectorParams, CollectorSpec, CollectResult, Measurement, Target
from netwatch.config import load_inventory
from netwatch.health import State
from netwatch.pipeline import Pipeline
from netwatch.recording import HEALTH_REFRESH_SECONDS, PollRecorder
from netwatch.state import LatestState
from tests.netwatch.test_recording import Rows

INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
site_kinds:
  district: {}
sites:
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district}
devices:
  - name: tk-router
    site: TK
    address: 127.0.0.1
    collectors:
      icmp: {interval: 10}
"""

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


async def test_health_rows_follow_changes_and_refresh_every_minute(tmp_path: Path) -> None:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    inventory = load_inventory(config)
    # 12 good rounds (2 minutes), 4 failed ones (down after 3), then 2 good ones.
    answers = [True] * 12 + [False] * 4 + [True] * 2

    async def collect(target: Target, params: CollectorParams, ctx: CollectContext) -> CollectResult:
        ok = answers.pop(0)
        received = 5.0 if ok else 0.0
        return CollectResult(
            ok,
            (Measurement("icmp_packets_sent", 5.0), Measurement("icmp_packets_received", received)),
            reason=None if ok else "timeout",
        )

    rows = Rows()
    state = LatestState(inventory=inventory)
    pipeline = Pipeline(
        {"icmp": CollectorSpec("icmp", CollectorParams, collect)},
        CollectContext(),
        state,
        [PollRecorder(rows, "run-1", inventory)],
    )
    [job] = inventory.jobs
    polls = len(answers)
    for n in range(polls):
        await pipeline.run_once(job, T0 + timedelta(seconds=10 * n))

    written = rows.of("target_states")
    assert len(rows.of("polls")) == polls  # every poll still counts for coverage
    states = [(r["state"], r["failed_rounds"], r["good_rounds"]) for r in written]
    assert states == [
        (State.UP.value, 0, 1),  # the first round: UNKNOWN → UP, written at once
        (State.UP.value, 0, 7),  # nothing changed for a minute (HEALTH_REFRESH_SECONDS): refreshed
        (State.UP.value, 1, 0),  # each failed round before DOWN: a restart resumes the count
        (State.UP.value, 2, 0),
        (State.DOWN.value, 3, 0),  # the 4th failed round changes nothing a restart needs
        (State.UP.value, 0, 1),  # back up at once; the last round changes nothing
    ]
    assert HEALTH_REFRESH_SECONDS == 60
