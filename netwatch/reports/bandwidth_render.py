"""The bandwidth report as CSV, XLSX or HTML, in Vietnamese or English (like the availability one).

- CSV: UTF-8 with a BOM; rates in whole bits per second, utilisation in percent (dot decimal), hours
  with two decimals, blank where a figure does not exist.
- XLSX: one sheet of links, real numbers with formats, frozen header, autofilter; notes below.
- HTML: one self-contained page (inline CSS), printable, ``lang`` set.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from netwatch.reports.availability import parse_month
from netwatch.reports.bandwidth import BandwidthReport, LinkBandwidth
from netwatch.reports.render import Format, html_page, html_table, xlsx_table
from netwatch.reports.strings import Lang, month_title, text

__all__ = ["render_bandwidth"]

Kind = Literal["text", "int", "bps", "ratio", "hours"]
Value = str | int | float | None

_HEAD: tuple[tuple[str, Kind], ...] = (
    ("col.district", "text"),
    ("col.site", "text"),
    ("col.name", "text"),
    ("col.link", "text"),
    ("col.device", "text"),
    ("col.interface", "text"),
    ("col.contracted", "bps"),
    ("col.buckets", "int"),
    ("col.resolution", "text"),
    ("col.in_avg", "bps"),
    ("col.in_peak", "bps"),
    ("col.in_p95", "bps"),
    ("col.in_util_avg", "ratio"),
    ("col.in_util_p95", "ratio"),
    ("col.out_avg", "bps"),
    ("col.out_peak", "bps"),
    ("col.out_p95", "bps"),
    ("col.out_util_avg", "ratio"),
    ("col.out_util_p95", "ratio"),
    ("col.hours_above", "hours"),
)
_XLSX_FORMATS = {"bps": "#,##0", "ratio": "0.00%", "hours": "0.00", "int": "0"}


def _cells(row: LinkBandwidth, lang: Lang) -> list[Value]:
    link, i, o = row.link, row.inbound, row.outbound
    return [
        link.district,
        link.site,
        link.site_name,
        link.name or "",
        link.device,
        link.interface,
        link.contracted_bps,
        row.buckets,
        # per row: a link without 5-minute rollups is reported from hourly ones (approximate)
        text(f"bandwidth.resolution_{row.resolution}", lang),
        i.average_bps,
        i.peak_bps,
        i.p95_bps,
        i.average_utilisation,
        i.p95_utilisation,
        o.average_bps,
        o.peak_bps,
        o.p95_bps,
        o.average_utilisation,
        o.p95_utilisation,
        row.hours_above,
    ]


def _percent(report: BandwidthReport) -> str:
    return f"{report.threshold * 100:g}"


def _headings(report: BandwidthReport, lang: Lang) -> list[str]:
    return [text(key, lang).format(threshold=_percent(report)) for key, _ in _HEAD]


def _title(report: BandwidthReport, lang: Lang) -> str:
    year, month = parse_month(report.month)
    return f"{text('bandwidth.title', lang)} — {month_title(year, month, lang)}"


def _local(value: datetime, tz: str) -> str:
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _notes(report: BandwidthReport, lang: Lang) -> list[str]:
    """The warnings a reader must see: figures from hourly rollups, for the month or some links."""
    if report.fallback:
        return [text("bandwidth.fallback", lang)]
    if report.hourly_links:
        names = ", ".join(
            f"{row.link.site} {row.link.name or row.link.interface}" for row in report.hourly_links
        )
        return [text("bandwidth.link_fallback", lang).format(links=names)]
    return []


def _info_lines(report: BandwidthReport, lang: Lang) -> list[str]:
    lines = [
        f"{text('availability.period', lang)}: {_local(report.start, report.tz)} → {_local(report.end, report.tz)}",
        f"{text('availability.timezone', lang)}: {report.tz}",
        f"{text('bandwidth.resolution', lang)}: {text('bandwidth.resolution_' + report.resolution, lang)}",
        f"{text('availability.generated', lang)}: {_local(report.generated_at, report.tz)}",
    ]
    lines.extend(_notes(report, lang))
    lines.append(text("bandwidth.definitions", lang).format(threshold=_percent(report)))
    return lines


def _text_value(value: Value, kind: Kind, *, percent_digits: int) -> str:
    if value is None:
        return ""
    if kind == "bps" and isinstance(value, int | float):
        return f"{value:.0f}"
    if kind == "ratio" and isinstance(value, int | float):
        return f"{value * 100:.{percent_digits}f}"
    if kind == "hours" and isinstance(value, int | float):
        return f"{value:.2f}"
    return str(value)


def render_csv(report: BandwidthReport, lang: Lang) -> bytes:
    """One row per link, UTF-8 with a BOM."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(_headings(report, lang))
    for row in report.links:
        writer.writerow(
            [_text_value(v, k, percent_digits=4) for v, (_, k) in zip(_cells(row, lang), _HEAD, strict=True)]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def render_xlsx(report: BandwidthReport, lang: Lang) -> bytes:
    """One sheet of links with real numbers; the period, resolution and notes below the table."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = text("sheet.links", lang)[:31]
    kinds = [kind for _, kind in _HEAD]
    xlsx_table(
        sheet, _headings(report, lang), [_cells(row, lang) for row in report.links], kinds, _XLSX_FORMATS
    )
    first = len(report.links) + 3
    for offset, line in enumerate([_title(report, lang), *_info_lines(report, lang)]):
        sheet.cell(row=first + offset, column=1, value=line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _html_cell(value: Value, kind: Kind) -> str:
    shown = html.escape(_text_value(value, kind, percent_digits=2))
    if kind == "bps" and isinstance(value, int | float):
        shown = f"{value:,.0f}".replace(",", "\u202f")  # thin space: no locale's decimal mark
    if kind == "ratio" and shown:
        shown += " %"
    return f"<td>{shown}</td>" if kind == "text" else f'<td class="n">{shown}</td>'


def render_html(report: BandwidthReport, lang: Lang) -> bytes:
    """One self-contained, printable HTML page."""
    title = _title(report, lang)
    body = [
        "<tr>"
        + "".join(_html_cell(v, k) for v, (_, k) in zip(_cells(row, lang), _HEAD, strict=True))
        + "</tr>"
        for row in report.links
    ]
    if not body:
        body.append(
            f'<tr><td colspan="{len(_HEAD)}">{html.escape(text("bandwidth.no_links", lang))}</td></tr>'
        )
    warnings = _notes(report, lang)
    meta = [
        f'<p class="{"warn" if line in warnings else "meta"}">{html.escape(line)}</p>'
        for line in _info_lines(report, lang)
    ]
    return html_page(
        title,
        lang,
        [*meta, html_table(_headings(report, lang), body)],
    )


_RENDERERS: dict[Format, Callable[[BandwidthReport, Lang], bytes]] = {
    "csv": render_csv,
    "xlsx": render_xlsx,
    "html": render_html,
}


def render_bandwidth(report: BandwidthReport, fmt: Format, lang: Lang) -> bytes:
    """The report in ``fmt`` and ``lang``, as the bytes of a file."""
    return _RENDERERS[fmt](report, lang)
