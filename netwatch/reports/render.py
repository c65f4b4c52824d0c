"""The availability report as CSV, XLSX or HTML, in Vietnamese or English.

A site with several links is followed by one row per link (the ``link`` column names it; blank on
site rows), with the same figure columns and no SLA verdict.

- CSV: one table of site rows; UTF-8 with a BOM so Excel shows diacritics; durations in seconds,
  ratios in percent (dot decimal), blank where a figure does not exist.
- XLSX: sheets for sites, the province and district summary, and annotations; real numbers with
  formats (``0.000%``, durations as Excel time ``[h]:mm:ss``), frozen header, autofilter.
- HTML: one self-contained page (inline CSS, no external asset), printable, ``lang`` set.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from netwatch.reports.availability import (
    AnnotatedOutage,
    AvailabilityReport,
    Figures,
    LinkRow,
    SiteRow,
    Summary,
)
from netwatch.reports.strings import Lang, month_title, text
from netwatch.sitehealth import SiteState

__all__ = ["FORMATS", "Format", "render_availability", "render_csv", "render_html", "render_xlsx"]

Format = Literal["csv", "xlsx", "html"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx", "html")
"""Output formats of the reports."""

Kind = Literal["text", "int", "duration", "ratio"]
Value = str | int | float | timedelta | None

PERCENT_FORMAT = "0.000%"
DURATION_FORMAT = "[h]:mm:ss"
_STATES = (
    SiteState.UP,
    SiteState.DEGRADED,
    SiteState.DOWN,
    SiteState.UNREACHABLE,
    SiteState.MAINTENANCE,
    SiteState.UNKNOWN,
)


@dataclass(frozen=True, slots=True)
class Column:
    """A report column: its heading key, the kind of its values, and how to get them."""

    key: str
    kind: Kind
    get: Callable[[Figures], Value]


def _state_getter(state: SiteState) -> Callable[[Figures], Value]:
    return lambda f: f[state]


FIGURE_COLUMNS: tuple[Column, ...] = (
    Column("col.period", "duration", lambda f: f.period),
    *(Column(f"col.{state.value}", "duration", _state_getter(state)) for state in _STATES),
    Column("col.availability", "ratio", lambda f: f.availability),
    Column("col.own_availability", "ratio", lambda f: f.own_availability),
    Column("col.outages", "int", lambda f: f.outages),
    Column("col.longest", "duration", lambda f: f.longest_outage),
    Column("col.mttr", "duration", lambda f: f.mttr),
    Column("col.mtbf", "duration", lambda f: f.mtbf),
    Column("col.coverage", "ratio", lambda f: f.coverage),
    Column("col.polls_on_time", "ratio", lambda f: f.polls_on_time),
)
"""Figures shown for every site and every summary, in order."""

SITE_HEAD = ("col.district", "col.site", "col.name", "col.kind", "col.link")
SITE_TAIL = ("col.sla_target", "col.sla_met", "col.causes", "col.annotations")
SUMMARY_HEAD = ("col.scope", "col.sites")
SUMMARY_TAIL = ("col.sla_met_count",)
NOTE_COLUMNS = (
    "col.outage_id",
    "col.site",
    "col.state",
    "col.counted_as",
    "col.start",
    "col.end",
    "col.cause",
    "col.ticket",
    "col.author",
    "col.annotated_at",
)


def _csv_heading(key: str, kind: Kind, lang: Lang) -> str:
    """A CSV heading with its unit, since CSV cells carry no number format."""
    label = text(key, lang)
    if kind == "duration":
        return f"{label} ({text('unit.seconds', lang)})"
    if kind == "ratio":
        return f"{label} (%)"
    return label


def _sla_text(met: bool | None, lang: Lang) -> str:
    return "" if met is None else text("value.yes" if met else "value.no", lang)


def _note_short(note: AnnotatedOutage, lang: Lang) -> str:
    parts = [f"#{note.interval.id}", text(f"state.{note.counted_as.value}", lang)]
    parts += [p for p in (note.annotation.ticket, note.annotation.cause) if p]
    return " ".join(parts[:2]) + (": " + "; ".join(parts[2:]) if parts[2:] else "")


def _site_cells(row: SiteRow, lang: Lang) -> tuple[list[Value], list[Value]]:
    head: list[Value] = [row.site.district, row.site.code, row.site.name, row.site.kind, ""]
    tail: list[Value] = [
        row.site.sla_target,
        _sla_text(row.sla_met, lang),
        ", ".join(row.unreachable_causes),
        " | ".join(_note_short(n, lang) for n in row.annotations),
    ]
    return head, tail


def _link_cells(row: SiteRow, link: LinkRow) -> tuple[list[Value], list[Value]]:
    head: list[Value] = [row.site.district, row.site.code, row.site.name, row.site.kind, link.link.name]
    return head, [None, "", "", ""]


def _lines(row: SiteRow, lang: Lang) -> list[tuple[Figures, list[Value], list[Value]]]:
    """The site's line, then its links' lines: (figures, head cells, tail cells)."""
    lines = [(row.figures, *_site_cells(row, lang))]
    lines += [(link.figures, *_link_cells(row, link)) for link in row.links]
    return lines


def _scope_name(summary: Summary, lang: Lang) -> str:
    if not summary.code:
        return text("scope.province", lang)
    return summary.code if summary.name == summary.code else f"{summary.code} — {summary.name}"


def _local(value: datetime | None, tz: str, lang: Lang) -> str:
    if value is None:
        return text("value.open", lang)
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def _note_cells(note: AnnotatedOutage, tz: str, lang: Lang) -> list[Value]:
    return [
        note.interval.id,
        note.site,
        text(f"state.{note.interval.state.value}", lang),
        text(f"state.{note.counted_as.value}", lang),
        _local(note.interval.started_at, tz, lang),
        _local(note.interval.ended_at, tz, lang),
        note.cause or "",
        note.annotation.ticket or "",
        note.annotation.author,
        _local(note.annotation.created_at, tz, lang),
    ]


def _title(report: AvailabilityReport, lang: Lang) -> str:
    year, month = report.year_month
    return f"{text('availability.title', lang)} — {month_title(year, month, lang)}"


# --- CSV ---------------------------------------------------------------------------------------


def _csv_value(value: Value, kind: Kind) -> str:
    if value is None:
        return ""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return str(int(seconds)) if seconds == int(seconds) else f"{seconds:.6f}".rstrip("0")
    if kind == "ratio" and isinstance(value, float | int):
        return f"{value * 100:.4f}"
    return str(value)


def render_csv(report: AvailabilityReport, lang: Lang) -> bytes:
    """Site rows as CSV, UTF-8 with a BOM (Excel then reads the Vietnamese names right)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(
        [text(k, lang) for k in SITE_HEAD]
        + [_csv_heading(c.key, c.kind, lang) for c in FIGURE_COLUMNS]
        + [_csv_heading(k, "ratio" if k == "col.sla_target" else "text", lang) for k in SITE_TAIL]
    )
    for row in report.rows:
        for figures, head, tail in _lines(row, lang):
            writer.writerow(
                [_csv_value(v, "text") for v in head]
                + [_csv_value(c.get(figures), c.kind) for c in FIGURE_COLUMNS]
                + [_csv_value(tail[0], "ratio"), *(_csv_value(v, "text") for v in tail[1:])]
            )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- XLSX --------------------------------------------------------------------------------------


def _xlsx_value(value: Value) -> str | int | float | None:
    if isinstance(value, timedelta):
        return value / timedelta(days=1)  # Excel time: days as a number
    return value


XLSX_FORMATS: dict[str, str] = {"duration": DURATION_FORMAT, "ratio": PERCENT_FORMAT, "int": "0"}
"""Excel number format per column kind of the availability report."""


def xlsx_table(
    sheet: object,
    headings: Sequence[str],
    rows: Sequence[Sequence[Value]],
    kinds: Sequence[str],
    formats: Mapping[str, str] = XLSX_FORMATS,
) -> None:
    """Write a table with a bold header, real number formats per column kind, frozen header and autofilter."""
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.worksheet import Worksheet

    assert isinstance(sheet, Worksheet)
    sheet.append(list(headings))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for values in rows:
        sheet.append([_xlsx_value(v) for v in values])
    for index, kind in enumerate(kinds, start=1):
        letter = get_column_letter(index)
        fmt = formats.get(kind)
        if fmt:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = fmt
        sheet.column_dimensions[letter].width = 14 if kind != "text" else 22
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headings))}{max(len(rows) + 1, 1)}"


def _texts(count: int) -> list[Kind]:
    return ["text"] * count


def render_xlsx(report: AvailabilityReport, lang: Lang) -> bytes:
    """The workbook: summary (province, districts), sites, annotations; numbers with real formats."""
    from openpyxl import Workbook

    book = Workbook()
    figure_kinds: list[Kind] = [c.kind for c in FIGURE_COLUMNS]
    summary = book.active
    assert summary is not None
    summary.title = text("sheet.summary", lang)[:31]
    scopes = (report.province, *report.districts)
    xlsx_table(
        summary,
        [text(k, lang) for k in (*SUMMARY_HEAD, *(c.key for c in FIGURE_COLUMNS), *SUMMARY_TAIL)],
        [
            [
                _scope_name(s, lang),
                s.sites,
                *(c.get(s.figures) for c in FIGURE_COLUMNS),
                f"{s.sla_met}/{s.sla_judged}",
            ]
            for s in scopes
        ],
        ["text", "int", *figure_kinds, "text"],
    )
    info_row = len(scopes) + 3
    for offset, line in enumerate([_title(report, lang), *_info_lines(report, lang)]):
        summary.cell(row=info_row + offset, column=1, value=line)

    sites = book.create_sheet(text("sheet.sites", lang)[:31])
    rows: list[list[Value]] = []
    for row in report.rows:
        for figures, head, tail in _lines(row, lang):
            rows.append([*head, *(c.get(figures) for c in FIGURE_COLUMNS), *tail])
    site_kinds: list[Kind] = [*_texts(len(SITE_HEAD)), *figure_kinds, "ratio", *_texts(3)]
    xlsx_table(
        sites,
        [text(k, lang) for k in (*SITE_HEAD, *(c.key for c in FIGURE_COLUMNS), *SITE_TAIL)],
        rows,
        site_kinds,
    )

    notes = book.create_sheet(text("sheet.annotations", lang)[:31])
    note_kinds: list[Kind] = ["int", *_texts(len(NOTE_COLUMNS) - 1)]
    xlsx_table(
        notes,
        [text(k, lang) for k in NOTE_COLUMNS],
        [_note_cells(n, report.tz, lang) for n in report.annotations],
        note_kinds,
    )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font-family:"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif;font-size:13px;margin:1.5em;color:#111}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.4em 0 .4em}
p.meta{margin:.1em 0;color:#444} p.warn{color:#8a4b00;font-weight:bold}
table{border-collapse:collapse;width:100%;margin-bottom:1em}
th,td{border:1px solid #bbb;padding:3px 5px;vertical-align:top}
th{background:#e8eef5;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.district td{background:#f3f3f3;font-weight:bold}
tr.link td{color:#333;font-size:.95em} tr.link td:nth-child(5){padding-left:1.2em}
td.met{color:#176117} td.notmet{color:#a31515;font-weight:bold}
@media print{body{margin:0;font-size:9pt} h2{page-break-after:avoid}
 thead{display:table-header-group} tr{page-break-inside:avoid} th{background:#ddd !important}}
"""


def _html_value(value: Value, kind: Kind) -> str:
    if value is None:
        return ""
    if isinstance(value, timedelta):
        total = round(value.total_seconds())
        return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
    if kind == "ratio" and isinstance(value, float | int):
        return f"{value * 100:.3f} %"
    return html.escape(str(value))


def _html_cells(cells: Sequence[tuple[Value, Kind]]) -> str:
    return "".join(
        f'<td class="n">{_html_value(v, k)}</td>' if k != "text" else f"<td>{_html_value(v, k)}</td>"
        for v, k in cells
    )


def _html_row(cells: Sequence[tuple[Value, Kind]]) -> str:
    return f"<tr>{_html_cells(cells)}</tr>"


def html_table(headings: Sequence[str], body: Sequence[str]) -> str:
    """A table with escaped headings over rows already rendered as ``<tr>…</tr>``."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _info_lines(report: AvailabilityReport, lang: Lang) -> list[str]:
    lines = [
        f"{text('availability.period', lang)}: {_local(report.start, report.tz, lang)} → "
        f"{_local(report.end, report.tz, lang)}",
        f"{text('availability.timezone', lang)}: {report.tz}",
        f"{text('availability.generated', lang)}: {_local(report.generated_at, report.tz, lang)}",
    ]
    if report.month_to_date:
        lines.append(text("availability.month_to_date", lang))
    lines += [text("availability.formulas", lang), text("availability.links_note", lang)]
    return lines


def _summary_cells(summary: Summary, lang: Lang) -> list[tuple[Value, Kind]]:
    cells: list[tuple[Value, Kind]] = [(_scope_name(summary, lang), "text"), (summary.sites, "int")]
    cells += [(c.get(summary.figures), c.kind) for c in FIGURE_COLUMNS]
    cells.append((f"{summary.sla_met}/{summary.sla_judged}", "text"))
    return cells


def render_html(report: AvailabilityReport, lang: Lang) -> bytes:
    """One self-contained, printable HTML page."""
    title = _title(report, lang)
    figure_keys = [c.key for c in FIGURE_COLUMNS]
    summary_rows = [_html_row(_summary_cells(s, lang)) for s in (report.province, *report.districts)]
    site_rows: list[str] = []
    width = len(SITE_HEAD) + len(FIGURE_COLUMNS) + len(SITE_TAIL)
    district = None
    names = {d.code: _scope_name(d, lang) for d in report.districts}
    for row in report.rows:
        if row.site.district != district:
            district = row.site.district
            site_rows.append(
                f'<tr class="district"><td colspan="{width}">{html.escape(names[district])}</td></tr>'
            )
        met = "" if row.sla_met is None else ("met" if row.sla_met else "notmet")
        for index, (figures, head, tail) in enumerate(_lines(row, lang)):
            cells = "".join(
                [
                    _html_cells([(v, "text") for v in head]),
                    _html_cells([(c.get(figures), c.kind) for c in FIGURE_COLUMNS]),
                    f'<td class="n">{_html_value(tail[0], "ratio")}</td>',
                    f'<td class="{met if index == 0 else ""}">{_html_value(tail[1], "text")}</td>',
                    *(f"<td>{_html_value(v, 'text')}</td>" for v in tail[2:]),
                ]
            )
            site_rows.append(f"<tr>{cells}</tr>" if index == 0 else f'<tr class="link">{cells}</tr>')
    if not report.rows:
        site_rows.append(
            f'<tr><td colspan="{width}">{html.escape(text("availability.no_sites", lang))}</td></tr>'
        )
    note_rows = [
        _html_row([(v, "int" if i == 0 else "text") for i, v in enumerate(_note_cells(n, report.tz, lang))])
        for n in report.annotations
    ]
    parts = [
        *(f'<p class="meta">{html.escape(line)}</p>' for line in _info_lines(report, lang)),
        f"<h2>{html.escape(text('section.summary', lang))}</h2>",
        html_table([text(k, lang) for k in (*SUMMARY_HEAD, *figure_keys, *SUMMARY_TAIL)], summary_rows),
        f"<h2>{html.escape(text('section.sites', lang))}</h2>",
        html_table([text(k, lang) for k in (*SITE_HEAD, *figure_keys, *SITE_TAIL)], site_rows),
    ]
    if note_rows:
        parts += [
            f"<h2>{html.escape(text('section.annotations', lang))}</h2>",
            html_table([text(k, lang) for k in NOTE_COLUMNS], note_rows),
        ]
    return html_page(title, lang, parts)


def html_page(title: str, lang: str, body: Sequence[str]) -> bytes:
    """A self-contained, printable page: inline CSS, no scripts, no external assets."""
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *body,
        "</body></html>\n",
    ]
    return "\n".join(parts).encode("utf-8")


_RENDERERS: dict[Format, Callable[[AvailabilityReport, Lang], bytes]] = {
    "csv": render_csv,
    "xlsx": render_xlsx,
    "html": render_html,
}


def render_availability(report: AvailabilityReport, fmt: Format, lang: Lang) -> bytes:
    """The report in ``fmt`` and ``lang``, as the bytes of a file."""
    return _RENDERERS[fmt](report, lang)
