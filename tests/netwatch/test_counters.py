"""The counter book: netwatch's totals and last rates per series, kept in slots found by position."""

from __future__ import annotations

from typing import Any

from collectors.base import CollectResult, Measurement
from netwatch.counters import CounterBook

PORT = (("ifname", "fc0"),)
UPLINK = (("ifname", "ge0"),)


def poll(success: bool = True, **readings: Any) -> CollectResult:
    """A poll with counter readings by series name (``fc_words`` counts in 4-octet words)."""
    measurements = tuple(
        Measurement(name, raw, labels, "counter") for name, (raw, labels) in readings.items()
    )
    scales = {(name, labels): 4 for name, (_, labels) in readings.items() if name == "fc_words"}
    return CollectResult(
        success=success,
        measurements=measurements,
        details={"counter_bits": {(m.name, m.labels): 64 for m in measurements}, "counter_scale": scales},
    )


def series(book: CounterBook) -> dict[tuple[str, Any], tuple[float, float | None]]:
    """Each series of the book with its (total, last rate), scaled."""
    return {key: (total, rate) for key, total, rate in book.scaled()}


def test_totals_and_rates_are_scaled_and_the_first_reading_has_no_rate() -> None:
    book = CounterBook()
    book.apply(poll(fc_words=(4_000, PORT), if_in_octets=(1_000, UPLINK)), 100.0)
    assert series(book) == {("fc_words", PORT): (0.0, None), ("if_in_octets", UPLINK): (0.0, None)}
    book.apply(poll(fc_words=(4_400, PORT), if_in_octets=(3_000, UPLINK)), 110.0)
    # 400 octets' worth of words in 10 s, read as words (÷4) and exported in octets (×4).
    assert series(book) == {("fc_words", PORT): (400, 40), ("if_in_octets", UPLINK): (2_000, 200)}


def test_a_series_is_forgotten_only_after_a_complete_poll_without_it() -> None:
    book = CounterBook()
    book.apply(poll(fc_words=(4_000, PORT), if_in_octets=(1_000, UPLINK)), 100.0)
    book.apply(poll(fc_words=(4_400, PORT), if_in_octets=(2_000, UPLINK)), 110.0)
    book.apply(poll(False, if_in_octets=(3_000, UPLINK)), 120.0)  # cut short: fc0 may still exist
    assert series(book) == {("if_in_octets", UPLINK): (2_000, 100), ("fc_words", PORT): (400, 40)}
    book.apply(poll(True, if_in_octets=(4_000, UPLINK)), 130.0)  # complete, and fc0 is gone
    assert series(book) == {("if_in_octets", UPLINK): (3_000, 100)}
    assert book.scales is None  # fc0's ×4 went with it


def test_series_keep_counting_when_a_poll_reports_them_in_another_order() -> None:
    """An agent that renumbers its rows (or a profile change) reorders the poll: each series keeps
    its own baseline and total, and a new one starts without a rate."""
    book = CounterBook()
    book.apply(poll(fc_words=(4_000, PORT), if_in_octets=(1_000, UPLINK)), 100.0)
    book.apply(poll(fc_words=(4_400, PORT), if_in_octets=(2_000, UPLINK)), 110.0)
    other = (("ifname", "ge1"),)
    book.apply(poll(if_out_octets=(50, other), if_in_octets=(2_500, UPLINK), fc_words=(4_800, PORT)), 120.0)
    assert series(book) == {
        ("if_out_octets", other): (0.0, None),
        ("if_in_octets", UPLINK): (1_500, 50),
        ("fc_words", PORT): (800, 40),
    }
    book.apply(poll(if_out_octets=(150, other), if_in_octets=(3_000, UPLINK), fc_words=(4_800, PORT)), 130.0)
    assert series(book) == {
        ("if_out_octets", other): (100, 10),
        ("if_in_octets", UPLINK): (2_000, 50),
        ("fc_words", PORT): (800, 0),
    }
