"""Webhooks against a real HTTP receiver on loopback: the exact Alertmanager JSON, retries, hangs."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from netwatch.alerting.dispatcher import Dispatcher, MemoryStore
from netwatch.config.alerting import AlertingConfig
from netwatch.config.inventory import Inventory
from tests.netwatch.alerting.conftest import (
    COMMUNES,
    T0,
    FakeClock,
    Receiver,
    district_down,
    district_up,
    ev,
    free_port,
)

TOKEN = "tok-3f9a-very-secret"


@pytest.fixture
async def second_receiver() -> AsyncIterator[Receiver]:
    """Another receiver, for a second channel."""
    rec = Receiver(port=free_port())
    yield rec
    await rec.stop()


async def wait_for(condition: Any, rounds: int = 500) -> None:
    """Wait for ``condition()`` to hold, at most ``rounds`` short polls (about 5 s)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def hook(rec: Receiver, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": rec.url, **extra}


EXPECTED_LABELS = {
    "alertname": "NetwatchSiteDown",
    "site": "TK",
    "district": "TK",
    "province": "QNM",
    "kind": "district",
    "severity": "critical",
}


async def test_alertmanager_v4_json_for_a_district_and_its_communes(
    receiver: Receiver, inventory: Inventory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await receiver.start()
    cfg = AlertingConfig.model_validate(
        {
            "language": "en",
            "external_url": "http://127.0.0.1:9555/",
            "channels": {"ops-webhook": hook(receiver, receiver="noc", bearer_token="${HOOK_TOKEN}")},
        },
        context={"env": {"HOOK_TOKEN": TOKEN}},
    )
    async with Dispatcher(cfg, inventory, MemoryStore(), clock=clock) as dispatcher:
        clock.advance(timedelta(seconds=45))
        assert dispatcher.submit(district_down())
        await asyncio.wait_for(dispatcher.flush(), 10)
        clock.advance(timedelta(hours=1, minutes=5))
        dispatcher.submit(district_up(T0 + timedelta(hours=1, minutes=5)))
        await asyncio.wait_for(dispatcher.flush(), 10)

    assert len(receiver.requests) == 2
    firing, resolved = receiver.requests
    alert = firing["alerts"][0]
    fingerprint = alert["fingerprint"]
    annotations = {
        "summary": "Thành ủy Tam Kỳ (TK) is down since 28/11/2026 21:05:30 (GMT+7)",
        "description": alert["annotations"]["description"],
        "site_name": "Thành ủy Tam Kỳ",
        "district_name": "Thành ủy Tam Kỳ",
        "state": "down",
        "unreachable_sites": ",".join(COMMUNES),
        "unreachable_count": "5",
        "duration": "45 s",
        "duration_seconds": "45",
    }
    assert firing == {
        "version": "4",
        "groupKey": '{}/netwatch:{alertname="NetwatchSiteDown", site="TK"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "noc",
        "groupLabels": {"alertname": "NetwatchSiteDown", "site": "TK"},
        "commonLabels": EXPECTED_LABELS,
        "commonAnnotations": annotations,
        "externalURL": "http://127.0.0.1:9555/",
        "alerts": [
            {
                "status": "firing",
                "labels": EXPECTED_LABELS,
                "annotations": annotations,
                "startsAt": "2026-11-28T14:05:30Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9555/",
                "fingerprint": fingerprint,
            }
        ],
    }
    assert "  - Đảng ủy phường số 5 (Tam Kỳ) (TK-C05)\n" in annotations["description"]
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0

    [end] = resolved["alerts"]
    assert (resolved["status"], end["status"]) == ("resolved", "resolved")
    assert (end["startsAt"], end["endsAt"]) == ("2026-11-28T14:05:30Z", "2026-11-28T15:10:30Z")
    assert end["fingerprint"] == fingerprint  # receivers pair firing and resolved by it
    assert end["annotations"]["unreachable_sites"] == ",".join(COMMUNES)
    assert end["annotations"]["summary"] == "Thành ủy Tam Kỳ (TK) is back after 1 h 5 min"

    assert all(h["Authorization"] == f"Bearer {TOKEN}" for h in receiver.headers)
    assert all(h["Content-Type"] == "application/json; charset=utf-8" for h in receiver.headers)
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(cfg)


async def test_basic_auth_reaches_the_receiver(receiver: Receiver, inventory: Inventory) -> None:
    await receiver.start()
    channel = hook(receiver, basic_auth={"username": "netwatch", "password": "mật-khẩu"})
    cfg = AlertingConfig.model_validate({"channels": {"ops": channel}})
    async with Dispatcher(cfg, inventory, MemoryStore()) as dispatcher:
        dispatcher.submit([ev("HA", "up", "down", T0)])
        await asyncio.wait_for(dispatcher.flush(), 10)
    expected = base64.b64encode("netwatch:mật-khẩu".encode()).decode()
    assert receiver.headers[0]["Authorization"] == f"Basic {expected}"
    assert receiver.requests[0]["alerts"][0]["labels"]["site"] == "HA"


async def test_refused_then_500s_then_delivered(receiver: Receiver, inventory: Inventory) -> None:
    retry = {"attempts": 8, "initial_backoff": 0.05, "max_backoff": 0.4}
    cfg = AlertingConfig.model_validate({"channels": {"ops": hook(receiver)}, "retry": retry})
    async with Dispatcher(cfg, inventory, MemoryStore()) as dispatcher:
        dispatcher.submit([ev("HA", "up", "down", T0)])
        await wait_for(lambda: dispatcher.retried_total["ops"] >= 1)  # connection refused: nobody listens
        receiver.statuses = [500, 500]
        await receiver.start()
        await asyncio.wait_for(dispatcher.flush(), 10)
        assert receiver.answered == [500, 500, 200]
        assert dispatcher.retried_total["ops"] >= 3
        assert dispatcher.sent_total["ops"] == 1
        assert dispatcher.failed_total["ops"] == 0
    assert receiver.requests[0] == receiver.requests[2]


async def test_a_receiver_that_keeps_failing_is_given_up_and_counted(
    receiver: Receiver, inventory: Inventory
) -> None:
    receiver.statuses = [500] * 10
    await receiver.start()
    retry = {"attempts": 3, "initial_backoff": 0.01, "max_backoff": 0.02}
    cfg = AlertingConfig.model_validate({"channels": {"ops": hook(receiver)}, "retry": retry})
    async with Dispatcher(cfg, inventory, MemoryStore()) as dispatcher:
        dispatcher.submit([ev("HA", "up", "down", T0)])
        await asyncio.wait_for(dispatcher.flush(), 10)
        assert receiver.answered == [500, 500, 500]
        assert dispatcher.failed_total == {"ops": 1}
        assert dispatcher.sent_total["ops"] == 0


async def test_submit_returns_while_a_receiver_hangs_and_other_channels_still_deliver(
    receiver: Receiver, second_receiver: Receiver, inventory: Inventory
) -> None:
    receiver.hang = True
    await receiver.start()
    await second_receiver.start()
    channels = {"hung": hook(receiver, timeout=60), "ok": hook(second_receiver)}
    cfg = AlertingConfig.model_validate({"channels": channels})
    async with Dispatcher(cfg, inventory, MemoryStore()) as dispatcher:
        assert dispatcher.submit([ev("HA", "up", "down", T0)])
        await asyncio.wait_for(receiver.got_request.wait(), 5)
        # The hung receiver holds its request; the caller and the other channel go on.
        for i in range(20):
            assert dispatcher.submit([ev(f"TK-C0{i % 5 + 1}", "up", "down", T0 + timedelta(minutes=i))])
        await wait_for(lambda: len(second_receiver.requests) == 6)
        assert receiver.answered == []
        assert {r["alerts"][0]["labels"]["site"] for r in second_receiver.requests} == {"HA", *COMMUNES}
        receiver.release.set()
        await asyncio.wait_for(dispatcher.flush(), 10)
    assert len(receiver.answered) == 6
    assert dispatcher.failed_total == {}
