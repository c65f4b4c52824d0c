"""The status page at ``/``: site states by district, open outages, this month's availability.

For staff without Grafana on the data center's admin network (no internet): one self-contained
HTML page, inline CSS only, no scripts, refreshed by a ``<meta http-equiv="refresh">``. Live states
come from :class:`~netwatch.state.LatestState`; the ledger's open rows and the month's
availability come from the database when there is one. Availability is computed in a worker thread
and cached, so a page load costs one small query at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch import __version__
from netwatch.config.inventory import Site
from netwatch.reports.availability import compute, load_month
from netwatch.sitehealth import PRECEDENCE, SiteState, SiteStatus
from netwatch.state import LatestState
from netwatch.storage import repository

log = logging.getLogger(__name__)

REFRESH_SECONDS = 30
AVAILABILITY_CACHE_SECONDS = 60.0
OPEN_STATES = frozenset({SiteState.DOWN, SiteState.UNREACHABLE, SiteState.DEGRADED, SiteState.MAINTENANCE})
"""Live states listed as open outages (the ledger records the same four)."""

STATE_LABELS: Mapping[SiteState, str] = {
    SiteState.UP: "Hoạt động",
    SiteState.DEGRADED: "Suy giảm",
    SiteState.DOWN: "Mất kết nối",
    SiteState.UNREACHABLE: "Không truy cập được",
    SiteState.MAINTENANCE: "Bảo trì",
    SiteState.UNKNOWN: "Chưa rõ",
}

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}
small,.en{color:#666;font-size:.8em;font-weight:normal}
table{border-collapse:collapse;margin-bottom:.5em}
th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right}
tr.head td{font-weight:bold;background:#fafafa}tr.group th{background:#e4e4e4}
td.sub{padding-left:2em}
.st{padding:0 6px;border-radius:3px;white-space:nowrap}
.st-up{background:#c8f0c8}.st-degraded{background:#fff0a0}.st-down{background:#f4a0a0;font-weight:bold}
.st-unreachable{background:#e8c0f0}.st-maintenance{background:#c0e4f4}.st-unknown{background:#e0e0e0}
.flap{color:#b00;font-weight:bold}.summary span{margin-right:1em}
@media print{body{margin:0;font-size:11px}nav{display:none}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


@dataclass(frozen=True, slots=True)
class Availability:
    """One month's availability per site code (None where nothing could be judged)."""

    month: str
    by_site: Mapping[str, float | None]


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return "—" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def duration_vi(span: timedelta) -> str:
    """A duration in Vietnamese words, to the minute: ``1 ngày 2 giờ 05 phút``."""
    minutes = max(0, int(span.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if not (days or hours):
        return f"{mins} phút" if mins else "< 1 phút"
    text = f"{hours} giờ {mins:02d} phút"
    return f"{days} ngày {text}" if days else text


def _state_cell(state: SiteState) -> str:
    return (
        f'<span class="st st-{state.value}">{escape(STATE_LABELS[state])} <small>{state.value}</small></span>'
    )


def _as_state(value: str) -> SiteState:
    try:
        return SiteState(value)
    except ValueError:
        return SiteState.UNKNOWN


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def _previous_month(month: str) -> str:
    year, mon = map(int, month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def _tree(
    state: LatestState, statuses: Mapping[str, SiteStatus], avail: Availability | None, zone: ZoneInfo
) -> str:
    sites = state.inventory.sites
    groups: dict[str, list[Site]] = defaultdict(list)
    for site in sites.values():
        groups[site.district].append(site)
    province = state.inventory.province
    rows: list[str] = []
    # Province-level sites (district = the province code) first, then districts by code.
    for district in sorted(groups, key=lambda d: (d != province.code, d)):
        members = sorted(groups[district], key=lambda s: (s.code != district, s.code))
        if district not in sites:
            title = province.name if district == province.code else district
            rows.append(
                f'<tr class="group"><th colspan="7">{escape(title)} <small>{escape(district)}</small></th></tr>'
            )
        for site in members:
            status = statuses.get(site.code, SiteStatus())
            head = site.code == district or district not in sites
            pct = _percent(avail.by_site.get(site.code)) if avail is not None else "—"
            rows.append(
                f'<tr class="{"head" if head else "sub"}" id="site-{escape(site.code)}">'
                f"<td{'' if head else ' class=sub'}>{escape(site.code)}</td><td>{escape(site.name)}</td>"
                f"<td>{_state_cell(status.state)}</td><td>{_local(status.since, zone)}</td>"
                f"<td>{escape(status.cause or '')}</td>"
                f"<td>{'<span class=flap>dao động <small>flapping</small></span>' if status.flapping else ''}</td>"
                f'<td class="num">{pct}</td></tr>'
            )
    header = (
        "<tr><th>Mã <span class=en>code</span></th><th>Tên <span class=en>name</span></th>"
        "<th>Trạng thái <span class=en>state</span></th><th>Từ lúc <span class=en>since</span></th>"
        "<th>Nguyên nhân <span class=en>cause</span></th><th>Dao động <span class=en>flapping</span></th>"
        "<th>Khả dụng tháng này <span class=en>availability</span></th></tr>"
    )
    return f'<table class="tree">{header}{"".join(rows)}</table>'


def _outages(
    state: LatestState,
    statuses: Mapping[str, SiteStatus],
    ledger: Sequence[Mapping[str, Any]] | None,
    now: datetime,
    zone: ZoneInfo,
) -> str:
    names = {code: site.name for code, site in state.inventory.sites.items()}
    by_key = {(row["site"], row["state"]): row for row in ledger or ()}
    entries: list[tuple[datetime | None, str, str, str | None, Any, str]] = []
    for code, status in statuses.items():
        if status.state in OPEN_STATES:
            row = by_key.pop((code, status.state.value), None)
            entries.append((status.since, code, status.state.value, status.cause, row and row["id"], ""))
    for row in by_key.values():
        entries.append(
            (row["started_at"], row["site"], row["state"], row["cause"], row["id"], " (chỉ trong sổ)")
        )
    if not entries:
        return "<p>Không có sự cố đang mở. <small>No open outages.</small></p>"
    entries.sort(key=lambda e: (e[0] is None, e[0] or now))
    rows = []
    for since, code, value, cause, ident, note in entries:
        st = _as_state(value)
        rows.append(
            f"<tr><td>{'' if ident is None else ident}</td><td>{escape(code)}</td>"
            f"<td>{escape(names.get(code, ''))}{escape(note)}</td><td>{_state_cell(st)}</td>"
            f"<td>{_local(since, zone)}</td><td>{escape(duration_vi(now - since)) if since else '—'}</td>"
            f"<td>{escape(cause or '')}</td></tr>"
        )
    header = (
        "<tr><th>Số sổ <span class=en>ledger id</span></th><th>Mã <span class=en>code</span></th>"
        "<th>Tên <span class=en>name</span></th><th>Trạng thái <span class=en>state</span></th>"
        "<th>Bắt đầu <span class=en>started</span></th><th>Thời gian <span class=en>duration</span></th>"
        "<th>Nguyên nhân <span class=en>cause</span></th></tr>"
    )
    return f'<table class="outages">{header}{"".join(rows)}</table>'


def _links(month: str, reports: bool) -> str:
    items = []
    for m in (month, _previous_month(month)) if reports else ():
        for lang in ("vi", "en"):
            fmts = " · ".join(
                f'<a href="/reports/availability?month={m}&amp;format={fmt}&amp;lang={lang}">{fmt}</a>'
                for fmt in ("xlsx", "csv", "html")
            )
            items.append(f"<li>Khả dụng {m} <small>availability, {lang}</small>: {fmts}</li>")
    items.append('<li><a href="/metrics">/metrics</a> <small>Prometheus metrics</small></li>')
    items.append('<li><a href="/healthz">/healthz</a> <small>daemon health</small></li>')
    return f"<nav><ul>{''.join(items)}</ul></nav>"


def render_status(
    state: LatestState,
    *,
    now: datetime,
    availability: Availability | None,
    ledger: Sequence[Mapping[str, Any]] | None,
    notice: str | None = None,
    reports: bool = True,
) -> str:
    """The whole page (``reports``: link the monthly exports, served only with a database); pure."""
    zone = ZoneInfo(state.inventory.timezone)
    month = now.astimezone(zone).strftime("%Y-%m")
    statuses = {code: state.sites.get(code, SiteStatus()) for code in state.inventory.sites}
    counts = Counter(status.state for status in statuses.values())
    # Spaces between the counts, not only CSS margins, so copied or read-aloud text stays apart.
    summary = " ".join(
        f"<span>{_state_cell(st)} {counts[st]}</span>" for st in reversed(PRECEDENCE) if counts[st]
    )
    title = f"netwatch — {state.inventory.province.name}"
    return (
        '<!doctype html>\n<html lang="vi"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{escape(title)} <small>netwatch {escape(__version__)}</small></h1>"
        f"<p>Cập nhật lúc {_local(now, zone)} ({escape(zone.key)}), tự làm mới mỗi {REFRESH_SECONDS} giây "
        f"<small>updated, refreshes every {REFRESH_SECONDS} s</small></p>"
        + (f'<p class="notice">{escape(notice)}</p>' if notice else "")
        + f'<p class="summary">{len(statuses)} điểm <small>sites</small>: {summary}</p>'
        "<h2>Sự cố đang mở <small>open outages</small></h2>"
        + _outages(state, statuses, ledger, now, zone)
        + "<h2>Trạng thái theo huyện <small>sites by district</small></h2>"
        + _tree(state, statuses, availability, zone)
        + "<h2>Báo cáo <small>reports and links</small></h2>"
        + _links(month, reports)
        + "</body></html>\n"
    )


def _month_availability(engine: Engine, month: str, tz: str, now: datetime) -> Availability:
    report = compute(load_month(engine, month, tz), now)
    return Availability(month, {row.site.code: row.figures.availability for row in report.rows})


@dataclass
class StatusPage:
    """The ``/`` handler: live states from ``state``, ledger and availability from ``engine``."""

    state: LatestState
    engine: Engine | None = None
    cache_seconds: float = AVAILABILITY_CACHE_SECONDS
    _cached: tuple[float, Availability] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _availability(self, engine: Engine, now: datetime, tz: str) -> Availability:
        month = now.strftime("%Y-%m")
        async with self._lock:
            cached = self._cached
            if (
                cached is None
                or cached[1].month != month
                or time.monotonic() - cached[0] > self.cache_seconds
            ):
                avail = await asyncio.to_thread(_month_availability, engine, month, tz, now)
                self._cached = cached = (time.monotonic(), avail)
            return cached[1]

    async def handle(self, request: web.Request) -> web.Response:
        """Render the page (the database part is optional: a failing database leaves live states)."""
        tz = self.state.inventory.timezone
        now = datetime.now(ZoneInfo(tz))
        availability = ledger = notice = None
        if self.engine is not None:
            try:
                ledger = await asyncio.to_thread(repository.outages, self.engine, only_open=True)
                availability = await self._availability(self.engine, now, tz)
            except SQLAlchemyError as exc:
                log.warning("status page: database unavailable: %s", type(exc).__name__)
                notice = (
                    "Không đọc được cơ sở dữ liệu: chỉ hiển thị trạng thái hiện tại. (database unavailable)"
                )
        text = render_status(
            self.state,
            now=now,
            availability=availability,
            ledger=ledger,
            notice=notice,
            reports=self.engine is not None,
        )
        return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})
