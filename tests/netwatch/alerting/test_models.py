"""Which batches of site events page, and what one notification tells."""

from __future__ import annotations

from datetime import timedelta

from netwatch.alerting.models import NotificationBuilder, SiteRef
from netwatch.config.inventory import Inventory
from tests.netwatch.alerting.conftest import COMMUNES, T0, district_down, district_up, ev


def test_district_down_with_five_communes_is_one_notification(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory)
    [firing] = builder.build(district_down(), T0 + timedelta(seconds=45))
    assert (firing.alertname, firing.status, firing.site) == (
        "NetwatchSiteDown",
        "firing",
        SiteRef("TK", "Thành ủy Tam Kỳ"),
    )
    assert [ref.code for ref in firing.unreachable] == COMMUNES
    assert firing.unreachable[0].name == "Đảng ủy phường số 1 (Tam Kỳ)"
    assert firing.starts_at == T0 and firing.ends_at is None
    assert firing.duration == timedelta(seconds=45)

    [resolved] = builder.build(
        district_up(T0 + timedelta(hours=1, minutes=5)), T0 + timedelta(hours=1, minutes=6)
    )
    assert (resolved.status, resolved.site.code, resolved.state) == ("resolved", "TK", "up")
    assert [ref.code for ref in resolved.unreachable] == COMMUNES
    assert resolved.duration == timedelta(hours=1, minutes=5)
    assert resolved.key != firing.key


def test_communes_reported_unreachable_in_a_later_batch_join_the_district_alert(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory)
    builder.build([ev("TK", "up", "down", T0)], T0)
    assert builder.build([ev(c, "up", "unreachable", T0, cause="TK") for c in COMMUNES], T0) == []
    [reminder] = builder.open_alerts(T0 + timedelta(hours=4))
    assert reminder.reminder and [ref.code for ref in reminder.unreachable] == COMMUNES


def test_unreachable_alone_never_pages(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory)
    assert builder.build([ev("TK-C01", "up", "unreachable", T0, cause="TK")], T0) == []
    assert builder.build([ev("TK-C01", "unreachable", "up", T0)], T0) == []


def test_commune_down_on_its_own_pages_for_itself(inventory: Inventory) -> None:
    [firing] = NotificationBuilder(inventory).build([ev("TK-C03", "up", "down", T0)], T0)
    assert (firing.site.code, firing.district, firing.site_kind) == (
        "TK-C03",
        SiteRef("TK", "Thành ủy Tam Kỳ"),
        "commune",
    )


def test_degraded_pages_only_when_configured(inventory: Inventory) -> None:
    batch = [ev("HA", "up", "degraded", T0)]
    assert NotificationBuilder(inventory).build(batch, T0) == []
    [firing] = NotificationBuilder(inventory, notify_degraded=True).build(batch, T0)
    assert (firing.alertname, firing.severity) == ("NetwatchSiteDegraded", "warning")


def test_maintenance_transitions_do_not_page(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory)
    assert builder.build([ev("HA", "up", "maintenance", T0)], T0) == []
    assert builder.build([ev("HA", "maintenance", "up", T0)], T0) == []


def test_entering_maintenance_closes_an_open_down_alert(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory)
    builder.build([ev("HA", "up", "down", T0)], T0)
    [resolved] = builder.build([ev("HA", "down", "maintenance", T0 + timedelta(minutes=10))], T0)
    assert (resolved.status, resolved.state) == ("resolved", "maintenance")


def test_unknown_neither_resolves_nor_pages(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory)
    builder.build([ev("HA", "up", "down", T0)], T0)
    assert builder.build([ev("HA", "down", "unknown", T0)], T0) == []
    [resolved] = builder.build([ev("HA", "unknown", "up", T0 + timedelta(minutes=3))], T0)
    assert resolved.status == "resolved" and resolved.starts_at == T0


def test_flapping_is_told_once_on_and_once_off_and_folds_the_downs(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory)
    assert [n.alert for n in builder.build([ev("HA", "up", "down", T0)], T0)] == ["down"]
    minute = timedelta(minutes=1)
    [flapping, up] = builder.build([ev("HA", "down", "up", T0 + minute, flapping=True)], T0)
    assert (up.alertname, up.status) == ("NetwatchSiteDown", "resolved")
    assert (flapping.alertname, flapping.status, flapping.starts_at) == (
        "NetwatchSiteFlapping",
        "firing",
        T0 + minute,
    )
    for i in range(2, 8):
        old, new = ("up", "down") if i % 2 == 0 else ("down", "up")
        assert builder.build([ev("HA", old, new, T0 + i * minute, flapping=True)], T0) == []
    [stable] = builder.build([ev("HA", "up", "up", T0 + 30 * minute, flapping=False)], T0)
    assert (stable.alertname, stable.status, stable.ends_at) == (
        "NetwatchSiteFlapping",
        "resolved",
        T0 + 30 * minute,
    )


def test_a_site_still_down_when_flapping_ends_pages(inventory: Inventory) -> None:
    builder = NotificationBuilder(inventory)
    builder.build([ev("HA", "down", "up", T0, flapping=True)], T0)
    assert builder.build([ev("HA", "up", "down", T0, flapping=True)], T0) == []
    stable, down = builder.build([ev("HA", "down", "down", T0 + timedelta(minutes=20), flapping=False)], T0)
    assert (stable.alert, stable.status, down.alert, down.status) == (
        "flapping",
        "resolved",
        "down",
        "firing",
    )


def test_an_outage_open_before_a_restart_resolves_after_it(inventory: Inventory) -> None:
    from netwatch.sitehealth import SiteState, SiteStatus

    before = NotificationBuilder(inventory)
    (firing,) = before.build(district_down(), T0)
    after = NotificationBuilder(inventory)  # the restarted daemon: nothing in memory
    statuses = {"TK": SiteStatus(SiteState.DOWN, T0)}
    statuses |= {c: SiteStatus(SiteState.UNREACHABLE, T0, "TK") for c in COMMUNES}
    after.restore(statuses)
    (resolved,) = after.build(district_up(T0 + timedelta(minutes=20)), T0 + timedelta(minutes=20))
    assert (resolved.status, resolved.site.code, resolved.starts_at) == ("resolved", "TK", firing.starts_at)
    assert resolved.ends_at == T0 + timedelta(minutes=20)
    assert after.open_alerts(T0) == []
