"""``/metrics`` text for families too large for prometheus_client's per-sample formatting.

prometheus_client formats every sample from scratch: it sorts and escapes the labels and joins
them into a string, per sample, per scrape. The interface families of a province (10 counters and
gauges per interface) are most of the samples, and their label sets never change between scrapes.
``benchmarks/exposition.py`` measured a scrape of 368,021 series at 7.4 s with prometheus_client's
formatting (1.1 M series in the province soak: about 20 s of a GIL-holding thread, every scrape).
:class:`TextFamily` keeps each label set's text from one scrape to the next and writes the samples
itself; the HELP and TYPE lines, and every other family, are still prometheus_client's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

LabelKey = tuple[tuple[str, str], ...]

_go_float = cast(Callable[[float], str], floatToGoString)
"""prometheus_client's own value formatting (``+Inf``, ``NaN``, Go's exponent style)."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(labels: Mapping[str, str]) -> str:
    """``{name="value",…}`` as the text format writes it: names sorted, values escaped."""
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(labels.items()))
    return "{" + inner + "}" if inner else ""


class LabelTexts:
    """Each label set's text, kept across scrapes; a scrape keeps only the label sets it used."""

    def __init__(self) -> None:
        self._previous: dict[Any, str] = {}
        self._current: dict[Any, str] = {}

    def get(self, key: Any, common: Mapping[str, str], series: LabelKey) -> str:
        """The text of ``common`` and ``series``'s labels together, cached under ``key`` (a
        hashable naming exactly that label set, e.g. the device's label values and ``series``)."""
        found = self._current.get(key)
        if found is None:
            found = self._previous.get(key)
            if found is None:
                found = label_text({**common, **dict(series)})
            self._current[key] = found
        return found

    def end_scrape(self) -> None:
        """Forget the label sets this scrape did not use (interfaces and devices that are gone)."""
        self._previous, self._current = self._current, {}


class TextFamily(Metric):
    """A metric family whose sample lines are already text (``samples`` stays empty)."""

    def __init__(self, name: str, documentation: str, typ: str) -> None:
        super().__init__(name, documentation, typ)
        self.sample_name = name + ("_total" if typ == "counter" else "")
        self.lines: list[str] = []

    def add(self, labels: str, value: float) -> None:
        """One sample, its labels as :func:`label_text` wrote them."""
        self.lines.append(f"{self.sample_name}{labels} {_go_float(value)}\n")


def render(registry: Any) -> bytes:
    """The text exposition of ``registry``, as :func:`prometheus_client.generate_latest` writes it."""
    parts: list[bytes] = []
    pending: list[Metric] = []
    for metric in registry.collect():
        if isinstance(metric, TextFamily):
            if pending:
                parts.append(generate_latest(_Many(pending)))
                pending = []
            parts.append(generate_latest(_Many([Metric(metric.name, metric.documentation, metric.type)])))
            parts.append("".join(metric.lines).encode())
        else:
            pending.append(metric)
    if pending:
        parts.append(generate_latest(_Many(pending)))
    return b"".join(parts)


class _Many:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics
