"""An ancestor netwatch cannot measure (its shard is silent) makes failing dependents UNKNOWN, not DOWN.

Same small province and fake clock as ``test_sitehealth``: rounds every 10 s, ``down_after`` 3, so a
commune's hold bound is (3 + 1) × 10 s = 40 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.config.inventory import Inventory
from tests.netwatch.test_sitehealth import DOWN, UNKNOWN, UP, G, I, Net, at, fails, load, play


@pytest.fixture
def province(tmp_path: Path) -> Inventory:
    return load(tmp_path)


@pytest.fixture
def net(province: Inventory) -> Net:
    net = Net(province)
    net.all(0)
    return net


def _failing_behind_unmeasured_district(net: Net) -> None:
    """TK stops being measured at 5; TK-C1 fails every round from 10 to 90 (DOWN by its rounds at 30)."""
    events = net._keep(5, net.engine.set_measured("TK", False, at(5)))
    assert [(e.site, e.old, e.new) for e in events] == [("TK", UP, UNKNOWN)]
    assert net.state("TK") == ("unknown", 5, None)
    play(net, fails("tk-c1", [10, 20, 30]))
    assert net.state("TK-C1") == ("up", 0, None), "held while the district cannot be seen"
    net.tick(69)
    assert net.state("TK-C1") == ("up", 0, None), "still within the hold bound (30 + 40 s)"
    play(net, fails("tk-c1", [40, 50, 60]))
    net.tick(70)
    play(net, fails("tk-c1", [80, 90]))
    net.tick(300)


def test_past_the_hold_bound_a_dependent_of_an_unmeasured_site_is_unknown_never_down(net: Net) -> None:
    _failing_behind_unmeasured_district(net)
    assert net.state("TK-C1") == ("unknown", 10, "TK")
    assert net.rows() == [(5, "TK", "up", "unknown", 5, None), (70, "TK-C1", "up", "unknown", 10, "TK")]
    # The sibling that does not fail, and the other district's subtree, are untouched.
    assert net.state("DB-C1") == ("up", 0, None)


def test_the_unmeasured_site_seen_up_again_makes_the_dependent_down_from_its_first_failed_round(
    net: Net,
) -> None:
    _failing_behind_unmeasured_district(net)
    net.icmp(100, "tk-router", G)
    assert net.rows(since=100) == [
        (100, "TK", "unknown", "up", 100, None),
        (100, "TK-C1", "unknown", "down", 10, None),
    ]


def test_the_unmeasured_site_seen_down_again_makes_the_dependent_unreachable(net: Net) -> None:
    _failing_behind_unmeasured_district(net)
    play(net, [*fails("tk-router", [100, 110, 120]), *fails("tk-c1", [102, 112, 122])])
    assert net.rows(since=100) == [
        (100, "TK", "unknown", "up", 100, None),
        (120, "TK", "up", "down", 100, None),
        (120, "TK-C1", "unknown", "unreachable", 100, "TK"),
    ]


def test_a_round_reported_late_from_before_the_blindness_does_not_end_it(net: Net) -> None:
    _failing_behind_unmeasured_district(net)
    net.icmp(4, "tk-router", G)
    assert net.state("TK") == ("unknown", 5, None)
    assert net.state("TK-C1") == ("unknown", 10, "TK")


def test_a_down_parent_no_longer_measured_stops_being_the_cause_without_rewriting_the_past(
    net: Net,
) -> None:
    play(net, fails("tk-router", [10, 20, 30]) + fails("tk-c1", [12, 22, 32]))
    assert net.state("TK-C1") == ("unreachable", 12, "TK")
    net.engine.set_measured("TK", False, at(35))
    assert net.state("TK") == ("unknown", 35, None)
    play(net, fails("tk-c1", [42, 52, 62, 72]))
    assert net.state("TK-C1") == ("unreachable", 12, "TK"), "held within the bound (35 + 40 s)"
    net.tick(75)
    # UNREACHABLE was true until the district went out of sight; unknown from then on.
    assert net.state("TK-C1") == ("unknown", 35, "TK")
    assert not [r for r in net.rows() if r[3] == "down" and r[1] != "TK"]


def test_a_site_already_down_stays_down_when_its_parent_goes_out_of_sight(net: Net) -> None:
    play(net, fails("tk-c1", [10, 20, 30]))
    assert net.state("TK-C1") == ("down", 10, None)
    net.engine.set_measured("TK", False, at(35))
    play(net, fails("tk-c1", [40, 50, 60, 70, 80]))
    net.tick(200)
    assert net.state("TK-C1") == ("down", 10, None), "an outage decided while the district was seen"


def test_set_measured_true_ends_the_blindness_at_once(net: Net) -> None:
    _failing_behind_unmeasured_district(net)
    events = net.engine.set_measured("TK", True, at(95))
    assert [(e.site, e.old, e.new) for e in events] == [("TK", UNKNOWN, UP), ("TK-C1", UNKNOWN, DOWN)]
    assert net.state("TK") == ("up", 95, None)
    assert net.engine.set_measured("TK", True, at(96)) == []
    assert net.engine.set_measured("NOWHERE", False, at(96)) == []


# -- start-up is not blindness --------------------------------------------------------------------


def test_start_up_a_commune_failing_before_its_district_decides_is_held_then_unreachable(
    province: Inventory,
) -> None:
    fresh = Net(province)
    play(fresh, [*fails("tk-c1", [0, 10, 20, 30]), *fails("tk-router", [1, 11, 21])])
    assert fresh.rows(since=0) == [
        (21, "TK", "unknown", "down", 1, None),
        (21, "TK-C1", "unknown", "unreachable", 1, "TK"),
    ]


def test_start_up_a_commune_whose_district_has_not_answered_yet_goes_down_by_its_own_rounds(
    province: Inventory,
) -> None:
    # Start-up UNKNOWN is not blindness: the district is being measured, just not decided yet.
    fresh = Net(province)
    play(fresh, [*fails("tk-c1", [0, 10, 20]), I(21, "tk-router", G)])
    assert fresh.rows(since=0) == [
        (20, "TK-C1", "unknown", "down", 0, None),
        (21, "TK", "unknown", "up", 21, None),
    ]
