"""The counter book: netwatch's totals and last rates per series, read from the trackers."""

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


def test_totals_and_rates_are_scaled_and_the_first_reading_has_no_rate() -> None:
    book = CounterBook()
    book.apply(poll(fc_words=(4_000, PORT), if_in_octets=(1_000, UPLINK)), 100.0)
    assert dict(book.last_rates) == {("fc_words", PORT): None, ("if_in_octets", UPLINK): None}
    book.apply(poll(fc_words=(4_400, PORT), if_in_octets=(3_000, UPLINK)), 110.0)
    # 400 octets' worth of words in 10 s, read as words (÷4) and exported in octets (×4).
    assert book.totals[("fc_words", PORT)] == 400
    assert book.last_rates[("fc_words", PORT)] == 40
    assert dict(book.totals.items()) == {("fc_words", PORT): 400, ("if_in_octets", UPLINK): 2_000}
    assert book.last_rates[("if_in_octets", UPLINK)] == 200
    assert len(book.totals) == len(book.last_rates) == 2


def test_a_series_is_forgotten_only_after_a_complete_poll_without_it() -> None:
    book = CounterBook()
    book.apply(poll(fc_words=(4_000, PORT), if_in_octets=(1_000, UPLINK)), 100.0)
    book.apply(poll(False, if_in_octets=(2_000, UPLINK)), 110.0)  # cut short: fc0 may still exist
    assert ("fc_words", PORT) in book.totals
    book.apply(poll(True, if_in_octets=(3_000, UPLINK)), 120.0)  # complete, and fc0 is gone
    assert list(book.totals) == [("if_in_octets", UPLINK)]
    assert book.scales == {}
    assert ("fc_words", PORT) not in book.last_rates
