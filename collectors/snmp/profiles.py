"""Declarative device profiles: which scalars and table columns to read, and how they become metrics.

A profile is a YAML file in ``collectors/profiles/`` (a new vendor MIB is a file, not code). It is read
through :mod:`collectors.yamlsource` and checked whole at load, so a mistake is reported the way the
inventory reports one: ``file:line: field: message``. A profile has ``info`` scalars (labels for the
device's info series), ``scalars`` (one value each) and ``tables`` (one series per row, labelled by
static columns or the row index). A metric reads the first of its ``sources`` that yields a value in
that row, which is how 64-bit counters fall back to 32-bit ones per interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from collectors.yamlsource import (
    DocPath,
    LocatedDoc,
    YamlProblem,
    YamlSourceError,
    format_path,
    load_yaml_file,
)

__all__ = [
    "SHIPPED_PROFILE_DIR",
    "InterfaceColumns",
    "LabelSpec",
    "MetricSpec",
    "Profile",
    "ProfileError",
    "ProfileSet",
    "Source",
    "TableSpec",
    "Where",
    "load_profile",
    "load_profiles",
    "shipped_profile_names",
]

SHIPPED_PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"

Oid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-2](\.(0|[1-9][0-9]*)){1,127}$"),
    Field(description="A numeric OID without a leading dot, e.g. 1.3.6.1.2.1.2.2.1.10."),
]
MetricName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,99}$"),
    Field(description="Metric name without the netwatch_ prefix or _total suffix, in base units."),
]
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ProfileName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
_NAME_PATTERNS = {
    "string_pattern_mismatch": {
        r"^[0-2](\.(0|[1-9][0-9]*)){1,127}$": "not a numeric OID (digits and dots, e.g. 1.3.6.1.2.1.1.3.0)",
        r"^[a-z][a-z0-9_]{0,99}$": "a metric name is lowercase letters, digits and '_', starting with a letter",
        r"^[a-z][a-z0-9_]{0,63}$": "a label name is lowercase letters, digits and '_', starting with a letter",
        r"^[a-z0-9][a-z0-9-]{0,63}$": "a profile name is lowercase letters, digits and '-'",
    }
}
_RESERVED_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Model):
    """One OID a metric may read, and how its raw value becomes the metric's value."""

    oid: Oid
    bits: Literal[32, 64] | None = Field(
        default=None,
        description="Counter width; default from the value's SMI type (Counter32 → 32, Counter64 → 64).",
    )
    scale: float = Field(default=1.0, description="Multiply the raw value by this (TimeTicks → s: 0.01).")
    multiply_by: Oid | None = Field(
        default=None, description="A column of the same row to multiply by (hrStorageAllocationUnits)."
    )
    map: dict[int, float] | None = Field(
        default=None, description="Enum value → metric value (ifOperStatus: {1: 1}); others: map_default."
    )
    map_default: float | None = Field(
        default=None, description="Value for enum values not in map; without it such rows are skipped."
    )
    zero_is_absent: bool = Field(
        default=False, description="A raw 0 means 'not known here': try the next source (ifHighSpeed)."
    )
    encoding: Literal["integer", "fc-counter"] = Field(
        default="integer",
        description="fc-counter: an 8-byte big-endian OCTET STRING (FCMGMT-MIB FcCounter); "
        "the top bit set means unsupported.",
    )


class Where(_Model):
    """Keep only rows whose column ``oid`` equals ``equals`` (an integer or a dotted OID value)."""

    oid: Oid
    equals: int | str = Field(description="The value the column must have in the row.")


class MetricSpec(_Model):
    """One metric: its name, kind and where its value comes from."""

    name: MetricName
    kind: Literal["gauge", "counter"] = Field(
        description="gauge: a level; counter: a device's cumulative counter."
    )
    description: str = Field(min_length=1, description="What the metric measures, for operators.")
    sources: list[Source] = Field(min_length=1, description="Tried in order; the first with a value wins.")
    labels: list[LabelName] | None = Field(
        default=None, description="Table labels this metric carries (default: all of the table's labels)."
    )
    where: Where | None = Field(default=None, description="Read only rows that match.")


class LabelSpec(_Model):
    """A label read from static columns of the row (first non-empty wins), or the row index."""

    description: str = Field(default="", description="What the label names.")
    oids: list[Oid] = Field(default_factory=list, description="Columns tried in order.")
    index: bool = Field(default=False, description="Fall back to (or use) the row index suffix.")


class InterfaceColumns(_Model):
    """The columns the collector's ``interfaces:`` filter looks at in this table."""

    name: list[Oid] = Field(min_length=1, description="Columns matched by the include/exclude globs.")
    type: Oid | None = Field(default=None, description="IANAifType column for types/exclude_types.")
    oper_status: Oid | None = Field(default=None, description="ifOperStatus column for oper_up_only.")


class TableSpec(_Model):
    """A table: its rows become series, labelled by static columns."""

    name: LabelName = Field(description="Name of the table inside its profile.")
    description: str = Field(default="", description="What the table holds.")
    labels: dict[LabelName, LabelSpec] = Field(default_factory=dict, description="Series labels.")
    interface_filter: InterfaceColumns | None = Field(
        default=None, description="Set on interface tables so the collector's interface filter applies."
    )
    discontinuity: Oid | None = Field(
        default=None, description="A TimeTicks column telling when this row's counters last restarted."
    )
    unless: list[LabelName] = Field(
        default_factory=list, description="Skip this table when any of these tables of the profile has rows."
    )
    metrics: list[MetricSpec] = Field(min_length=1, description="What each row measures.")


class Profile(_Model):
    """One device profile: what to read from a device and how it maps to metrics."""

    name: ProfileName = Field(description="The profile's name; must be the file's name without .yaml.")
    description: str = Field(min_length=1, description="Which MIB and devices the profile covers.")
    info: dict[LabelName, Oid] = Field(
        default_factory=dict, description="Scalar OIDs read as labels of the device's info series."
    )
    scalars: list[MetricSpec] = Field(default_factory=list, description="Metrics read from scalar OIDs.")
    tables: list[TableSpec] = Field(default_factory=list, description="Metrics read per table row.")

    def metric_names(self) -> Iterator[str]:
        """Every metric name the profile defines."""
        for metric in self.scalars:
            yield metric.name
        for table in self.tables:
            for metric in table.metrics:
                yield metric.name


class ProfileError(Exception):
    """Profiles could not be loaded; ``problems`` lists each as ``file:line: field: message``."""

    def __init__(self, problems: Sequence[YamlProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class ProfileSet:
    """Loaded profiles by name."""

    profiles: Mapping[str, Profile]

    def __getitem__(self, name: str) -> Profile:
        return self.profiles[name]

    def __contains__(self, name: object) -> bool:
        return name in self.profiles

    def names(self) -> list[str]:
        """Profile names, sorted."""
        return sorted(self.profiles)


def shipped_profile_names() -> frozenset[str]:
    """Names of the profiles that ship with netwatch."""
    return frozenset(p.stem for p in SHIPPED_PROFILE_DIR.glob("*.yaml"))


def load_profile(path: str | Path) -> Profile:
    """Read and check one profile file.

    Raises:
        ProfileError: every problem found, located to its line.
    """
    try:
        doc = load_yaml_file(path)
    except YamlSourceError as exc:
        raise ProfileError(exc.problems) from None
    problems: list[YamlProblem] = []
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else "not a mapping"
        raise ProfileError([YamlProblem(doc.file, 1, (), f"the file is {what}: a profile is a mapping")])
    try:
        profile = Profile.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            problems.append(_pydantic_problem(doc, error))
        raise ProfileError(sorted(problems, key=lambda p: p.line)) from None
    for path_, message in _cross_checks(profile, Path(path).stem):
        problems.append(YamlProblem(doc.file, doc.line_of(path_), path_, message))
    if problems:
        raise ProfileError(sorted(problems, key=lambda p: p.line))
    return profile


def load_profiles(dirs: Iterable[str | Path] = (SHIPPED_PROFILE_DIR,)) -> ProfileSet:
    """Load every ``*.yaml`` profile in ``dirs``; a later directory's profile replaces an earlier one.

    Raises:
        ProfileError: every problem in every file, and metric names defined by two profiles.
    """
    problems: list[YamlProblem] = []
    loaded: dict[str, tuple[Profile, Path]] = {}
    for directory in dirs:
        for path in sorted(Path(directory).glob("*.yaml")):
            try:
                loaded[path.stem] = (load_profile(path), path)
            except ProfileError as exc:
                problems.extend(exc.problems)
    owner: dict[str, str] = {}
    for name, (profile, path) in sorted(loaded.items()):
        for metric in set(profile.metric_names()):
            if metric in owner:
                doc = load_yaml_file(path)
                where = _metric_path(profile, metric)
                problems.append(
                    YamlProblem(
                        str(path),
                        doc.line_of(where),
                        where,
                        f"metric {metric!r} is already defined by profile {owner[metric]!r}",
                    )
                )
            else:
                owner[metric] = name
    if problems:
        raise ProfileError(problems)
    return ProfileSet({name: profile for name, (profile, _path) in loaded.items()})


def _metric_path(profile: Profile, name: str) -> DocPath:
    for i, metric in enumerate(profile.scalars):
        if metric.name == name:
            return ("scalars", i, "name")
    for t, table in enumerate(profile.tables):
        for i, metric in enumerate(table.metrics):
            if metric.name == name:
                return ("tables", t, "metrics", i, "name")
    return ()


def _pydantic_problem(doc: LocatedDoc, error: Any) -> YamlProblem:
    loc = tuple(error["loc"])
    kind = error["type"]
    path = doc.data_path(loc, keep_last=kind in ("missing", "extra_forbidden"))
    message = str(error["msg"])
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "too_short":
        message = f"must have at least {error.get('ctx', {}).get('min_length', 1)} item(s)"
    elif kind == "literal_error":
        message = message.replace("Input should be", "must be")
    elif kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        message = _NAME_PATTERNS[kind].get(pattern, message)
    return YamlProblem(doc.file, doc.line_of(path), path, message)


def _cross_checks(profile: Profile, stem: str) -> Iterator[tuple[DocPath, str]]:
    """Rules that span fields, each located at the key to fix."""
    if profile.name != stem:
        yield ("name",), f"the profile's name must be its file's name ({stem!r})"
    seen: dict[str, DocPath] = {}
    for i, metric in enumerate(profile.scalars):
        yield from _metric_checks(metric, ("scalars", i), None)
        yield from _unique(metric.name, ("scalars", i, "name"), seen)
    tables = {t.name for t in profile.tables}
    table_seen: set[str] = set()
    for t, table in enumerate(profile.tables):
        base: DocPath = ("tables", t)
        if table.name in table_seen:
            yield (*base, "name"), f"duplicate table name {table.name!r}"
        table_seen.add(table.name)
        for u, other in enumerate(table.unless):
            if other not in tables or other == table.name:
                yield (*base, "unless", u), f"no other table of this profile is named {other!r}"
        for name, label in table.labels.items():
            if not label.oids and not label.index:
                yield (*base, "labels", name), "a label needs oids, index: true, or both"
        # Tables linked by `unless` stand in for each other and may share metric names.
        local: dict[str, DocPath] = {} if table.unless else seen
        for i, metric in enumerate(table.metrics):
            yield from _metric_checks(metric, (*base, "metrics", i), table)
            yield from _unique(metric.name, (*base, "metrics", i, "name"), local)


def _unique(name: str, path: DocPath, seen: dict[str, DocPath]) -> Iterator[tuple[DocPath, str]]:
    if name in seen:
        yield path, f"duplicate metric name {name!r} (first at {format_path(seen[name])})"
    else:
        seen[name] = path


def _source_checks(
    metric: MetricSpec, source: Source, where: DocPath, table: TableSpec | None
) -> Iterator[tuple[DocPath, str]]:
    if source.bits is not None and metric.kind != "counter":
        yield (*where, "bits"), "bits is only for counters"
    if source.map is not None and metric.kind == "counter":
        yield (*where, "map"), "a counter cannot map enum values; make it a gauge"
    if source.map_default is not None and source.map is None:
        yield (*where, "map_default"), "map_default needs map"
    if source.encoding == "fc-counter" and metric.kind != "counter":
        yield (*where, "encoding"), "fc-counter encoding is only for counters"
    if table is None and source.multiply_by is not None:
        yield (*where, "multiply_by"), "multiply_by names a column; scalars have none"


def _metric_checks(
    metric: MetricSpec, path: DocPath, table: TableSpec | None
) -> Iterator[tuple[DocPath, str]]:
    if metric.name.endswith(_RESERVED_SUFFIXES):
        yield (*path, "name"), "the exporter adds _total to counters; name the metric without it"
    for s, source in enumerate(metric.sources):
        yield from _source_checks(metric, source, (*path, "sources", s), table)
    if table is None:
        if metric.labels:
            yield (*path, "labels"), "scalar metrics have no table labels"
        if metric.where is not None:
            yield (*path, "where"), "where selects table rows; scalars have none"
        return
    for i, label in enumerate(metric.labels or ()):
        if label not in table.labels:
            known = ", ".join(sorted(table.labels)) or "none"
            yield (*path, "labels", i), f"the table has no label {label!r}; its labels: {known}"
