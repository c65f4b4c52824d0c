"""An aiohttp server in the daemon's own event loop.

prometheus_client's threaded server cannot share the loop, serve other pages or grow TLS and
basic auth; one aiohttp app does all of that. netwatch's own exposition is rendered on the loop in
slices of 10 ms (:func:`netwatch.exposition.render_stepped`), so a large scrape never stalls polling
nor takes the GIL from it; any other registry is rendered in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.registry import CollectorRegistry
from sqlalchemy.engine import Engine

from netwatch import __version__
from netwatch.exposition import SteppedRegistry, render_chunks, render_stepped
from netwatch.state import LatestState
from netwatch.web.webconfig import REALM, BasicAuthGate, WebSecurity, exposure_warning

log = logging.getLogger(__name__)

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
    security: WebSecurity | None = None
    """TLS, basic auth and headers from ``--web-config``; without it, plain HTTP open to all."""
    _runner: web.AppRunner | None = None
    _rendering: dict[bool, asyncio.Future[list[bytes | bytearray]]] = field(default_factory=dict)
    """The render under way, by whether it is gzipped: scrapes that arrive meanwhile share it."""

    def app(self) -> web.Application:
        """The aiohttp application (separate so tests can use aiohttp's test client)."""
        app = web.Application(middlewares=_security_middlewares(self.security))
        if self.security is not None and self.security.headers:
            app.on_response_prepare.append(_add_headers(dict(self.security.headers)))
        if self.state is not None:
            from netwatch.web.status import StatusPage

            app.router.add_get("/", _shared(StatusPage(self.state, self.engine).handle))
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
        context = self.security.ssl_context if self.security is not None else None
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True, ssl_context=context)
        await site.start()
        warning = exposure_warning(self.host, self.security)
        if warning is not None:
            log.warning("%s", warning)

    async def stop(self) -> None:
        """Close the listener and open connections."""
        for rendering in self._rendering.values():
            rendering.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _index(self, request: web.Request) -> web.Response:
        month = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
        return web.Response(
            text=INDEX_HTML.format(version=__version__, month=month), content_type="text/html"
        )

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        # The body goes out family by family: joining it first would be one more copy of it
        # (about 165 MB at 1.1 M series), and gzipped when the scraper takes it (Prometheus does).
        gzip = isinstance(self.registry, SteppedRegistry) and _takes_gzip(request)
        chunks = await self._exposition(gzip)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        if gzip:
            response.headers["Content-Encoding"] = "gzip"
        response.content_length = sum(len(chunk) for chunk in chunks)
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _exposition(self, gzip: bool) -> list[bytes | bytearray]:
        # Scrapes that arrive while a render runs share it: concurrent scrapers cost one render,
        # not one each, and every render in a worker thread holds the GIL the polling loop needs
        # (measured: 8 clients scraping in a loop put polls 40-60 ms late with a render each, 7 ms
        # with shared renders).
        rendering = self._rendering.get(gzip)
        if rendering is None:
            if isinstance(self.registry, SteppedRegistry):
                rendering = asyncio.ensure_future(render_stepped(self.registry, gzip=gzip))
            else:
                rendering = asyncio.get_running_loop().run_in_executor(None, render_chunks, self.registry)
            rendering.add_done_callback(partial(self._rendered, gzip))
            self._rendering[gzip] = rendering
        return await asyncio.shield(rendering)

    def _rendered(self, gzip: bool, rendering: asyncio.Future[list[bytes | bytearray]]) -> None:
        if self._rendering.get(gzip) is rendering:
            del self._rendering[gzip]

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.health()
        status = 200 if report.get("ok") else 503
        return web.Response(
            text=json.dumps(report, default=str), status=status, content_type="application/json"
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _takes_gzip(request: web.Request) -> bool:
    """Whether the request's Accept-Encoding takes gzip (``gzip`` or ``*``, not refused with q=0)."""
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(quality) > 0
            except ValueError:
                return False
    return False


def _shared(handler: Callable[[web.Request], Awaitable[web.Response]]) -> Handler:
    """``handler`` run once for all requests that arrive while it runs, each given a copy of the
    answer: a page that does not depend on the request costs one render however many wait for it
    (its SQL and rendering hold the GIL and the loop that polling needs)."""
    pending: asyncio.Future[web.Response] | None = None

    def done(future: asyncio.Future[web.Response]) -> None:
        nonlocal pending
        if pending is future:
            pending = None

    async def shared(request: web.Request) -> web.StreamResponse:
        nonlocal pending
        if pending is None:
            pending = asyncio.ensure_future(handler(request))
            pending.add_done_callback(done)
        answer = await asyncio.shield(pending)
        return web.Response(body=answer.body, status=answer.status, headers=answer.headers.copy())

    return shared


def _security_middlewares(security: WebSecurity | None) -> list[Any]:
    """Basic auth on every path (known or not, so a 404 tells nothing to a stranger)."""
    if security is None or not security.auth:
        return []
    gate = BasicAuthGate(security.users)

    @web.middleware
    async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not await gate.allowed(request.headers.get("Authorization")):
            return web.Response(
                status=401,
                text="401 Unauthorized\n",
                headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
            )
        return await handler(request)

    return [basic_auth]


def _add_headers(headers: dict[str, str]) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(headers)

    return add
