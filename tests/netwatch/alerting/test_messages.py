"""What people read: Vietnamese and English subjects and bodies, local times, durations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from netwatch.alerting.messages import format_duration, format_time, render
from netwatch.alerting.models import NotificationBuilder
from netwatch.config.inventory import Inventory
from tests.netwatch.alerting.conftest import T0, district_down, district_up, ev

TZ = "Asia/Ho_Chi_Minh"


@pytest.mark.parametrize(
    ("delta", "vi", "en"),
    [
        (timedelta(hours=1, minutes=5, seconds=12), "1 giờ 5 phút", "1 h 5 min"),
        (timedelta(seconds=45), "45 giây", "45 s"),
        (timedelta(days=2, minutes=3), "2 ngày 3 phút", "2 d 3 min"),
        (timedelta(hours=3), "3 giờ", "3 h"),
    ],
)
def test_durations(delta: timedelta, vi: str, en: str) -> None:
    assert (format_duration(delta, "vi"), format_duration(delta, "en")) == (vi, en)


def test_times_are_local_with_their_offset() -> None:
    assert format_time(T0, TZ) == "28/11/2026 21:05:30 (GMT+7)"
    assert format_time(T0, "Asia/Kolkata") == "28/11/2026 19:35:30 (GMT+5:30)"


def test_district_outage_in_vietnamese(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory, language="vi")
    [firing] = builder.build(district_down(), T0 + timedelta(seconds=45))
    message = render(firing, TZ)
    assert (
        message.subject
        == "[netwatch] MẤT KẾT NỐI: Thành ủy Tam Kỳ (TK) — 5 điểm phía sau không truy cập được"
    )
    assert message.text == (
        "Thành ủy Tam Kỳ (TK) mất kết nối từ 28/11/2026 21:05:30 (GMT+7)\n"
        "\n"
        "Điểm: Thành ủy Tam Kỳ (TK)\n"
        "Huyện: Thành ủy Tam Kỳ (TK)\n"
        "Trạng thái hiện tại: mất kết nối\n"
        "Bắt đầu: 28/11/2026 21:05:30 (GMT+7)\n"
        "Đã kéo dài: 45 giây\n"
        "\n"
        "Các điểm không truy cập được do điểm này (5):\n"
        "  - Đảng ủy phường số 1 (Tam Kỳ) (TK-C01)\n"
        "  - Đảng ủy phường số 2 (Tam Kỳ) (TK-C02)\n"
        "  - Đảng ủy phường số 3 (Tam Kỳ) (TK-C03)\n"
        "  - Đảng ủy phường số 4 (Tam Kỳ) (TK-C04)\n"
        "  - Đảng ủy phường số 5 (Tam Kỳ) (TK-C05)\n"
        "\n"
        "Thông báo tự động của netwatch.\n"
    )
    assert "<li>Đảng ủy phường số 5 (Tam Kỳ) (TK-C05)</li>" in message.html


def test_resolution_in_english(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory, language="en")
    builder.build(district_down(), T0)
    [resolved] = builder.build(district_up(T0 + timedelta(hours=1, minutes=5)), T0)
    message = render(resolved, TZ)
    assert message.subject == "[netwatch] RESOLVED: Thành ủy Tam Kỳ (TK) — 5 sites behind it unreachable"
    assert message.summary == "Thành ủy Tam Kỳ (TK) is back after 1 h 5 min"
    assert "Ended: 28/11/2026 22:10:30 (GMT+7)\nDuration: 1 h 5 min\n" in message.text


def test_reminder_is_marked(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory, language="vi")
    builder.build([district_down()[0]], T0)
    [reminder] = builder.open_alerts(T0 + timedelta(hours=4))
    assert render(reminder, TZ).subject.endswith("(nhắc lại)")
    assert "Đã kéo dài: 4 giờ\n" in render(reminder, TZ).text


def test_a_down_site_that_becomes_unreachable_tells_the_cause(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory, language="en")
    builder.build([ev("HA", "up", "down", T0)], T0)
    [resolved] = builder.build([ev("HA", "down", "unreachable", T0 + timedelta(minutes=7), cause="TU")], T0)
    text = render(resolved, TZ).text
    assert "State now: unreachable\n" in text
    assert "Cause: Tỉnh ủy Quảng Nam (TU) is down\n" in text
