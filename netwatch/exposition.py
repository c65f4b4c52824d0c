"""``/metrics`` text for families too large for prometheus_client's per-sample formatting.

prometheus_client formats every sample from scratch: it sorts and escapes the labels and joins
them into a string, per sample, per scrape. The interface families of a province (10 counters and
gauges per interface) are most of the samples, and their label sets never change between scrapes.
``benchmarks/exposition.py`` measured a scrape of 368,021 series at 7.4 s with prometheus_client's
formatting (1.1 M series in the province soak: about 20 s of a GIL-holding thread, every scrape).
:class:`TextFamily` keeps each label set's text from one scrape to the next and writes its samples
as bytes into one buffer per family (no string object per line: at 1.1 M lines those were most of
a scrape's peak memory); the HELP and TYPE lines, and every other family, are still
prometheus_client's. :func:`render_stepped` builds them on the event loop between polls and hands
them over one buffer at a time, so the web server sends them without joining the whole body into
one more copy.

A device's samples change only when it is polled (every 60 s for interfaces), while Prometheus
scrapes every 15 s: :class:`KeptBlocks` keeps the text a scrape wrote for each device, compressed,
and the next scrapes copy it until the device is polled again.

For a scraper that takes gzip (Prometheus does), each text family is compressed as it is written,
a gzip member of its own, and the body is those members one after the other (RFC 1952 allows
several; Go's and Python's readers read them all). A scrape then holds its 1.1 M series as about
15 MB of gzip instead of 150 MB of text, and sends a tenth of the bytes.
"""

from __future__ import annotations

import asyncio
import zlib
from array import array
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from gzip import compress as gzip_compress
from typing import Any, Protocol

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

LabelKey = tuple[tuple[str, str], ...]

SLICE_SECONDS = 0.01
"""Longest a scrape rendered on the event loop holds it before letting polls run."""
SQUEEZE_BYTES = 256 * 1024
"""Text a gzip family holds before compressing it (about a millisecond of zlib)."""
GZIP_LEVEL = 1
"""zlib's fastest level: ten times smaller exposition text at about 250 MB/s of one core."""

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


_NO_TEXTS: Mapping[LabelKey, str] = {}


class SeriesTexts(dict[LabelKey, str]):
    """One device's label texts by series labels, for one scrape: ``texts[series]`` is the text of
    the device's labels and ``series``'s together. A hit is a plain dict lookup; a miss takes the
    previous scrape's text, or writes it."""

    __slots__ = ("_common", "_previous")

    def __init__(self, common: Mapping[str, str], previous: Mapping[LabelKey, str]) -> None:
        super().__init__()
        self._common = common
        self._previous = previous

    def forget_previous(self) -> None:
        """Drop the previous scrape's texts (those this scrape needed are in this one now)."""
        self._previous = _NO_TEXTS

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
        """Forget the label sets this scrape did not use (interfaces and devices that are gone).

        Each device's texts of this scrape let go of the previous scrape's: kept, every scrape would
        hold the one before it, a chain of every scrape since start (26 MB a minute in the
        province soak, 1 KB per SNMP device per scrape at any scale).
        """
        for texts in self._current.values():
            texts.forget_previous()
        self._previous, self._current = self._current, {}


class TextFamily(Metric):
    """A metric family whose samples are already text, in ``text``.

    ``samples`` parses that text back (prometheus_client's parser), for readers such as
    ``registry.get_sample_value``; rendering never needs it.
    """

    def __init__(self, name: str, documentation: str, typ: str, *, gzip: bool = False) -> None:
        super().__init__(name, documentation, typ)
        self.sample_name = name + ("_total" if typ == "counter" else "")
        self.text = bytearray()
        """Samples written and not yet compressed (writers append to it in place)."""
        self._zip = _gzip_stream() if gzip else None
        self._members: list[bytes] = [] if self._zip is None else [self._zip.compress(self.header())]

    def header(self) -> bytes:
        """The family's HELP and TYPE lines, as prometheus_client writes them."""
        return generate_latest(_Many([Metric(self.name, self.documentation, self.type)]))

    def squeeze(self) -> None:
        """For a gzip family, compress the samples written so far once they are worth it, so a
        scrape holds its text compressed (a no-op for a plain family)."""
        if self._zip is not None and len(self.text) >= SQUEEZE_BYTES:
            self._members.append(self._zip.compress(self.text))
            self.text.clear()

    def gzipped(self) -> list[bytes]:
        """The family as one gzip member, in pieces: HELP, TYPE and every sample written. Ends it."""
        if self._zip is None:
            return [gzip_compress(self.header() + self.text, GZIP_LEVEL)]
        members = [*self._members, self._zip.compress(self.text), self._zip.flush()]
        self._members, self._zip = [], None
        self.text.clear()
        return members

    @property
    def samples(self) -> list[Sample]:
        """The samples written so far and not yet compressed, parsed from ``text``."""
        if not self.text:
            return []
        parsed = text_string_to_metric_families((self.header() + self.text).decode())
        return [sample for family in parsed for sample in family.samples]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise TypeError("a TextFamily takes its samples through add()")

    def add(self, labels: str, value: float) -> None:
        """One sample, its labels as :func:`label_text` wrote them."""
        self.text += f"{self.sample_name}{labels} {go_float(value)}\n".encode()


class FamilyBook(Protocol):
    """A scrape's text families, made on first use and found by name."""

    def family(self, name: str, kind: str) -> TextFamily:
        """The family ``name`` (of type ``kind``), made if this scrape has not used it yet."""
        ...

    def by_name(self) -> Mapping[str, TextFamily]:
        """Every family this scrape made so far, in the order it made them."""
        ...


Layout = tuple[tuple[str, str], ...]
"""The families of a block, in order: (name, type) each."""
_Block = tuple[Hashable, Layout, "array[int]", bytes]
"""A kept block: its version, its layout, the bytes of each family's part, the parts compressed."""
BLOCK_LEVEL = 1
"""zlib level of the kept blocks: a device's text in about a tenth of the room, in tens of µs."""


class KeptBlocks:
    """Each device's samples as a scrape wrote them, kept compressed and copied into the next
    scrapes for as long as the device has not been polled again.

    Prometheus scrapes every 15 s while interfaces are polled every 60 s: three scrapes in four
    would write the same lines again, at about 3 µs a sample (the float's text, the line, zlib) for
    a million samples at province scale. A kept block costs a decompression and one copy per
    family instead. It is kept as zlib text (a device of 17 interfaces: about 20 KB of text, about
    1 KB kept) and dropped at the first scrape that no longer uses it; the label texts of a device
    whose block is copied are not needed either, and go (see :class:`LabelTexts`).
    """

    def __init__(self) -> None:
        self._previous: dict[Hashable, _Block] = {}
        self._current: dict[Hashable, _Block] = {}
        self._layouts: dict[Layout, Layout] = {}

    def replay(self, key: Hashable, version: Hashable, families: FamilyBook) -> bool:
        """Copy the block kept for ``key`` into ``families`` if it was written at ``version``;
        False if there is none (the caller writes the samples, see :meth:`writing`)."""
        block = self._previous.get(key) or self._current.get(key)
        if block is None or block[0] != version:
            return False
        _, layout, sizes, packed = block
        text = memoryview(zlib.decompress(packed))
        at = 0
        for (name, kind), size in zip(layout, sizes, strict=True):
            families.family(name, kind).text += text[at : at + size]
            at += size
        self._current[key] = block
        return True

    @contextmanager
    def writing(self, key: Hashable, version: Hashable, families: FamilyBook) -> Iterator[None]:
        """Keep, as the block of ``key`` at ``version``, what the body of the ``with`` appends to
        ``families`` (it must append only that device's samples, and compress nothing)."""
        before = {name: len(family.text) for name, family in families.by_name().items()}
        yield
        names: list[tuple[str, str]] = []
        sizes: array[int] = array("I")
        parts: list[bytearray] = []
        for name, family in families.by_name().items():
            start = before.get(name, 0)
            if len(family.text) > start:
                part = family.text[start:]
                names.append((name, family.type))
                parts.append(part)
                sizes.append(len(part))
        layout = tuple(names)
        layout = self._layouts.setdefault(layout, layout)
        self._current[key] = (version, layout, sizes, zlib.compress(b"".join(parts), BLOCK_LEVEL))

    def end_scrape(self) -> None:
        """Forget the blocks this scrape did not use (devices polled since, or gone)."""
        self._previous, self._current = self._current, {}
        if len(self._layouts) > 2 * len(self._previous):  # layouts of devices long gone
            self._layouts = {block[1]: block[1] for block in self._previous.values()}


def _gzip_stream() -> Any:
    return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


class _Parts:
    """The body in pieces: text families as they are, runs of other families through
    prometheus_client's own ``generate_latest``; with ``gzip``, each piece a gzip member."""

    def __init__(self, *, gzip: bool = False) -> None:
        self.parts: list[bytes | bytearray] = []
        self._pending: list[Metric] = []
        self._gzip = gzip

    def add(self, metric: Metric) -> None:
        if isinstance(metric, TextFamily):
            self._flush()
            if self._gzip:
                self.parts.extend(metric.gzipped())
            else:
                self.parts += (metric.header(), metric.text)
        else:
            self._pending.append(metric)

    def _flush(self) -> None:
        if self._pending:
            text = generate_latest(_Many(self._pending))
            self.parts.append(gzip_compress(text, GZIP_LEVEL) if self._gzip else text)
            self._pending = []

    def done(self) -> list[bytes | bytearray]:
        self._flush()
        return self.parts


def render_chunks(registry: Any) -> list[bytes | bytearray]:
    """The text exposition of ``registry`` in pieces whose concatenation is exactly what
    :func:`prometheus_client.generate_latest` writes."""
    parts = _Parts()
    for metric in registry.collect():
        parts.add(metric)
    return parts.done()


class SteppedRegistry(CollectorRegistry):
    """A registry whose collectors may offer ``collect_steps()``: their families with ``None``
    where a renderer on the event loop may pause (:func:`render_stepped`)."""

    def __init__(self) -> None:
        super().__init__(auto_describe=False)
        self._in_order: list[Collector] = []

    def register(self, collector: Collector) -> None:
        """As :meth:`CollectorRegistry.register`, remembering the order."""
        super().register(collector)
        self._in_order.append(collector)

    def unregister(self, collector: Collector) -> None:
        """As :meth:`CollectorRegistry.unregister`."""
        super().unregister(collector)
        self._in_order.remove(collector)

    def collect_steps(self, *, gzip: bool = False) -> Iterator[Metric | None]:
        """Every collector's families, with pause points where the collector offers them; with
        ``gzip``, its text families compress themselves as they are written (see
        :meth:`TextFamily.squeeze`)."""
        for collector in list(self._in_order):
            steps = getattr(collector, "collect_steps", None)
            yield from steps(gzip=gzip) if steps is not None else collector.collect()


async def render_stepped(
    registry: SteppedRegistry, slice_seconds: float = SLICE_SECONDS, *, gzip: bool = False
) -> list[bytes | bytearray]:
    """:func:`render_chunks` on the event loop, giving polls their turn every ``slice_seconds``;
    with ``gzip``, the pieces are gzip members whose concatenation is the gzipped body.

    A render in a worker thread took the GIL from the polling loop at each of its socket calls
    (CPython hands the GIL to a waiting thread and takes it back only after a 5 ms switch
    interval): in the province soak a scrape took 12 s, and 23 % of the polls started late. In
    steps on the loop itself a scrape costs the same CPU and delays a poll by at most one slice.
    """
    loop = asyncio.get_running_loop()
    parts = _Parts(gzip=gzip)
    resume_at = loop.time() + slice_seconds
    for metric in registry.collect_steps(gzip=gzip):
        if metric is not None:
            parts.add(metric)
        elif loop.time() >= resume_at:
            await asyncio.sleep(0)
            resume_at = loop.time() + slice_seconds
    return parts.done()


def render(registry: Any) -> bytes:
    """The text exposition of ``registry``, as :func:`prometheus_client.generate_latest` writes it."""
    return b"".join(render_chunks(registry))


class _Many:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)
