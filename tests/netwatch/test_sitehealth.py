"""The per-site state machine, table-tested with a fake clock on a small province.

The inventory is loaded from YAML by the real loader, and every device's health comes from a real
``TargetHealth`` driven by ``observe()`` with the site's rules, so the rounds rule is exercised.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from netwatch.config import load_inventory
from netwatch.config.inventory import Inventory, MaintenanceWindow
from netwatch.health import RoundOutcome, TargetHealth
from netwatch.sitehealth import (
    EventGroup,
    SiteEvent,
    SiteEventKind,
    SiteHealthEngine,
    SiteState,
    SiteStatus,
    group_events,
    prevailing,
    window_occurrence,
)

# Sunday 4 October 2026, 10:00 in Asia/Ho_Chi_Minh (UTC+7).
T0 = datetime(2026, 10, 4, 3, 0, tzinfo=UTC)
G, D, F = RoundOutcome.GOOD, RoundOutcome.DEGRADED, RoundOutcome.FAILED
UP, DEG, DOWN = SiteState.UP, SiteState.DEGRADED, SiteState.DOWN
UNREACH, MAINT, UNKNOWN = SiteState.UNREACHABLE, SiteState.MAINTENANCE, SiteState.UNKNOWN

# Province hub TU → districts TK (one link, on an interface) and DB (dual-homed: Megawan + 4G)
# → two communes each. TK-C2 has no links: its devices stand for it. UB-DB hangs off the
# province by parent but reaches it through DB's router (upstream chain only).
PROVINCE = """\
province: {code: QNM, name: Quảng Nam}
defaults:
  down_after: 3
  collectors: {icmp: {interval: 10, probes: 3}}
site_kinds:
  province: {}
  district: {}
  commune: {}
sites:
  - {code: TU, name: Tỉnh ủy Quảng Nam, kind: province}
  - code: TK
    name: Thành ủy Tam Kỳ
    kind: district
    parent: TU
    links: [{device: tk-router, interface: ge-0/0/0, contracted_bps: 10 Mbit/s}]
  - code: DB
    name: Thị ủy Điện Bàn
    kind: district
    parent: TU
    links: [{device: db-megawan, name: Megawan}, {device: db-lte, name: 4G}]
  - {code: TK-C1, name: Phường An Mỹ, kind: commune, parent: TK, links: [{device: tk-c1}]}
  - {code: TK-C2, name: Phường An Xuân, kind: commune, parent: TK}
  - {code: DB-C1, name: Xã Điện Hòa, kind: commune, parent: DB, links: [{device: db-c1}]}
  - {code: DB-C2, name: Xã Điện Thắng Bắc, kind: commune, parent: DB, links: [{device: db-c2}]}
  - {code: UB-DB, name: UBND thị xã Điện Bàn, kind: district, parent: TU, links: [{device: ub-db}]}
devices:
  - {name: tu-router, site: TU, address: 203.0.113.1, role: router}
  - {name: tk-router, site: TK, address: 203.0.113.10, role: router, upstream: tu-router}
  - {name: db-megawan, site: DB, address: 203.0.113.20, role: router, upstream: tu-router}
  - {name: db-lte, site: DB, address: 203.0.113.21, role: router, upstream: tu-router}
  - {name: tk-c1, site: TK-C1, address: 198.51.100.11, role: router, upstream: tk-router}
  - {name: tk-c2, site: TK-C2, address: 198.51.100.12, role: router, upstream: tk-router}
  - {name: db-c1, site: DB-C1, address: 198.51.100.21, role: router, upstream: db-megawan}
  - {name: db-c2, site: DB-C2, address: 198.51.100.22, role: router, upstream: db-megawan}
  - {name: ub-db, site: UB-DB, address: 198.51.100.30, role: router, upstream: db-megawan}
"""

Row = tuple[int, str, str, str, int, str | None]
"""One STATE event as (time of the step that returned it, site, old, new, since, cause), in s from T0."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def secs(when: datetime) -> int:
    return round((when - T0).total_seconds())


def load(tmp_path: Path, extra: str = "", text: str = PROVINCE) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return load_inventory(path)


class Net:
    """The engine with a real TargetHealth per device, and a log of the events it returned."""

    def __init__(self, inventory: Inventory, **options: object) -> None:
        self.inventory = inventory
        self.engine = SiteHealthEngine(inventory, **options)  # type: ignore[arg-type]
        self.health = {d: TargetHealth(rules=inventory.site_of_device(d).rules) for d in inventory.devices}
        self.events: list[tuple[int, SiteEvent]] = []

    def _keep(self, t: float, events: list[SiteEvent]) -> list[SiteEvent]:
        self.events.extend((round(t), e) for e in events)
        return events

    def icmp(self, t: float, device: str, outcome: RoundOutcome) -> list[SiteEvent]:
        self.health[device].observe(outcome, at(t))
        return self._keep(t, self.engine.on_target(device, "icmp", self.health[device], at(t)))

    def iface(self, t: float, device: str, ifname: str, up: bool) -> list[SiteEvent]:
        return self._keep(t, self.engine.on_interface(device, ifname, up, at(t)))

    def tick(self, t: float) -> list[SiteEvent]:
        return self._keep(t, self.engine.tick(at(t)))

    def all(self, t: float, outcome: RoundOutcome = G, skip: Iterable[str] = ()) -> None:
        for device in sorted(set(self.inventory.devices) - set(skip)):
            self.icmp(t, device, outcome)

    def rows(self, since: int = 1) -> list[Row]:
        """STATE events returned at or after call time ``since`` (the baseline at 0 is left out)."""
        return [
            (t, e.site, e.old.value, e.new.value, secs(e.since), e.cause)
            for t, e in self.events
            if t >= since and e.kind is SiteEventKind.STATE
        ]

    def state(self, site: str) -> tuple[str, int | None, str | None]:
        status = self.engine.status(site)
        return status.state.value, None if status.since is None else secs(status.since), status.cause


Step = tuple[int, str, int, tuple[object, ...]]
"""(call time, kind, time the step is about, arguments); steps run in call-time order."""


def I(t: int, device: str, outcome: RoundOutcome, reported: int | None = None) -> Step:  # noqa: E743
    """A round of ``device`` that started at ``t``, reported at ``reported`` (default: at once)."""
    return (t if reported is None else reported, "icmp", t, (device, outcome))


def IF(t: int, device: str, ifname: str, up: bool) -> Step:
    return (t, "if", t, (device, ifname, up))


def TICK(t: int) -> Step:
    return (t, "tick", t, ())


def fails(device: str, times: Iterable[int]) -> list[Step]:
    return [I(t, device, F) for t in times]


def play(net: Net, steps: list[Step]) -> None:
    for _, kind, t, args in sorted(steps, key=lambda step: step[0]):
        if kind == "icmp":
            device, outcome = args
            assert isinstance(device, str) and isinstance(outcome, RoundOutcome)
            net.icmp(t, device, outcome)
        elif kind == "if":
            device, ifname, up = args
            net.iface(t, str(device), str(ifname), bool(up))
        else:
            net.tick(t)


@pytest.fixture
def province(tmp_path: Path) -> Inventory:
    return load(tmp_path)


@pytest.fixture
def net(province: Inventory) -> Net:
    net = Net(province)
    net.all(0)
    return net


def test_baseline_every_site_up_from_its_first_good_round_parents_first(province: Inventory) -> None:
    net = Net(province)
    assert set(net.engine.statuses().values()) == {SiteStatus()}
    net.all(0)
    assert {site: net.state(site) for site in net.engine.statuses()} == {
        site: ("up", 0, None) for site in province.sites
    }
    assert list(net.engine.statuses()) == ["TU", "DB", "TK", "DB-C1", "DB-C2", "TK-C1", "TK-C2", "UB-DB"]


CASES: list[tuple[str, list[Step], list[Row]]] = [
    (
        "district decides first: its failing communes are unreachable in the same call, cause the district",
        fails("tk-router", [10, 20, 30])
        + fails("tk-c1", [12, 22, 32, 42])
        + fails("tk-c2", [12, 22, 32, 42]),
        [
            (30, "TK", "up", "down", 10, None),
            (30, "TK-C1", "up", "unreachable", 12, "TK"),
            (30, "TK-C2", "up", "unreachable", 12, "TK"),
        ],
    ),
    (
        "race: the communes' three rounds end before the district's: held, never DOWN, then unreachable",
        fails("tk-router", [10, 20, 30]) + fails("tk-c1", [12, 17, 22, 27]) + fails("tk-c2", [14, 19, 24]),
        [
            (30, "TK", "up", "down", 10, None),
            (30, "TK-C1", "up", "unreachable", 12, "TK"),
            (30, "TK-C2", "up", "unreachable", 14, "TK"),
        ],
    ),
    (
        "race, but the district recovers: the held commune is DOWN from its own first failed round",
        [*fails("tk-router", [10, 20]), I(30, "tk-router", G), *fails("tk-c1", [12, 17, 22, 27])],
        [(30, "TK-C1", "up", "down", 12, None)],
    ),
    (
        "the parent went down after the commune's own failure began: unreachable from the parent's start",
        fails("tk-router", [20, 30, 40]) + fails("tk-c1", [12, 22, 32]),
        [(40, "TK", "up", "down", 20, None), (40, "TK-C1", "up", "unreachable", 20, "TK")],
    ),
    (
        "district recovers: communes back UP at their own first good round",
        [
            *fails("tk-router", [10, 20, 30, 40]),
            I(50, "tk-router", G),
            *fails("tk-c1", [12, 22, 32, 42]),
            I(52, "tk-c1", G),
            *fails("tk-c2", [12, 22, 32, 42]),
            I(55, "tk-c2", G),
        ],
        [
            (30, "TK", "up", "down", 10, None),
            (30, "TK-C1", "up", "unreachable", 12, "TK"),
            (30, "TK-C2", "up", "unreachable", 12, "TK"),
            (50, "TK", "down", "up", 50, None),
            (52, "TK-C1", "unreachable", "up", 52, None),
            (55, "TK-C2", "unreachable", "up", 55, None),
        ],
    ),
    (
        "district recovers: a commune unreachable on its first failed rounds is UP from its good round",
        [
            *fails("tk-router", [10, 20, 30]),
            I(40, "tk-router", G),
            *fails("tk-c1", [25, 35]),
            I(45, "tk-c1", G),
        ],
        [
            (30, "TK", "up", "down", 10, None),
            (30, "TK-C1", "up", "unreachable", 25, "TK"),
            (40, "TK", "down", "up", 40, None),
            (45, "TK-C1", "unreachable", "up", 45, None),
        ],
    ),
    (
        "province recovers, district really down: the commune stays unreachable, now because of the district",
        [
            *fails("tu-router", [10, 20, 30]),
            I(40, "tu-router", G),
            *fails("tk-router", [11, 21, 31, 41, 51]),
            *fails("tk-c1", [12, 22, 32, 42, 52]),
        ],
        [
            (30, "TU", "up", "down", 10, None),
            (30, "TK", "up", "unreachable", 11, "TU"),
            (30, "TK-C1", "up", "unreachable", 12, "TU"),
            (40, "TU", "down", "up", 40, None),
            (41, "TK", "unreachable", "down", 40, None),
        ],
    ),
    (
        "district recovers, one commune really down: DOWN from the district's recovery, after a failed round",
        [*fails("tk-router", [10, 20, 30]), I(40, "tk-router", G), *fails("tk-c1", [12, 22, 32, 42, 52])],
        [
            (30, "TK", "up", "down", 10, None),
            (30, "TK-C1", "up", "unreachable", 12, "TK"),
            (40, "TK", "down", "up", 40, None),
            (42, "TK-C1", "unreachable", "down", 40, None),
        ],
    ),
    (
        "a commune down alone is DOWN; two lost rounds are nothing",
        fails("tk-c1", [10, 20, 30]) + fails("db-c1", [10, 20]) + [I(30, "db-c1", G)],
        [(30, "TK-C1", "up", "down", 10, None)],
    ),
    (
        "dual-homed: one link down is DEGRADED, both DOWN (from the later link's failure), then back",
        fails("db-megawan", [10, 20, 30, 40, 50, 60])
        + fails("db-lte", [35, 45, 55])
        + [I(65, "db-lte", G), I(70, "db-megawan", G)],
        [
            (30, "DB", "up", "degraded", 10, None),
            (55, "DB", "degraded", "down", 35, None),
            (65, "DB", "down", "degraded", 65, None),
            (70, "DB", "degraded", "up", 70, None),
        ],
    ),
    (
        "dual-homed: a degraded round on one link degrades the site",
        [I(10, "db-lte", D), I(20, "db-lte", G)],
        [(10, "DB", "up", "degraded", 10, None), (20, "DB", "degraded", "up", 20, None)],
    ),
    (
        "dual-homed district down: its communes and the site behind its router are unreachable",
        fails("db-megawan", [10, 20, 30])
        + fails("db-lte", [11, 21, 31])
        + fails("db-c1", [12, 22])
        + fails("ub-db", [13, 23, 33])
        + [I(32, "db-c2", G)],
        [
            (30, "DB", "up", "degraded", 10, None),
            (31, "DB", "degraded", "down", 11, None),
            (31, "DB-C1", "up", "unreachable", 12, "DB"),
            (31, "UB-DB", "up", "unreachable", 13, "DB"),
        ],
    ),
    (
        "province down: every failing site below is unreachable, cause the province",
        fails("tu-router", [10, 20, 30])
        + fails("tk-router", [11, 21, 31])
        + fails("tk-c1", [12, 22, 32])
        + fails("db-megawan", [13, 23])
        + fails("db-lte", [13, 23]),
        [
            (30, "TU", "up", "down", 10, None),
            (30, "DB", "up", "unreachable", 13, "TU"),
            (30, "TK", "up", "unreachable", 11, "TU"),
            (30, "TK-C1", "up", "unreachable", 12, "TU"),
        ],
    ),
    (
        "interface oper-down: link DOWN at once; oper-up keeps it DOWN until a good round after it",
        [
            IF(15, "tk-router", "ge-0/0/0", False),
            I(20, "tk-router", G),
            IF(25, "tk-router", "ge-0/0/0", True),
            I(24, "tk-router", G, reported=26),  # started before the oper-up: does not count
            I(30, "tk-router", G),
        ],
        [(15, "TK", "up", "down", 15, None), (30, "TK", "down", "up", 30, None)],
    ),
    (
        "oper-up seen again on the next SNMP poll: a good round after the first oper-up counts",
        [
            IF(15, "tk-router", "ge-0/0/0", False),
            IF(25, "tk-router", "ge-0/0/0", True),
            IF(35, "tk-router", "ge-0/0/0", True),
            I(32, "tk-router", G, reported=36),
        ],
        [(15, "TK", "up", "down", 15, None), (32, "TK", "down", "up", 32, None)],
    ),
    (
        "oper-down on an interface no link names changes nothing",
        [IF(15, "tk-router", "ge-0/0/9", False), IF(15, "tk-c1", "eth0", False), I(20, "tk-router", G)],
        [],
    ),
    (
        "interface down during ICMP failures: DOWN from the oper-down; the ICMP verdict keeps it down",
        [
            *fails("tk-router", [10, 20, 30]),
            IF(12, "tk-router", "ge-0/0/0", False),
            IF(35, "tk-router", "ge-0/0/0", True),
            I(40, "tk-router", G),
        ],
        [(12, "TK", "up", "down", 12, None), (40, "TK", "down", "up", 40, None)],
    ),
    (
        "held commune whose district never decides: DOWN once the hold bound ((3 + 1) × 10 s) passes",
        fails("tk-router", [10, 20]) + fails("tk-c1", [12, 17, 22]) + [TICK(61), TICK(62)],
        [(62, "TK-C1", "up", "down", 12, None)],
    ),
]


def case(prefix: str) -> list[Step]:
    """The steps of the one case whose name starts with ``prefix``."""
    (steps,) = [steps for name, steps, _ in CASES if name.startswith(prefix)]
    return steps


@pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_site_events(net: Net, steps: list[Step], expected: list[Row]) -> None:
    play(net, steps)
    assert net.rows() == expected


def test_unreachable_outage_is_not_a_down_in_status_or_events(net: Net) -> None:
    play(net, case("race: the communes' three rounds"))
    assert net.state("TK-C1") == ("unreachable", 12, "TK")
    assert net.state("TK") == ("down", 10, None)
    assert not [r for r in net.rows() if r[1].startswith("TK-C") and r[3] == "down"]


def test_cause_moves_to_the_nearest_down_ancestor_without_an_event(net: Net) -> None:
    play(net, case("province recovers, district really down"))
    assert net.state("TK-C1") == ("unreachable", 12, "TK")


def test_a_site_turning_down_under_a_held_parent_waits_for_the_parent(net: Net) -> None:
    # The province's outage ends at 40; the district, unreachable through it, is held until a
    # round of its own after 40 tells. A commune turning DOWN meanwhile waits for the district.
    play(net, [*fails("tu-router", [10, 20, 30]), I(40, "tu-router", G), *fails("tk-router", [11, 21, 31])])
    play(net, fails("tk-c1", [33, 36, 39]))
    assert net.state("TK") == ("unreachable", 11, "TU")
    assert net.state("TK-C1") == ("up", 0, None)
    net.icmp(41, "tk-router", F)
    assert net.rows(since=40) == [
        (40, "TU", "down", "up", 40, None),
        (41, "TK", "unreachable", "down", 40, None),
        (41, "TK-C1", "up", "unreachable", 40, "TK"),
    ]


def test_one_notification_for_a_district_and_its_communes(net: Net) -> None:
    play(net, fails("tk-router", [10, 20]) + fails("tk-c1", [12, 22]) + fails("tk-c2", [12, 22]))
    events = net.icmp(30, "tk-router", F)
    groups = group_events(events)
    assert len(groups) == 1
    assert groups[0].head.site == "TK" and groups[0].head.new is DOWN
    assert groups[0].unreachable == ("TK-C1", "TK-C2")
    for t in (40, 42):
        net.icmp(t, "tk-router", F)
    # Communes come back with their own rounds, in later calls: a caller that batches the calls
    # of a few seconds gets one "back up" notification too.
    district_back = net.icmp(50, "tk-router", G)
    assert [(g.head.site, g.recovered) for g in group_events(district_back)] == [("TK", ())]
    batch = district_back + net.icmp(52, "tk-c1", G) + net.icmp(52, "tk-c2", G)
    assert [(g.head.site, g.recovered) for g in group_events(batch)] == [("TK", ("TK-C1", "TK-C2"))]


def test_group_events_brings_recoveries_under_their_cause_when_in_the_same_list() -> None:
    down = SiteEvent("TK", DOWN, UP, at(50))
    back = SiteEvent("TK-C1", UNREACH, UP, at(50), old_cause="TK")
    alone = SiteEvent("DB-C1", UP, DOWN, at(50))
    assert group_events([down, back, alone]) == [
        EventGroup(down, (back,)),
        EventGroup(alone),
    ]
    assert EventGroup(down, (back,)).recovered == ("TK-C1",)


def test_non_icmp_polls_do_not_move_links(net: Net) -> None:
    health = TargetHealth(rules=net.inventory.sites["TK"].rules)
    for t in (10, 20, 30):
        health.observe(F, at(t))
        assert net.engine.on_target("tk-router", "snmp", health, at(t)) == []
    assert net.state("TK") == ("up", 0, None)


# -- maintenance -----------------------------------------------------------------------------

ONE_OFF = """\
maintenance:
  - {name: Nâng cấp router Điện Bàn, sites: [DB], start: "2026-10-04T10:10:00", end: "2026-10-04T10:20:00"}
"""


def test_one_off_window_covers_the_subtree_and_starts_and_ends_at_its_boundaries(tmp_path: Path) -> None:
    net = Net(load(tmp_path, ONE_OFF))
    net.all(0)
    assert net.tick(599) == []
    play(net, [TICK(603)])
    # The district fails for good during the window; so does one commune.
    play(net, fails("db-megawan", range(610, 800, 10)) + fails("db-lte", range(611, 800, 10)))
    play(net, fails("db-c1", range(612, 800, 10)))
    play(net, [TICK(1205)])
    assert net.rows() == [
        (603, "DB", "up", "maintenance", 600, None),
        (603, "DB-C1", "up", "maintenance", 600, None),
        (603, "DB-C2", "up", "maintenance", 600, None),
        (1205, "DB", "maintenance", "down", 1200, None),
        (1205, "DB-C1", "maintenance", "unreachable", 1200, "DB"),
        (1205, "DB-C2", "maintenance", "up", 1200, None),
    ]
    # UB-DB depends on DB through its router but is not in DB's subtree: unreachable, not maintenance.
    assert net.state("UB-DB") == ("up", 0, None)
    assert net.state("TK") == ("up", 0, None)


WEEKLY = """\
maintenance:
  - {name: Bảo trì hằng tuần, sites: [TK], every: [sun], at: "23:00", duration: 2h}
"""


def test_weekly_window_across_local_midnight(tmp_path: Path) -> None:
    net = Net(load(tmp_path, WEEKLY))
    net.all(0)
    sunday_23 = 13 * 3600  # 23:00 local on Sunday is 16:00 UTC, 13 h after T0
    play(net, [TICK(sunday_23 - 1), TICK(sunday_23 + 4)])
    assert net.state("TK-C2") == ("maintenance", sunday_23, None)
    # Monday 00:30 local: still the Sunday window, though the local weekday is Monday.
    play(net, [TICK(sunday_23 + 5400)])
    assert net.state("TK") == ("maintenance", sunday_23, None)
    play(net, [TICK(sunday_23 + 7200 + 9)])
    assert net.rows() == [
        (sunday_23 + 4, site, "up", "maintenance", sunday_23, None) for site in ("TK", "TK-C1", "TK-C2")
    ] + [
        (sunday_23 + 7209, site, "maintenance", "up", sunday_23 + 7200, None)
        for site in ("TK", "TK-C1", "TK-C2")
    ]
    # Monday 23:00 local is not a Sunday.
    assert net.tick(sunday_23 + 86400 + 60) == []


@pytest.mark.parametrize(
    "window",
    [
        MaintenanceWindow(
            "w",
            ("TK",),
            weekdays=(6,),
            daily_start=time(23, 0),
            duration=timedelta(hours=2),
        ),
        MaintenanceWindow(
            "d",
            ("TK",),
            daily_start=time(1, 30),
            duration=timedelta(minutes=45),
        ),
        MaintenanceWindow("o", ("TK",), start=at(3600), end=at(7200)),
    ],
    ids=["weekly", "daily", "one-off"],
)
def test_window_occurrence_agrees_with_covers(window: MaintenanceWindow) -> None:
    for minute in range(0, 8 * 24 * 60, 7):
        when = at(minute * 60)
        occurrence = window_occurrence(window, when)
        assert (occurrence is not None) == window.covers(when)
        if occurrence is not None:
            assert occurrence[0] <= when < occurrence[1]
            assert window.covers(occurrence[0]) and not window.covers(occurrence[1])


def test_windows_back_to_back_and_with_a_gap_between_ticks(tmp_path: Path) -> None:
    extra = """\
maintenance:
  - {name: a, sites: [TK-C1], start: "2026-10-04T10:10:00", end: "2026-10-04T10:20:00"}
  - {name: b, sites: [TK-C1], start: "2026-10-04T10:20:00", end: "2026-10-04T10:30:00"}
  - {name: c, sites: [TK-C1], start: "2026-10-04T10:31:00", end: "2026-10-04T10:40:00"}
"""
    net = Net(load(tmp_path, extra))
    net.all(0)
    play(net, [TICK(601), TICK(1201), TICK(1895), TICK(2405)])
    assert net.rows() == [
        (601, "TK-C1", "up", "maintenance", 600, None),
        (1895, "TK-C1", "maintenance", "up", 1800, None),
        (1895, "TK-C1", "up", "maintenance", 1860, None),
        (2405, "TK-C1", "maintenance", "up", 2400, None),
    ]


# -- precedence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({UP, DEG}, DEG),
        ({UP, DEG, DOWN}, DOWN),
        ({DOWN, UNREACH}, UNREACH),
        ({UNREACH, MAINT}, MAINT),
        ({MAINT, UNKNOWN, DOWN}, UNKNOWN),
        ({UP}, UP),
    ],
)
def test_prevailing_follows_the_precedence(states: set[SiteState], expected: SiteState) -> None:
    assert prevailing(states) is expected


def test_maintenance_beats_unreachable_and_unknown_beats_maintenance(tmp_path: Path) -> None:
    extra = """\
maintenance:
  - {name: w, sites: [TK-C1, DB-C1], start: "2026-10-04T10:00:00", end: "2026-10-04T11:00:00"}
"""
    net = Net(load(tmp_path, extra))
    net.all(0, skip=["db-c1"])
    play(net, [TICK(1), *fails("tk-router", [10, 20, 30]), *fails("tk-c1", [11, 21, 31]), TICK(40)])
    assert net.state("TK") == ("down", 10, None)
    assert net.state("TK-C1") == ("maintenance", 0, None)
    assert net.state("DB-C1") == ("unknown", None, None)  # never measured: not "in maintenance"
    play(net, [TICK(3601)])
    assert net.state("TK-C1") == ("unreachable", 3600, "TK")


def test_monitoring_stopped_makes_every_site_unknown_then_resumes(net: Net) -> None:
    play(net, fails("tk-c1", [10, 20, 30]))
    stopped = net.engine.set_monitoring(False, at(100))
    assert [(e.site, e.old, e.new, secs(e.since)) for e in stopped][:2] == [
        ("TU", UP, UNKNOWN, 100),
        ("DB", UP, UNKNOWN, 100),
    ]
    assert {s.state for s in net.engine.statuses().values()} == {UNKNOWN}
    assert net.engine.set_monitoring(False, at(101)) == []
    resumed = net.engine.set_monitoring(True, at(200))
    assert ("TK-C1", UNKNOWN, DOWN, 200) in [(e.site, e.old, e.new, secs(e.since)) for e in resumed]
    assert net.state("TU") == ("up", 200, None)


# -- flapping --------------------------------------------------------------------------------


def test_flapping_turns_on_after_more_than_four_changes_and_off_after_a_quiet_window(net: Net) -> None:
    outcomes = [F, F, F, G] * 2 + [F, F, F]
    for i, outcome in enumerate(outcomes, start=1):
        net.icmp(10 * i, "tk-c1", outcome)
    flaps = [(t, e.flapping, secs(e.since)) for t, e in net.events if e.kind is SiteEventKind.FLAPPING]
    assert flaps == [(110, True, 110)]
    assert [r[3] for r in net.rows()] == ["down", "up", "down", "up", "down"]
    assert net.engine.status("TK-C1").flapping
    assert net.engine.status("TK-C2").flapping is False
    assert net.tick(110 + 599) == []
    cleared = net.tick(110 + 605)
    assert [(e.site, e.kind, e.flapping, secs(e.since)) for e in cleared] == [
        ("TK-C1", SiteEventKind.FLAPPING, False, 710)
    ]
    assert net.engine.status("TK-C1") == SiteStatus(DOWN, at(90), None, False)


def test_four_changes_in_ten_minutes_are_not_flapping(net: Net) -> None:
    for i, outcome in enumerate([F, F, F, G, F, F, F, G], start=1):
        net.icmp(10 * i, "tk-c1", outcome)
    assert not [e for _, e in net.events if e.kind is SiteEventKind.FLAPPING]
    assert net.engine.status("TK-C1").flapping is False


def test_a_lossy_link_between_up_and_degraded_is_not_flapping(net: Net) -> None:
    for i, outcome in enumerate([G, D] * 10, start=1):
        net.icmp(10 * i, "tk-c1", outcome)
    assert [r[3] for r in net.rows()].count("degraded") == 10
    assert not [e for _, e in net.events if e.kind is SiteEventKind.FLAPPING]


# -- restart, reload ----------------------------------------------------------------------------


def test_restore_keeps_an_open_down_with_its_original_since(province: Inventory) -> None:
    net = Net(province)
    opened = at(-3600)
    net.engine.restore("TK-C1", SiteStatus(DOWN, opened))
    net.engine.restore("GONE", SiteStatus(DOWN, opened))
    net.all(0, skip=["tk-c1"])
    play(net, fails("tk-c1", [1, 11, 21]))
    assert net.engine.status("TK-C1") == SiteStatus(DOWN, opened)
    assert [e for _, e in net.events if e.site == "TK-C1"] == []
    net.icmp(31, "tk-c1", G)
    assert net.rows(since=31) == [(31, "TK-C1", "down", "up", 31, None)]


def test_replace_inventory_drops_removed_sites_adds_new_ones_and_keeps_the_rest(
    net: Net, tmp_path: Path
) -> None:
    play(net, fails("tk-c1", [10, 20, 30]))
    text = PROVINCE.replace(
        "  - {code: TK-C2, name: Phường An Xuân, kind: commune, parent: TK}\n",
        "  - {code: TK-C3, name: Phường Hòa Hương, kind: commune, parent: TK, links: [{device: tk-c3}]}\n",
    ).replace(
        "  - {name: tk-c2, site: TK-C2, address: 198.51.100.12, role: router, upstream: tk-router}\n",
        "  - {name: tk-c3, site: TK-C3, address: 198.51.100.13, role: router, upstream: tk-router}\n",
    )
    events = net.engine.replace_inventory(load(tmp_path, text=text), at(40))
    assert [(e.site, e.old, e.new, secs(e.since)) for e in events] == [("TK-C2", UP, UNKNOWN, 40)]
    assert "TK-C2" not in net.engine.statuses()
    assert net.engine.status("TK-C3") == SiteStatus()
    assert net.state("TK-C1") == ("down", 10, None)
    # The new site is measured like any other; the old one's device is gone.
    health = TargetHealth(rules=net.inventory.sites["TK"].rules)
    health.observe(G, at(50))
    assert [(e.site, e.new) for e in net.engine.on_target("tk-c3", "icmp", health, at(50))] == [("TK-C3", UP)]
    assert net.engine.on_target("tk-c2", "icmp", health, at(50)) == []


def test_hold_bound_follows_the_rules_and_can_be_overridden(province: Inventory) -> None:
    assert SiteHealthEngine(province).hold_bound("TK-C1") == timedelta(seconds=40)
    assert SiteHealthEngine(province, hold_limit=timedelta(seconds=5)).hold_bound("TK-C1") == timedelta(
        seconds=5
    )
