"""Fixtures for alerting tests: a small Quảng Nam inventory, events, a fake clock, a real HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from netwatch.config.inventory import HealthRules, Inventory, Province, Site
from netwatch.sitehealth import SiteEvent, SiteState

T0 = datetime(2026, 11, 28, 14, 5, 30, tzinfo=UTC)  # 21:05:30 in Asia/Ho_Chi_Minh
COMMUNES = [f"TK-C0{i}" for i in range(1, 6)]


def ev(
    site: str, old: str, new: str, since: datetime, cause: str | None = None, flapping: bool = False
) -> SiteEvent:
    """A site event from state names."""
    return SiteEvent(site, SiteState(old), SiteState(new), since, cause, flapping)


def district_down(at: datetime = T0) -> list[SiteEvent]:
    """Tam Kỳ goes DOWN and its five communes UNREACHABLE because of it, in one batch."""
    return [ev("TK", "up", "down", at)] + [ev(c, "up", "unreachable", at, cause="TK") for c in COMMUNES]


def district_up(at: datetime) -> list[SiteEvent]:
    """Tam Kỳ comes back and its communes with it, in one batch."""
    return [ev("TK", "down", "up", at)] + [ev(c, "unreachable", "up", at) for c in COMMUNES]


def _site(code: str, name: str, kind: str, district: str, parent: str | None) -> Site:
    return Site(code=code, name=name, kind=kind, district=district, parent=parent, rules=HealthRules())


@pytest.fixture
def inventory() -> Inventory:
    """Province HQ, two districts (Tam Kỳ with five communes, Hội An) and the data center."""
    sites = [
        _site("TU", "Tỉnh ủy Quảng Nam", "province", "QNM", None),
        _site("TTDL", "Trung tâm dữ liệu tỉnh", "datacenter", "QNM", None),
        _site("TK", "Thành ủy Tam Kỳ", "district", "TK", "TU"),
        _site("HA", "Thành ủy Hội An", "district", "HA", "TU"),
        *(_site(c, f"Đảng ủy phường số {c[-1]} (Tam Kỳ)", "commune", "TK", "TK") for c in COMMUNES),
    ]
    return Inventory(province=Province("QNM", "Quảng Nam"), sites={s.code: s for s in sites})


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move time forward."""
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at T0."""
    return FakeClock()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Receiver:
    """A real HTTP webhook receiver on 127.0.0.1 that answers with scripted statuses."""

    port: int
    statuses: list[int] = field(default_factory=list)
    hang: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    got_request: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.headers.append(dict(request.headers))
        self.requests.append(json.loads(body.decode("utf-8")))
        self.got_request.set()
        if self.hang:
            await self.release.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        self.answered.append(status)
        return web.Response(status=status, text="ok")

    async def start(self) -> None:
        """Listen on self.port."""
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening and release any hanging request."""
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver, not yet started (tests start it when they want it up)."""
    rec = Receiver(port=free_port())
    yield rec
    await rec.stop()
