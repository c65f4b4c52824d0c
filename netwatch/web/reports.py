"""Monthly reports over HTTP (``/reports/availability?month=…&format=csv``), so a Grafana panel or
a browser can fetch the same export the CLI writes. Computed in a worker thread, never on the loop."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.engine import Engine

from netwatch.reports.availability import compute, load_month, month_bounds, parse_month
from netwatch.reports.render import FORMATS, render_availability

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
}
LANGS = ("vi", "en")


class BadQuery(ValueError):
    """A report request whose parameters cannot be served; the message says which and why."""


def _params(query: Any) -> dict[str, Any]:
    month = query.get("month", "")
    try:
        parse_month(month)
    except ValueError as exc:
        raise BadQuery(f"month: {exc}") from None
    tz = query.get("tz", "Asia/Ho_Chi_Minh")
    try:
        ZoneInfo(tz)
    except (KeyError, ValueError):
        raise BadQuery(f"tz: unknown time zone {tz!r}") from None
    fmt = query.get("format", "csv")
    if fmt not in FORMATS:
        raise BadQuery(f"format: one of {', '.join(FORMATS)}")
    lang = query.get("lang", "vi")
    if lang not in LANGS:
        raise BadQuery("lang: vi or en")
    now = datetime.now(ZoneInfo(tz))
    if month_bounds(month, tz)[0] >= now:
        raise BadQuery(f"month: {month} has not begun yet in {tz}")
    return {
        "month": month,
        "tz": tz,
        "fmt": fmt,
        "lang": lang,
        "now": now,
        "site": query.get("site") or None,
        "district": query.get("district") or None,
    }


def _availability(engine: Engine, p: dict[str, Any]) -> bytes:
    data = load_month(engine, p["month"], p["tz"], site=p["site"], district=p["district"])
    if not data.sites and p["site"] is not None:
        raise BadQuery(
            f"site: no site has code {p['site']!r}"
            + (f" in district {p['district']!r}" if p["district"] else "")
        )
    if not data.sites and p["district"] is not None:
        raise BadQuery(f"district: no district has code {p['district']!r}")
    return render_availability(compute(data, p["now"]), p["fmt"], p["lang"])


def report_routes(engine: Engine) -> list[web.RouteDef]:
    """The report routes, reading through ``engine``."""

    async def availability(request: web.Request) -> web.Response:
        try:
            params = _params(request.query)
        except BadQuery as exc:
            return web.Response(status=400, text=f"{exc}\n", content_type="text/plain")
        try:
            body = await asyncio.to_thread(_availability, engine, params)
        except BadQuery as exc:
            return web.Response(status=400, text=f"{exc}\n", content_type="text/plain")
        name = f"availability-{params['month']}.{params['fmt']}"
        disposition = "inline" if params["fmt"] == "html" else f'attachment; filename="{name}"'
        return web.Response(
            body=body,
            headers={"Content-Type": CONTENT_TYPES[params["fmt"]], "Content-Disposition": disposition},
        )

    return [web.get("/reports/availability", availability)]
