"""Varbinds → measurements: pure, no I/O, table-tested.

Input is what the client read (scalars: OID → value; columns: column OID → index suffix → value) and
the profiles that say what it means. A value of the wrong type (a string where a counter belongs) is
skipped and reported as a decode problem, never raised: one odd agent must not cost the whole poll.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from collectors.base import Measurement
from collectors.snmp.client import Value
from collectors.snmp.profiles import MetricSpec, Profile, Source, TableSpec

__all__ = [
    "Columns",
    "Decoded",
    "InterfaceFilter",
    "Scalars",
    "SeriesKey",
    "decode",
    "dynamic_columns",
    "label_text",
    "scalar_oids",
    "selected_rows",
    "static_columns",
]

Scalars = Mapping[str, Value]
Columns = Mapping[str, Mapping[str, Value]]
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
"""A series: its metric name and labels, as in :class:`Measurement`."""

_NUMERIC = frozenset({"Integer32", "Counter32", "Counter64", "Gauge32", "TimeTicks"})
_COUNTERS = frozenset({"Counter32", "Counter64", "Gauge32", "Integer32"})
_FC_UNSUPPORTED = 1 << 63
MAX_PROBLEM_TEXTS = 20


@dataclass(frozen=True, slots=True)
class InterfaceFilter:
    """Which rows of interface tables to keep: globs on the name columns, IANAifType numbers, status."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    types: frozenset[int] = frozenset()
    exclude_types: frozenset[int] = frozenset()
    oper_up_only: bool = False

    @property
    def static_only(self) -> bool:
        """Whether static columns alone decide (no oper-status condition)."""
        return not self.oper_up_only

    @property
    def restricts(self) -> bool:
        """Whether the filter can drop any row."""
        return bool(self.include or self.exclude or self.types or self.exclude_types or self.oper_up_only)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Measurements and what the rates step needs to read counters right.

    ``counter_bits``: width of each counter series (wrap at 2**bits raw); ``counter_scale``: the factor
    from the raw counter to the reported value where it is not 1 (so the wrap in reported units is
    2**bits × scale); ``discontinuity``: ifCounterDiscontinuityTime-like ticks per counter series.
    """

    measurements: tuple[Measurement, ...] = ()
    info: Mapping[str, str] = field(default_factory=dict)
    counter_bits: Mapping[SeriesKey, int] = field(default_factory=dict)
    counter_scale: Mapping[SeriesKey, float] = field(default_factory=dict)
    discontinuity: Mapping[SeriesKey, int] = field(default_factory=dict)
    problem_count: int = 0
    problems: tuple[str, ...] = ()


def scalar_oids(profile: Profile) -> set[str]:
    """Every scalar OID a profile GETs."""
    oids = set(profile.info.values())
    for metric in profile.scalars:
        oids.update(s.oid for s in metric.sources)
    return oids


def static_columns(table: TableSpec) -> set[str]:
    """Columns that rarely change (labels, filter names and types, row selectors, multipliers)."""
    cols: set[str] = set()
    for label in table.labels.values():
        cols.update(label.oids)
    if table.interface_filter is not None:
        cols.update(table.interface_filter.name)
        if table.interface_filter.type:
            cols.add(table.interface_filter.type)
    for metric in table.metrics:
        if metric.where is not None:
            cols.add(metric.where.oid)
        cols.update(s.multiply_by for s in metric.sources if s.multiply_by)
    return cols


def dynamic_columns(table: TableSpec) -> set[str]:
    """Columns read on every poll (values, oper status, discontinuity time)."""
    cols = {s.oid for m in table.metrics for s in m.sources}
    if table.interface_filter is not None and table.interface_filter.oper_status:
        cols.add(table.interface_filter.oper_status)
    if table.discontinuity:
        cols.add(table.discontinuity)
    return cols - static_columns(table)


def label_text(value: Value | None) -> str:
    """A value as label text: printable strings as they are, other octets as hex, numbers in decimal."""
    if value is None:
        return ""
    raw = value.value
    if isinstance(raw, bytes):
        stripped = raw.rstrip(b"\x00").strip()
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError:
            return ":".join(f"{b:02x}" for b in raw)
        return text if text.isprintable() else ":".join(f"{b:02x}" for b in raw)
    return str(raw)


def selected_rows(table: TableSpec, columns: Columns, flt: InterfaceFilter | None) -> set[str] | None:
    """Rows the filter keeps judging by static columns (None: the filter does not apply here)."""
    if flt is None or table.interface_filter is None or not flt.restricts:
        return None
    spec = table.interface_filter
    rows: set[str] = set()
    for oid in spec.name:
        rows.update(columns.get(oid, {}))
    if spec.type:
        rows.update(columns.get(spec.type, {}))
    return {r for r in rows if _keep_static(spec.name, spec.type, r, columns, flt)}


def _keep_static(
    names: Sequence[str], type_oid: str | None, row: str, columns: Columns, flt: InterfaceFilter
) -> bool:
    texts = [label_text(columns.get(oid, {}).get(row)) for oid in names]
    texts = [t for t in texts if t]
    if flt.include and not any(fnmatch.fnmatchcase(t, g) for t in texts for g in flt.include):
        return False
    if flt.exclude and any(fnmatch.fnmatchcase(t, g) for t in texts for g in flt.exclude):
        return False
    if flt.types or flt.exclude_types:
        found = columns.get(type_oid, {}).get(row) if type_oid else None
        kind = found.value if found is not None and isinstance(found.value, int) else None
        if flt.types and kind not in flt.types:
            return False
        if kind is not None and kind in flt.exclude_types:
            return False
    return True


class _Builder:
    """Accumulates one decode."""

    def __init__(self) -> None:
        self.measurements: list[Measurement] = []
        self.seen: set[SeriesKey] = set()
        self.bits: dict[SeriesKey, int] = {}
        self.scale: dict[SeriesKey, float] = {}
        self.discontinuity: dict[SeriesKey, int] = {}
        self.problem_count = 0
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEM_TEXTS:
            self.problems.append(text)

    def add(
        self, metric: MetricSpec, labels: tuple[tuple[str, str], ...], got: _Read, where: str
    ) -> SeriesKey | None:
        key = (metric.name, labels)
        if key in self.seen:
            self.problem(f"{where}: duplicate series {metric.name}{dict(labels)}; kept the first")
            return None
        self.seen.add(key)
        self.measurements.append(Measurement(metric.name, got.value, labels, metric.kind))
        if metric.kind == "counter":
            self.bits[key] = got.bits
            if got.scale != 1:
                self.scale[key] = got.scale
        return key


@dataclass(frozen=True, slots=True)
class _Read:
    value: float
    bits: int
    scale: float


def decode(
    profiles: Iterable[Profile],
    scalars: Scalars,
    columns: Columns,
    interface_filter: InterfaceFilter | None = None,
) -> Decoded:
    """Turn what was read into measurements, info labels and counter details for ``profiles``."""
    out = _Builder()
    info: dict[str, str] = {}
    for profile in profiles:
        for label, oid in profile.info.items():
            if oid in scalars:
                info[label] = label_text(scalars[oid])
        for metric in profile.scalars:
            got = _read(metric, scalars.get, out, f"{profile.name}: {metric.name}")
            if got is not None:
                out.add(metric, (), got, profile.name)
        present = {t.name for t in profile.tables if _has_rows(t, columns)}
        for table in profile.tables:
            if any(other in present for other in table.unless):
                continue
            _decode_table(profile.name, table, columns, interface_filter, out)
    return Decoded(
        measurements=tuple(out.measurements),
        info=info,
        counter_bits=out.bits,
        counter_scale=out.scale,
        discontinuity=out.discontinuity,
        problem_count=out.problem_count,
        problems=tuple(out.problems),
    )


def _has_rows(table: TableSpec, columns: Columns) -> bool:
    return any(columns.get(s.oid) for m in table.metrics for s in m.sources)


def _decode_table(
    profile: str, table: TableSpec, columns: Columns, flt: InterfaceFilter | None, out: _Builder
) -> None:
    rows: set[str] = set()
    for metric in table.metrics:
        for source in metric.sources:
            rows.update(columns.get(source.oid, {}))
    keep = selected_rows(table, columns, flt)
    if keep is not None:
        rows &= keep
    if flt is not None and flt.oper_up_only and table.interface_filter and table.interface_filter.oper_status:
        status = columns.get(table.interface_filter.oper_status, {})
        rows = {r for r in rows if (v := status.get(r)) is not None and v.value == 1}
    where = f"{profile}/{table.name}"
    for row in sorted(rows, key=_index_order):
        _decode_row(table, row, columns, where, out)


def _decode_row(table: TableSpec, row: str, columns: Columns, where: str, out: _Builder) -> None:
    labels = {name: _label(spec.oids, spec.index, row, columns) for name, spec in table.labels.items()}
    ticks = columns.get(table.discontinuity, {}).get(row) if table.discontinuity else None
    lookup = functools.partial(_cell, columns, row)
    for metric in table.metrics:
        if metric.where is not None and not _matches(metric.where.oid, metric.where.equals, row, columns):
            continue
        got = _read(metric, lookup, out, f"{where}: {metric.name}[{row}]", row=row, columns=columns)
        if got is None:
            continue
        names = metric.labels if metric.labels is not None else list(table.labels)
        key = out.add(metric, tuple((n, labels[n]) for n in names), got, where)
        if (
            key is not None
            and metric.kind == "counter"
            and ticks is not None
            and isinstance(ticks.value, int)
        ):
            out.discontinuity[key] = ticks.value


def _cell(columns: Columns, row: str, oid: str) -> Value | None:
    return columns.get(oid, {}).get(row)


def _index_order(index: str) -> tuple[int, ...]:
    return tuple(int(p) for p in index.split(".") if p.isdigit())


def _label(oids: Sequence[str], use_index: bool, row: str, columns: Columns) -> str:
    for oid in oids:
        text = label_text(columns.get(oid, {}).get(row))
        if text:
            return text
    return row if use_index else ""


def _matches(oid: str, equals: int | str, row: str, columns: Columns) -> bool:
    found = columns.get(oid, {}).get(row)
    return found is not None and str(found.value) == str(equals)


def _read(
    metric: MetricSpec,
    lookup: Callable[[str], Value | None],
    out: _Builder,
    where: str,
    *,
    row: str | None = None,
    columns: Columns | None = None,
) -> _Read | None:
    """The first source with a usable value, scaled; None when none has one."""
    for source in metric.sources:
        found = lookup(source.oid)
        if found is None:
            continue
        raw = _raw(metric, source, found, out, where)
        if raw is None:
            continue
        value = float(raw)
        if source.map is not None:
            mapped = source.map.get(int(raw), source.map_default)
            if mapped is None:
                continue
            value = mapped
        factor = source.scale
        if source.multiply_by is not None:
            units = (columns or {}).get(source.multiply_by, {}).get(row or "")
            if units is None or not isinstance(units.value, int):
                out.problem(f"{where}: {source.multiply_by} (multiplier) is missing or not a number")
                continue
            factor *= units.value
        bits = source.bits or (64 if found.type == "Counter64" or source.encoding == "fc-counter" else 32)
        return _Read(value * factor, bits, factor)
    return None


def _raw(metric: MetricSpec, source: Source, found: Value, out: _Builder, where: str) -> int | float | None:
    """The raw number in ``found``, or None (absent, unsupported, or a decode problem)."""
    raw = found.value
    if source.encoding == "fc-counter":
        if not isinstance(raw, bytes) or len(raw) != 8:
            out.problem(f"{where}: {source.oid} is {found.type}, not an 8-byte FcCounter")
            return None
        number = int.from_bytes(raw, "big")
        return None if number & _FC_UNSUPPORTED else number
    allowed = _COUNTERS if metric.kind == "counter" else _NUMERIC
    if found.type in allowed and isinstance(raw, int):
        if source.zero_is_absent and raw == 0:
            return None
        return raw
    if metric.kind == "gauge" and source.map is None and isinstance(raw, bytes):
        parsed = _number_text(raw)
        if parsed is not None:
            return parsed
    out.problem(
        f"{where}: {source.oid} is {found.type}, not a {'counter' if metric.kind == 'counter' else 'number'}"
    )
    return None


def _number_text(raw: bytes) -> float | None:
    """A number written as text (UCD laLoad "0.15"), or None."""
    try:
        number = float(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    return number if math.isfinite(number) else None
