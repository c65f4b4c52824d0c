"""netwatch's own text for the interface families is exactly what prometheus_client would write."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from netwatch.exposition import LabelTexts, TextFamily, go_float, label_text, render

label_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**63), 2**64).map(float), st.just(0.0)
)
rows = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(["ifname", "ifalias", "device", "site"]), label_values), values
    ),
    max_size=8,
)


class Registry:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


@given(rows=rows, kind=st.sampled_from(["gauge", "counter"]), doc=label_values)
def test_text_families_render_as_prometheus_client_renders_samples(
    rows: list[tuple[dict[str, str], float]], kind: str, doc: str
) -> None:
    suffix = "_total" if kind == "counter" else ""
    stock = Metric("netwatch_if_in_octets", doc, kind)
    ours = TextFamily("netwatch_if_in_octets", doc, kind)
    for labels, value in rows:
        stock.samples.append(Sample("netwatch_if_in_octets" + suffix, labels, value))
        ours.add(label_text(labels), value)
    before, after = Metric("netwatch_up", "Up.", "gauge"), Metric("netwatch_up2", "Up.", "gauge")
    before.samples.append(Sample("netwatch_up", {"device": 'r"1'}, 1.0))
    after.samples.append(Sample("netwatch_up2", {}, 0.0))
    assert render(Registry([before, ours, after])) == generate_latest(Registry([before, stock, after]))


def test_label_texts_are_kept_between_scrapes_and_forgotten_when_unused() -> None:
    texts = LabelTexts()
    device = {"device": "r1", "site": "TK"}
    eth0, eth1 = (("ifname", "eth0"),), (("ifname", "eth1"),)
    first = texts.device(("r1", "TK"), device)[eth0]
    assert first == '{device="r1",ifname="eth0",site="TK"}'
    assert texts.device(("r1", "TK"), device)[()] == '{device="r1",site="TK"}'
    texts.device(("r1", "TK"), device)[eth1]
    texts.end_scrape()
    # The next scrape reuses the text (the same object, not a new string) of eth0; eth1 is gone.
    assert texts.device(("r1", "TK"), device)[eth0] is first
    texts.end_scrape()
    texts.end_scrape()
    assert texts.device(("r1", "TK"), device)[eth0] is not first, "a label set unused for a scrape is rebuilt"
    moved = texts.device(("r1", "HA"), {"device": "r1", "site": "HA"})[eth0]
    assert moved == '{device="r1",ifname="eth0",site="HA"}', "a device whose labels changed gets new texts"


@given(value=values)
def test_values_are_written_as_prometheus_client_writes_them(value: float) -> None:
    assert go_float(value) == floatToGoString(value)
