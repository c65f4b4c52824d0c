"""``/metrics`` text for families too large for prometheus_client's per-sample formatting.

prometheus_client formats every sample from scratch: it sorts and escapes the labels and joins
them into a string, per sample, per scrape. The interface families of a province (10 counters and
gauges per interface) are most of the samples, and their label sets never change between scrapes.
``benchmarks/exposition.py`` measured a scrape of 368,021 series at 7.4 s with prometheus_client's
formatting (1.1 M series in the province soak: about 20 s of a GIL-holding thread, every scrape).
:class:`TextFamily` keeps each label set's text from one scrape to the next and writes its samples
as bytes into one buffer per family (no string object per line: at 1.1 M lines those were most of
a scrape's peak memory); the HELP and TYPE lines, and every other family, are still
prometheus_client's. :func:`render_chunks` hands the families over one buffer at a time, so the
web server sends them without joining the whole body into one more copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric

LabelKey = tuple[tuple[str, str], ...]

_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}
_EXPONENT = tuple(f"e+{digits - 1:02d}" for digits in range(24))
"""Go's exponent suffix by the position of the decimal point in Python's repr (below 1e16: repr
switches to an exponent itself from there)."""


def go_float(value: float) -> str:
    """``value`` as prometheus_client's ``floatToGoString`` writes it (``+Inf``, ``NaN``, Go's
    exponent style above a million), with less work: it is called once per sample."""
    text = repr(float(value))
    dot = text.find(".")
    if dot > 6 and text[0] != "-":
        return f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.") + _EXPONENT[dot]
    if dot < 0:
        return _SPECIAL.get(text, text)
    return text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(labels: Mapping[str, str]) -> str:
    """``{name="value",…}`` as the text format writes it: names sorted, values escaped."""
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(labels.items()))
    return "{" + inner + "}" if inner else ""


class SeriesTexts(dict[LabelKey, str]):
    """One device's label texts by series labels, for one scrape: ``texts[series]`` is the text of
    the device's labels and ``series``'s together. A hit is a plain dict lookup; a miss takes the
    previous scrape's text, or writes it."""

    __slots__ = ("_common", "_previous")

    def __init__(self, common: Mapping[str, str], previous: Mapping[LabelKey, str]) -> None:
        super().__init__()
        self._common = common
        self._previous = previous

    def __missing__(self, series: LabelKey) -> str:
        found = self._previous.get(series)
        if found is None:
            found = label_text({**self._common, **dict(series)})
        self[series] = found
        return found


class LabelTexts:
    """Each label set's text, kept across scrapes; a scrape keeps only the label sets it used."""

    def __init__(self) -> None:
        self._previous: dict[Any, SeriesTexts] = {}
        self._current: dict[Any, SeriesTexts] = {}

    def device(self, key: Any, common: Mapping[str, str]) -> SeriesTexts:
        """The label texts of one device for this scrape. ``key`` names ``common`` exactly (e.g.
        the device's label values): a device whose labels changed gets new texts."""
        found = self._current.get(key)
        if found is None:
            found = self._current[key] = SeriesTexts(common, self._previous.get(key, {}))
        return found

    def end_scrape(self) -> None:
        """Forget the label sets this scrape did not use (interfaces and devices that are gone)."""
        self._previous, self._current = self._current, {}


class TextFamily(Metric):
    """A metric family whose samples are already text, in ``text`` (``samples`` stays empty)."""

    def __init__(self, name: str, documentation: str, typ: str) -> None:
        super().__init__(name, documentation, typ)
        self.sample_name = name + ("_total" if typ == "counter" else "")
        self.text = bytearray()

    def add(self, labels: str, value: float) -> None:
        """One sample, its labels as :func:`label_text` wrote them."""
        self.text += f"{self.sample_name}{labels} {go_float(value)}\n".encode()


def render_chunks(registry: Any) -> list[bytes | bytearray]:
    """The text exposition of ``registry`` in pieces whose concatenation is exactly what
    :func:`prometheus_client.generate_latest` writes."""
    parts: list[bytes | bytearray] = []
    pending: list[Metric] = []
    for metric in registry.collect():
        if isinstance(metric, TextFamily):
            if pending:
                parts.append(generate_latest(_Many(pending)))
                pending = []
            parts.append(generate_latest(_Many([Metric(metric.name, metric.documentation, metric.type)])))
            parts.append(metric.text)
        else:
            pending.append(metric)
    if pending:
        parts.append(generate_latest(_Many(pending)))
    return parts


def render(registry: Any) -> bytes:
    """The text exposition of ``registry``, as :func:`prometheus_client.generate_latest` writes it."""
    return b"".join(render_chunks(registry))


class _Many:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)
