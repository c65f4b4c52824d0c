"""Every user-facing string of the reports, in Vietnamese and English, in one place.

Management reads the Vietnamese export; operators often the English one. Keys are stable
identifiers; add a key to every language at once (a test checks both have the same keys).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["LANGS", "STRINGS", "Lang", "month_title", "text"]

Lang = Literal["vi", "en"]
"""A report language."""

LANGS: tuple[Lang, ...] = ("vi", "en")
"""The languages every key must have."""

STRINGS: dict[Lang, dict[str, str]] = {
    "vi": {
        # Titles and notes
        "availability.title": "Báo cáo khả dụng mạng",
        "availability.period": "Kỳ báo cáo",
        "availability.timezone": "Múi giờ",
        "availability.generated": "Lập lúc",
        "availability.month_to_date": "Tính đến thời điểm lập báo cáo (tháng chưa kết thúc).",
        "availability.links_note": (
            "Điểm có nhiều đường truyền có thêm một dòng cho mỗi đường truyền (cột Đường truyền): "
            "thời gian không rõ, bảo trì và không tới được lấy theo điểm; không xét SLA theo đường truyền."
        ),
        "availability.formulas": (
            "Khả dụng = (hoạt động + suy giảm) ÷ (thời gian − bảo trì − không rõ); "
            "khả dụng riêng = như trên, trừ thêm thời gian không tới được do cấp trên; "
            "SLA xét trên khả dụng riêng."
        ),
        "availability.no_sites": "Không có điểm nào phù hợp.",
        "sheet.sites": "Điểm",
        "sheet.summary": "Tổng hợp",
        "sheet.annotations": "Ghi chú sự cố",
        "section.summary": "Tổng hợp theo tỉnh và huyện",
        "section.sites": "Chi tiết theo điểm",
        "section.annotations": "Ghi chú của cán bộ vận hành",
        "scope.province": "Toàn tỉnh",
        # Column headings
        "col.scope": "Phạm vi",
        "col.sites": "Số điểm",
        "col.district": "Huyện",
        "col.site": "Mã điểm",
        "col.name": "Tên điểm",
        "col.kind": "Loại",
        "col.period": "Thời gian kỳ",
        "col.up": "Hoạt động",
        "col.degraded": "Suy giảm",
        "col.down": "Mất kết nối",
        "col.unreachable": "Không tới được (do cấp trên)",
        "col.maintenance": "Bảo trì",
        "col.unknown": "Không rõ (không giám sát)",
        "col.availability": "Khả dụng",
        "col.own_availability": "Khả dụng riêng",
        "col.outages": "Số lần mất kết nối",
        "col.longest": "Lần mất lâu nhất",
        "col.mttr": "MTTR (thời gian khắc phục TB)",
        "col.mtbf": "MTBF (thời gian giữa hai sự cố TB)",
        "col.coverage": "Độ phủ giám sát",
        "col.polls_on_time": "Lượt đo đúng giờ",
        "col.sla_target": "Mục tiêu SLA",
        "col.sla_met": "Đạt SLA",
        "col.sla_met_count": "Số điểm đạt SLA",
        "col.causes": "Nguyên nhân (cấp trên)",
        "col.annotations": "Ghi chú",
        "col.outage_id": "Mã sự cố",
        "col.state": "Trạng thái ghi nhận",
        "col.counted_as": "Tính là",
        "col.start": "Bắt đầu",
        "col.end": "Kết thúc",
        "col.cause": "Nguyên nhân",
        "col.ticket": "Phiếu",
        "col.author": "Người ghi",
        "col.annotated_at": "Thời điểm ghi",
        "unit.seconds": "giây",
        "value.yes": "Đạt",
        "value.no": "Không đạt",
        "value.open": "chưa kết thúc",
        "state.up": "hoạt động",
        "state.degraded": "suy giảm",
        "state.down": "mất kết nối",
        "state.unreachable": "không tới được",
        "state.maintenance": "bảo trì",
        "state.unknown": "không rõ",
        "month": "Tháng {month}/{year}",
    },
    "en": {
        "availability.title": "Network availability report",
        "availability.period": "Period",
        "availability.timezone": "Time zone",
        "availability.generated": "Generated",
        "availability.month_to_date": "Month to date (the month is not over yet).",
        "availability.links_note": (
            "A site with several links has one more row per link (Link column): its unknown, "
            "maintenance and unreachable time is the site's; links have no SLA verdict."
        ),
        "availability.formulas": (
            "Availability = (up + degraded) ÷ (period − maintenance − unknown); "
            "own availability also leaves out time unreachable because of a parent; "
            "the SLA is judged on own availability."
        ),
        "availability.no_sites": "No site matches.",
        "sheet.sites": "Sites",
        "sheet.summary": "Summary",
        "sheet.annotations": "Annotations",
        "section.summary": "Summary by province and district",
        "section.sites": "Sites",
        "section.annotations": "Operator annotations",
        "scope.province": "Province",
        "col.scope": "Scope",
        "col.sites": "Sites",
        "col.district": "District",
        "col.site": "Site",
        "col.name": "Name",
        "col.kind": "Kind",
        "col.period": "Period",
        "col.up": "Up",
        "col.degraded": "Degraded",
        "col.down": "Down",
        "col.unreachable": "Unreachable (parent)",
        "col.maintenance": "Maintenance",
        "col.unknown": "Unknown (not monitored)",
        "col.availability": "Availability",
        "col.own_availability": "Own availability",
        "col.outages": "Outages",
        "col.longest": "Longest outage",
        "col.mttr": "MTTR",
        "col.mtbf": "MTBF",
        "col.coverage": "Coverage",
        "col.polls_on_time": "Polls on time",
        "col.sla_target": "SLA target",
        "col.sla_met": "SLA met",
        "col.sla_met_count": "Sites meeting SLA",
        "col.causes": "Causes (parent)",
        "col.annotations": "Annotations",
        "col.outage_id": "Outage id",
        "col.state": "Recorded state",
        "col.counted_as": "Counted as",
        "col.start": "Start",
        "col.end": "End",
        "col.cause": "Cause",
        "col.ticket": "Ticket",
        "col.author": "Author",
        "col.annotated_at": "Annotated at",
        "unit.seconds": "s",
        "value.yes": "Met",
        "value.no": "Not met",
        "value.open": "open",
        "state.up": "up",
        "state.degraded": "degraded",
        "state.down": "down",
        "state.unreachable": "unreachable",
        "state.maintenance": "maintenance",
        "state.unknown": "unknown",
        "month": "{month_name} {year}",
    },
}
"""Report strings by language, then key."""

_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def text(key: str, lang: Lang) -> str:
    """The string ``key`` in ``lang``; KeyError names the key when it is missing."""
    return STRINGS[lang][key]


def month_title(year: int, month: int, lang: Lang) -> str:
    """The month as management writes it: ``Tháng 10/2026`` or ``October 2026``."""
    return text("month", lang).format(month=month, year=year, month_name=_EN_MONTHS[month - 1])


# --- The bandwidth report's strings (netwatch.reports.bandwidth_render) -------------------------

STRINGS["vi"].update(
    {
        "bandwidth.title": "Báo cáo băng thông đường truyền",
        "bandwidth.resolution": "Độ phân giải số liệu",
        "bandwidth.resolution_5m": "trung bình 5 phút",
        "bandwidth.resolution_1h": "trung bình theo giờ",
        "bandwidth.fallback": (
            "Tháng này cũ hơn thời hạn lưu số liệu 5 phút: số liệu tính từ trung bình theo giờ và là "
            "gần đúng (trung bình, phân vị 95 và số giờ vượt ngưỡng theo trung bình giờ; đỉnh vẫn là "
            "trung bình 5 phút lớn nhất)."
        ),
        "bandwidth.link_fallback": (
            "Các đường truyền sau không có số liệu 5 phút trong tháng (số liệu 5 phút chỉ lưu cho cổng "
            "được khai báo là đường truyền): số liệu của chúng tính từ trung bình theo giờ và là gần "
            "đúng: {links}."
        ),
        "bandwidth.definitions": (
            "Đỉnh = trung bình 5 phút lớn nhất (không phải một lần đo); P95 = phân vị 95 (hạng gần nhất) "
            "của các trung bình 5 phút; hiệu suất = so với băng thông hợp đồng; số giờ vượt ngưỡng = thời "
            "gian chiều vào hoặc ra trên {threshold} % băng thông hợp đồng."
        ),
        "bandwidth.no_links": "Không có đường truyền nào phù hợp.",
        "sheet.links": "Đường truyền",
        "col.link": "Đường truyền",
        "col.device": "Thiết bị",
        "col.interface": "Cổng",
        "col.contracted": "Băng thông hợp đồng (bit/s)",
        "col.buckets": "Số khoảng có số liệu",
        "col.resolution": "Độ phân giải",
        "col.in_avg": "Vào: trung bình (bit/s)",
        "col.in_peak": "Vào: đỉnh (bit/s)",
        "col.in_p95": "Vào: P95 (bit/s)",
        "col.in_util_avg": "Vào: hiệu suất trung bình",
        "col.in_util_p95": "Vào: hiệu suất P95",
        "col.out_avg": "Ra: trung bình (bit/s)",
        "col.out_peak": "Ra: đỉnh (bit/s)",
        "col.out_p95": "Ra: P95 (bit/s)",
        "col.out_util_avg": "Ra: hiệu suất trung bình",
        "col.out_util_p95": "Ra: hiệu suất P95",
        "col.hours_above": "Số giờ trên {threshold} %",
    }
)
STRINGS["en"].update(
    {
        "bandwidth.title": "Link bandwidth report",
        "bandwidth.resolution": "Resolution",
        "bandwidth.resolution_5m": "5-minute averages",
        "bandwidth.resolution_1h": "hourly averages",
        "bandwidth.fallback": (
            "This month is older than the 5-minute rollups' retention: figures come from hourly rollups "
            "and are approximate (average, 95th percentile and hours above from hourly averages; the "
            "peak is still the largest 5-minute average)."
        ),
        "bandwidth.link_fallback": (
            "These links have no 5-minute rollups in the month (kept only for interfaces named as "
            "links): their figures come from hourly rollups and are approximate: {links}."
        ),
        "bandwidth.definitions": (
            "Peak = largest 5-minute average (not a single poll); P95 = nearest-rank 95th percentile of "
            "the 5-minute averages; utilisation = against the contracted rate; hours above = time with "
            "in or out above {threshold} % of the contracted rate."
        ),
        "bandwidth.no_links": "No link matches.",
        "sheet.links": "Links",
        "col.link": "Link",
        "col.device": "Device",
        "col.interface": "Interface",
        "col.contracted": "Contracted (bit/s)",
        "col.buckets": "Buckets with data",
        "col.resolution": "Resolution",
        "col.in_avg": "In: average (bit/s)",
        "col.in_peak": "In: peak (bit/s)",
        "col.in_p95": "In: P95 (bit/s)",
        "col.in_util_avg": "In: average utilisation",
        "col.in_util_p95": "In: P95 utilisation",
        "col.out_avg": "Out: average (bit/s)",
        "col.out_peak": "Out: peak (bit/s)",
        "col.out_p95": "Out: P95 (bit/s)",
        "col.out_util_avg": "Out: average utilisation",
        "col.out_util_p95": "Out: P95 utilisation",
        "col.hours_above": "Hours above {threshold} %",
    }
)
