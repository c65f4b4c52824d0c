"""Varbinds → measurements: pure, no I/O, table-tested.

Input is what the client read (scalars: OID → value; columns: column OID → index suffix → value) and
the profiles that say what it means. A value of the wrong type (a string where a counter belongs) is
skipped and reported as a decode problem, never raised: one odd agent must not cost the whole poll.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from collectors.base import Measurement
from collectors.snmp.client import Value
from collectors.snmp.profiles import MetricSpec, Profile, Source, TableSpec

__all__ = [
    "Columns",
    "Decoded",
    "InterfaceFilter",
    "LabelMemo",
    "RowLabels",
    "Scalars",
    "SeriesKey",
    "decode",
    "dynamic_columns",
    "fallback_columns",
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
    fallbacks: frozenset[str] = frozenset()
    """Columns looked at as a later source for some row (its first source had no usable value)."""


def scalar_oids(profile: Profile) -> set[str]:
    """Every scalar OID a profile GETs."""
    oids = set(profile.info.values())
    for metric in profile.scalars:
        oids.update(s.oid for s in metric.sources)
    return oids


def static_columns(table: TableSpec) -> set[str]:
    """Columns that rarely change (labels, filter names and types, row selectors, multipliers)."""
    return set(_plan(table).static)


def dynamic_columns(table: TableSpec) -> set[str]:
    """Columns read on every poll (values, oper status, discontinuity time)."""
    return set(_plan(table).dynamic)


def fallback_columns(table: TableSpec) -> frozenset[str]:
    """Dynamic columns read only as a later source of some metric (ifInOctets behind ifHCInOctets,
    ifSpeed behind ifHighSpeed): a device whose first sources answer every row never needs them."""
    return _plan(table).fallback


def _static_columns(table: TableSpec) -> frozenset[str]:
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
    return frozenset(cols)


def _dynamic_columns(table: TableSpec, static: frozenset[str]) -> frozenset[str]:
    cols = {s.oid for m in table.metrics for s in m.sources}
    if table.interface_filter is not None and table.interface_filter.oper_status:
        cols.add(table.interface_filter.oper_status)
    if table.discontinuity:
        cols.add(table.discontinuity)
    return frozenset(cols - static)


@dataclass(frozen=True, slots=True)
class _MetricPlan:
    """One table metric, with what every row needs precomputed."""

    spec: MetricSpec
    label_names: tuple[str, ...] | None
    """The metric's own label subset; None: all the table's labels, in their order."""
    where: tuple[str, str] | None
    """(column, value as text) a row must match."""
    counter: bool


@dataclass(frozen=True, slots=True)
class _TablePlan:
    """A table spec digested once: profiles are loaded once and decoded thousands of times a minute."""

    labels: tuple[tuple[str, tuple[str, ...], bool], ...]
    metrics: tuple[_MetricPlan, ...]
    value_oids: tuple[str, ...]
    static: frozenset[str]
    dynamic: frozenset[str]
    fallback: frozenset[str]


# By id(): specs are frozen pydantic models holding lists, so not hashable. The spec is kept beside
# its plan so a recycled id cannot match; the bound only matters for code that makes specs in a loop.
_PLANS: dict[int, tuple[TableSpec, _TablePlan]] = {}
_MAX_PLANS = 1024


def _plan(table: TableSpec) -> _TablePlan:
    hit = _PLANS.get(id(table))
    if hit is not None and hit[0] is table:
        return hit[1]
    static = _static_columns(table)
    dynamic = _dynamic_columns(table, static)
    needed = {m.sources[0].oid for m in table.metrics}
    if table.interface_filter is not None and table.interface_filter.oper_status:
        needed.add(table.interface_filter.oper_status)
    if table.discontinuity:
        needed.add(table.discontinuity)
    plan = _TablePlan(
        labels=tuple((name, tuple(spec.oids), spec.index) for name, spec in table.labels.items()),
        metrics=tuple(
            _MetricPlan(
                spec=m,
                label_names=None if m.labels is None else tuple(m.labels),
                where=None if m.where is None else (m.where.oid, str(m.where.equals)),
                counter=m.kind == "counter",
            )
            for m in table.metrics
        ),
        value_oids=tuple(dict.fromkeys(s.oid for m in table.metrics for s in m.sources)),
        static=static,
        dynamic=dynamic,
        fallback=dynamic - needed,
    )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[id(table)] = (table, plan)
    return plan


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
        self.fallbacks: set[str] = set()

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEM_TEXTS:
            self.problems.append(text)

    def add(
        self, metric: MetricSpec, labels: tuple[tuple[str, str], ...], got: _Read, where: str
    ) -> SeriesKey | None:
        key = (metric.name, labels)
        seen = self.seen
        before = len(seen)
        seen.add(key)  # one hash of the key, not two: hashing labels is most of this method's work
        if len(seen) == before:
            self.problem(f"{where}: duplicate series {metric.name}{dict(labels)}; kept the first")
            return None
        value, bits, scale = got
        # tuple.__new__ as Measurement's own constructor does, without its extra call: ~200 a poll.
        self.measurements.append(tuple.__new__(Measurement, (metric.name, value, labels, metric.kind)))
        if metric.kind == "counter":
            self.bits[key] = bits
            if scale != 1:
                self.scale[key] = scale
        return key


_Read = tuple[float, int, float]
"""(value, counter bits, factor from raw to value)."""
RowLabels = tuple[tuple[str, str], ...]
"""One row's labels, (name, text) in the table's order."""
LabelMemo = dict[tuple[str, str], RowLabels]
"""Label texts of table rows by (profile/table, row index): they come from static columns only, so a
caller that caches those columns (the collector, per target) can keep this beside them."""
_NO_ROWS: Mapping[str, Value] = {}


def decode(
    profiles: Iterable[Profile],
    scalars: Scalars,
    columns: Columns,
    interface_filter: InterfaceFilter | None = None,
    *,
    label_memo: LabelMemo | None = None,
) -> Decoded:
    """Turn what was read into measurements, info labels and counter details for ``profiles``.

    ``label_memo`` (optional) keeps each row's labels between decodes of the same static columns;
    start a new one whenever those columns are read again.
    """
    out = _Builder()
    info: dict[str, str] = {}
    for profile in profiles:
        for label, oid in profile.info.items():
            if oid in scalars:
                info[label] = label_text(scalars[oid])
        for metric in profile.scalars:
            # A scalar is a one-row column whose row index is "".
            cells = [
                (s, {"": found} if (found := scalars.get(s.oid)) is not None else _NO_ROWS)
                for s in metric.sources
            ]
            got = _read(metric, cells, "", None, out, profile.name)
            if got is not None:
                out.add(metric, (), got, profile.name)
        present = {t.name for t in profile.tables if _has_rows(t, columns)}
        for table in profile.tables:
            if any(other in present for other in table.unless):
                continue
            _decode_table(profile.name, table, columns, interface_filter, out, label_memo)
    return Decoded(
        measurements=tuple(out.measurements),
        info=info,
        counter_bits=out.bits,
        counter_scale=out.scale,
        discontinuity=out.discontinuity,
        problem_count=out.problem_count,
        problems=tuple(out.problems),
        fallbacks=frozenset(out.fallbacks),
    )


def _has_rows(table: TableSpec, columns: Columns) -> bool:
    return any(columns.get(oid) for oid in _plan(table).value_oids)


def _decode_table(
    profile: str,
    table: TableSpec,
    columns: Columns,
    flt: InterfaceFilter | None,
    out: _Builder,
    memo: LabelMemo | None,
) -> None:
    plan = _plan(table)
    rows: set[str] = set()
    for oid in plan.value_oids:
        rows.update(columns.get(oid, _NO_ROWS))
    keep = selected_rows(table, columns, flt)
    if keep is not None:
        rows &= keep
    if flt is not None and flt.oper_up_only and table.interface_filter and table.interface_filter.oper_status:
        status = columns.get(table.interface_filter.oper_status, {})
        rows = {r for r in rows if (v := status.get(r)) is not None and v.value == 1}
    where = f"{profile}/{table.name}"
    # Each column is looked up once per table, not once per row and metric.
    label_cells = [
        (name, [columns.get(o, _NO_ROWS) for o in oids], index) for name, oids, index in plan.labels
    ]
    metrics = [
        (
            mp,
            [(s, columns.get(s.oid, _NO_ROWS)) for s in mp.spec.sources],
            None if mp.where is None else columns.get(mp.where[0], _NO_ROWS),
            "" if mp.where is None else mp.where[1],
        )
        for mp in plan.metrics
    ]
    ticks_cells = columns.get(table.discontinuity, _NO_ROWS) if table.discontinuity else _NO_ROWS
    for row in sorted(rows, key=_index_order):
        labels = memo.get((where, row)) if memo is not None else None
        if labels is None:
            labels = tuple((name, _label(cells, index, row)) for name, cells, index in label_cells)
            if memo is not None:
                memo[(where, row)] = labels
        ticks = ticks_cells.get(row)
        tick_value = ticks.value if ticks is not None and isinstance(ticks.value, int) else None
        for mp, cells, where_cells, where_equals in metrics:
            if where_cells is not None:
                found = where_cells.get(row)
                if found is None or str(found.value) != where_equals:
                    continue
            got = _read(mp.spec, cells, row, columns, out, where)
            if got is None:
                continue
            series = labels if mp.label_names is None else _subset(labels, mp.label_names)
            key = out.add(mp.spec, series, got, where)
            if key is not None and mp.counter and tick_value is not None:
                out.discontinuity[key] = tick_value


def _subset(labels: RowLabels, names: tuple[str, ...]) -> RowLabels:
    texts = dict(labels)
    return tuple((n, texts[n]) for n in names)


def _index_order(index: str) -> tuple[int, ...]:
    return tuple(int(p) for p in index.split(".") if p.isdigit())


def _label(cells: Sequence[Mapping[str, Value]], use_index: bool, row: str) -> str:
    for column in cells:
        text = label_text(column.get(row))
        if text:
            return text
    return row if use_index else ""


def _read(
    metric: MetricSpec,
    cells: Sequence[tuple[Source, Mapping[str, Value]]],
    row: str,
    columns: Columns | None,
    out: _Builder,
    where: str,
) -> _Read | None:
    """The first source with a usable value in ``row``, scaled; None when none has one.

    ``columns`` is None for scalars (no multiplier column to read); ``where`` is only formatted
    into a text when there is a problem to report. Every source looked at after the first is noted
    in ``out.fallbacks``, read or not: the collector skips such columns only while none is needed.
    """
    later = False
    for source, column in cells:
        if later:
            out.fallbacks.add(source.oid)
        later = True
        found = column.get(row)
        if found is None:
            continue
        raw = found.value
        kind = found.type
        # The common case first: a plain number of an allowed type, no map, no multiplier.
        if (
            source.encoding == "integer"
            and isinstance(raw, int)
            and kind in (_COUNTERS if metric.kind == "counter" else _NUMERIC)
        ):
            if source.zero_is_absent and raw == 0:
                continue
            number: int | float = raw
        else:
            parsed = _raw(metric, source, found, out, where, row)
            if parsed is None:
                continue
            number = parsed
        value = float(number)
        if source.map is not None:
            mapped = source.map.get(int(number), source.map_default)
            if mapped is None:
                continue
            value = mapped
        factor = source.scale
        if source.multiply_by is not None:
            units = None if columns is None else columns.get(source.multiply_by, _NO_ROWS).get(row)
            if units is None or not isinstance(units.value, int):
                out.problem(
                    f"{_at(where, metric, row)}: {source.multiply_by} (multiplier) is missing or not a number"
                )
                continue
            factor *= units.value
        bits = source.bits or (64 if kind == "Counter64" or source.encoding == "fc-counter" else 32)
        return (value * factor, bits, factor)
    return None


def _at(where: str, metric: MetricSpec, row: str) -> str:
    return f"{where}: {metric.name}[{row}]" if row else f"{where}: {metric.name}"


def _raw(
    metric: MetricSpec, source: Source, found: Value, out: _Builder, where: str, row: str
) -> int | float | None:
    """The raw number in ``found``, or None (absent, unsupported, or a decode problem)."""
    raw = found.value
    if source.encoding == "fc-counter":
        if not isinstance(raw, bytes) or len(raw) != 8:
            out.problem(f"{_at(where, metric, row)}: {source.oid} is {found.type}, not an 8-byte FcCounter")
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
        f"{_at(where, metric, row)}: {source.oid} is {found.type}, "
        f"not a {'counter' if metric.kind == 'counter' else 'number'}"
    )
    return None


def _number_text(raw: bytes) -> float | None:
    """A number written as text (UCD laLoad "0.15"), or None."""
    try:
        number = float(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    return number if math.isfinite(number) else None
