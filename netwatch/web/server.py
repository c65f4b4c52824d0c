"""An aiohttp server in the daemon's own event loop.

prometheus_client's threaded server cannot share the loop, serve other pages or grow TLS and
basic auth; one aiohttp app does all of that. Exposition is rendered in a worker thread so a
large scrape never stalls polling.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from sqlalchemy.engine import Engine

from netwatch import __version__
from netwatch.state import LatestState

HealthProbe = Callable[[], dict[str, object]]


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``) → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {value!r} is not HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netwatch</title></head>
<body><h1>netwatch {version}</h1>
<ul><li><a href="/metrics">/metrics</a> — Prometheus metrics</li>
<li><a href="/healthz">/healthz</a> — daemon health</li>
<li><a href="/reports/availability?month={month}&amp;format=html">/reports/availability?month={month}</a>
 — this month's availability (add &amp;format=csv|xlsx|html, &amp;lang=vi|en, &amp;site=, &amp;district=)</li></ul>
</body></html>
"""


@dataclass
class WebServer:
    """Serves the registry and the health probe on one listen address."""

    registry: CollectorRegistry
    health: HealthProbe
    host: str = "127.0.0.1"
    port: int = 9555
    engine: Engine | None = None
    state: LatestState | None = None
    """The live site states; with it ``/`` is the status page, without it a list of links."""
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application (separate so tests can use aiohttp's test client)."""
        app = web.Application()
        if self.state is not None:
            from netwatch.web.status import StatusPage

            app.router.add_get("/", StatusPage(self.state, self.engine).handle)
        else:
            app.router.add_get("/", self._index)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        if self.engine is not None:
            from netwatch.web.reports import report_routes

            app.add_routes(report_routes(self.engine))
        return app

    async def start(self) -> None:
        """Bind and serve; raises OSError when the address is taken."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        """Close the listener and open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, request: web.Request) -> web.Response:
        month = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
        return web.Response(
            text=INDEX_HTML.format(version=__version__, month=month), content_type="text/html"
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.health()
        status = 200 if report.get("ok") else 503
        return web.Response(
            text=json.dumps(report, default=str), status=status, content_type="application/json"
        )
