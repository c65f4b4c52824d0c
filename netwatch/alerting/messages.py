"""Every word a person reads in a notification, in Vietnamese and English, and how it is laid out.

Times are shown in the inventory's time zone as ``28/11/2026 21:05:30 (GMT+7)``; durations as
``1 giờ 5 phút`` / ``1 h 5 min``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from netwatch.alerting.models import Notification, SiteRef

TEXT: Mapping[str, Mapping[str, str]] = {
    "vi": {
        "subject.down.firing": "MẤT KẾT NỐI: {site}",
        "subject.down.resolved": "ĐÃ KHÔI PHỤC: {site}",
        "subject.degraded.firing": "SUY GIẢM: {site}",
        "subject.degraded.resolved": "HẾT SUY GIẢM: {site}",
        "subject.flapping.firing": "CHẬP CHỜN: {site}",
        "subject.flapping.resolved": "ỔN ĐỊNH TRỞ LẠI: {site}",
        "subject.unreachable": " — {count} điểm phía sau không truy cập được",
        "subject.reminder": " (nhắc lại)",
        "summary.down.firing": "{site} mất kết nối từ {start}",
        "summary.down.resolved": "{site} đã khôi phục sau {duration}",
        "summary.degraded.firing": "{site} suy giảm chất lượng từ {start}",
        "summary.degraded.resolved": "{site} hết suy giảm sau {duration}",
        "summary.flapping.firing": "{site} chập chờn (lên xuống liên tục) từ {start}",
        "summary.flapping.resolved": "{site} ổn định trở lại sau {duration}",
        "label.site": "Điểm",
        "label.district": "Huyện",
        "label.state": "Trạng thái hiện tại",
        "label.start": "Bắt đầu",
        "label.end": "Kết thúc",
        "label.duration.firing": "Đã kéo dài",
        "label.duration.resolved": "Thời gian",
        "label.cause": "Nguyên nhân",
        "label.flapping": "Chập chờn",
        "label.unreachable": "Các điểm không truy cập được do điểm này ({count}):",
        "cause": "{cause} đang mất kết nối",
        "yes": "có",
        "state.up": "hoạt động",
        "state.degraded": "suy giảm",
        "state.down": "mất kết nối",
        "state.unreachable": "không truy cập được",
        "state.maintenance": "bảo trì",
        "state.unknown": "không rõ",
        "unit.day": "ngày",
        "unit.hour": "giờ",
        "unit.minute": "phút",
        "unit.second": "giây",
        "footer": "Thông báo tự động của netwatch.",
    },
    "en": {
        "subject.down.firing": "DOWN: {site}",
        "subject.down.resolved": "RESOLVED: {site}",
        "subject.degraded.firing": "DEGRADED: {site}",
        "subject.degraded.resolved": "NO LONGER DEGRADED: {site}",
        "subject.flapping.firing": "FLAPPING: {site}",
        "subject.flapping.resolved": "STABLE AGAIN: {site}",
        "subject.unreachable": " — {count} sites behind it unreachable",
        "subject.reminder": " (reminder)",
        "summary.down.firing": "{site} is down since {start}",
        "summary.down.resolved": "{site} is back after {duration}",
        "summary.degraded.firing": "{site} is degraded since {start}",
        "summary.degraded.resolved": "{site} is no longer degraded after {duration}",
        "summary.flapping.firing": "{site} is flapping (going up and down) since {start}",
        "summary.flapping.resolved": "{site} is stable again after {duration}",
        "label.site": "Site",
        "label.district": "District",
        "label.state": "State now",
        "label.start": "Started",
        "label.end": "Ended",
        "label.duration.firing": "Lasting so far",
        "label.duration.resolved": "Duration",
        "label.cause": "Cause",
        "label.flapping": "Flapping",
        "label.unreachable": "Sites unreachable because of it ({count}):",
        "cause": "{cause} is down",
        "yes": "yes",
        "state.up": "up",
        "state.degraded": "degraded",
        "state.down": "down",
        "state.unreachable": "unreachable",
        "state.maintenance": "maintenance",
        "state.unknown": "unknown",
        "unit.day": "d",
        "unit.hour": "h",
        "unit.minute": "min",
        "unit.second": "s",
        "footer": "Sent automatically by netwatch.",
    },
}
SUBJECT_PREFIX = "[netwatch] "


@dataclass(frozen=True, slots=True)
class Message:
    """A notification as words: subject, one-line summary, plain-text body and HTML body."""

    subject: str
    summary: str
    text: str
    html: str


def _t(language: str, key: str, **values: object) -> str:
    table = TEXT.get(language, TEXT["en"])
    return table[key].format(**values)


def state_label(state: str, language: str) -> str:
    """A site state in words (``mất kết nối`` / ``down``); an unknown one as it is."""
    table = TEXT.get(language, TEXT["en"])
    return table.get(f"state.{state}", state)


def site_label(ref: SiteRef) -> str:
    """``Thành ủy Tam Kỳ (TK)``: the name people know, with the code they grep for."""
    return ref.name if ref.name == ref.code else f"{ref.name} ({ref.code})"


def format_time(moment: datetime, timezone: str) -> str:
    """``28/11/2026 21:05:30 (GMT+7)`` in the given IANA time zone."""
    local = moment.astimezone(ZoneInfo(timezone))
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    zone = f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")
    return f"{local:%d/%m/%Y %H:%M:%S} ({zone})"


def format_duration(duration: timedelta, language: str) -> str:
    """``1 giờ 5 phút`` / ``1 h 5 min``; seconds only under a minute."""
    total = max(int(duration.total_seconds()), 0)
    if total < 60:
        return f"{total} {_t(language, 'unit.second')}"
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    parts = [(days, "unit.day"), (hours, "unit.hour"), (minutes, "unit.minute")]
    return " ".join(f"{count} {_t(language, unit)}" for count, unit in parts if count)


def render(notification: Notification, timezone: str) -> Message:
    """The subject, summary and bodies of a notification, in its language."""
    n, lang = notification, notification.language
    site = site_label(n.site)
    start = format_time(n.starts_at, timezone)
    duration = format_duration(n.duration, lang)
    subject = _t(lang, f"subject.{n.alert}.{n.status}", site=site)
    if n.unreachable:
        subject += _t(lang, "subject.unreachable", count=len(n.unreachable))
    if n.reminder:
        subject += _t(lang, "subject.reminder")
    summary = _t(lang, f"summary.{n.alert}.{n.status}", site=site, start=start, duration=duration)
    rows = _rows(n, timezone, start, duration)
    listed = [f"  - {site_label(ref)}" for ref in n.unreachable]
    lines = [summary, "", *(f"{label}: {value}" for label, value in rows)]
    if n.unreachable:
        lines += ["", _t(lang, "label.unreachable", count=len(n.unreachable)), *listed]
    lines += ["", _t(lang, "footer")]
    return Message(SUBJECT_PREFIX + subject, summary, "\n".join(lines) + "\n", _html(n, summary, rows))


def _rows(n: Notification, timezone: str, start: str, duration: str) -> list[tuple[str, str]]:
    lang = n.language
    rows = [
        (_t(lang, "label.site"), site_label(n.site)),
        (_t(lang, "label.district"), site_label(n.district)),
        (_t(lang, "label.state"), state_label(n.state, lang)),
        (_t(lang, "label.start"), start),
    ]
    if n.ends_at is not None:
        rows.append((_t(lang, "label.end"), format_time(n.ends_at, timezone)))
    rows.append((_t(lang, f"label.duration.{n.status}"), duration))
    if n.cause is not None:
        rows.append((_t(lang, "label.cause"), _t(lang, "cause", cause=site_label(n.cause))))
    if n.flapping and n.alert != "flapping":
        rows.append((_t(lang, "label.flapping"), _t(lang, "yes")))
    return rows


def _html(n: Notification, summary: str, rows: list[tuple[str, str]]) -> str:
    esc = html.escape
    lang = n.language
    table = "".join(
        f"<tr><th align='left'>{esc(label)}</th><td>{esc(value)}</td></tr>" for label, value in rows
    )
    parts = [f"<p><strong>{esc(summary)}</strong></p>", f"<table>{table}</table>"]
    if n.unreachable:
        items = "".join(f"<li>{esc(site_label(ref))}</li>" for ref in n.unreachable)
        parts.append(f"<p>{esc(_t(lang, 'label.unreachable', count=len(n.unreachable)))}</p><ul>{items}</ul>")
    parts.append(f"<p><small>{esc(_t(lang, 'footer'))}</small></p>")
    return f'<!DOCTYPE html><html lang="{esc(lang)}"><meta charset="utf-8"><body>{"".join(parts)}</body></html>\n'
