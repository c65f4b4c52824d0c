"""Read an inventory file and its includes, check it whole, and resolve it into frozen objects.

Every problem is collected, not just the first, each as one ``file:line: path.to.field: message``.
Entries are validated one at a time, so a broken site does not hide the errors of its neighbours,
and references to an entry that failed to validate are not reported a second time.
"""

from __future__ import annotations

import difflib
import functools
import glob
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, TypeAdapter, ValidationError

from collectors import REGISTRY
from collectors.base import CollectorParams, Target
from collectors.yamlsource import DocPath, LocatedDoc, YamlSourceError, format_path, load_yaml_file
from netwatch.config.document import IncludedDocument, InventoryDocument
from netwatch.config.inventory import (
    Device,
    HealthRules,
    Inventory,
    Job,
    Link,
    MaintenanceWindow,
    Province,
    Site,
)
from netwatch.config.models import (
    DEFAULT_TIMEZONE,
    LABEL_RE,
    WEEKDAYS,
    CollectorsOverrides,
    Credential,
    DefaultsModel,
    DeviceModel,
    MaintenanceModel,
    ProvinceModel,
    SiteKindModel,
    SiteModel,
    StrictModel,
)
from netwatch.errors import ConfigError, ConfigIssue

M = TypeVar("M")
_RULES = ("down_after", "up_after", "degraded_loss_ratio", "degraded_rtt_seconds", "sla_target")
# Collections validated entry by entry (list or mapping), and the model of one entry.
_LISTS: dict[str, type[BaseModel]] = {
    "sites": SiteModel,
    "devices": DeviceModel,
    "maintenance": MaintenanceModel,
}
_MAPPINGS: dict[str, Any] = {"site_kinds": SiteKindModel, "credentials": Credential}
_DEFAULT_COLLECTORS = ("icmp",)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[M]):
    """A validated entry and where it stands."""

    model: M
    doc: LocatedDoc
    path: DocPath

    def line(self, *more: str | int) -> int:
        return self.doc.line_of((*self.path, *more))

    def where(self) -> str:
        return f"{self.doc.file}:{self.line()}"


def check_inventory(path: str | os.PathLike[str]) -> list[ConfigIssue]:
    """Every problem in the inventory at ``path`` (and its includes); empty when it is valid."""
    return _Loader(str(path)).run()[1]


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load, check and resolve the inventory at ``path``.

    Raises:
        ConfigError: with one issue per problem found, in file and line order.
    """
    inventory, issues = _Loader(str(path)).run()
    if issues or inventory is None:
        raise ConfigError(issues)
    return inventory


class _Loader:
    """One load of one inventory: reads, validates, cross-checks, resolves."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.issues: list[ConfigIssue] = []
        self.files: list[str] = []
        self.head: InventoryDocument | None = None
        self.main = LocatedDoc(file=path, data=None)
        self.context: dict[str, Any] = {"timezone": DEFAULT_TIMEZONE, "base_dir": os.path.dirname(path)}
        self.site_kinds: dict[str, _Entry[SiteKindModel]] = {}
        self.credentials: dict[str, _Entry[Any]] = {}
        self.entries: dict[str, list[_Entry[Any]]] = {key: [] for key in _LISTS}
        # Names of entries that failed validation: references to them are not errors of their own.
        self.broken: dict[str, set[str]] = {key: set() for key in (*_LISTS, *_MAPPINGS)}
        self.params_cache: dict[tuple[Any, ...], CollectorParams | None] = {}

    def issue(self, doc: LocatedDoc, path: DocPath, message: str) -> None:
        self.issues.append(
            ConfigIssue(doc.file, doc.line_of(path), format_path(path) or "(document)", message)
        )

    def run(self) -> tuple[Inventory | None, list[ConfigIssue]]:
        doc = self._read(self.path)
        inventory = None
        if doc is not None and isinstance(doc.data, dict):
            self.main = doc
            self._read_main(doc)
            inventory = self._resolve(self.head or _FALLBACK_HEAD)
        elif doc is not None:
            what = "empty" if doc.data is None else "not a mapping"
            self.issue(doc, (), f"the file is {what}: an inventory is a mapping with at least province:")
        order = {name: i for i, name in enumerate(self.files)}
        self.issues.sort(key=lambda i: (order.get(i.file, len(order)), i.line))
        return (None if self.issues else inventory), self.issues

    # Reading and validating entries.

    def _read(self, path: str) -> LocatedDoc | None:
        self.files.append(path)
        try:
            return load_yaml_file(path)
        except YamlSourceError as exc:
            for p in exc.problems:
                self.issues.append(
                    ConfigIssue(p.file, p.line, format_path(p.path) or "(document)", p.message)
                )
            return None

    def _read_main(self, doc: LocatedDoc) -> None:
        timezone = doc.data.get("timezone")
        if isinstance(timezone, str):
            try:
                ZoneInfo(timezone)
                self.context["timezone"] = timezone
            except (KeyError, ValueError, OSError):
                pass  # reported by the model
        self.head = self._validate_document(doc, InventoryDocument)
        includes = self.head.include if self.head is not None else []
        for index, pattern in enumerate(includes):
            self._include(doc, index, pattern)

    def _validate_document(self, doc: LocatedDoc, model: type[M]) -> M | None:
        """Validate a document's top level with its collections emptied, then each entry on its own."""
        data = dict(doc.data)
        for key in _LISTS:
            if isinstance(data.get(key), list):
                data[key] = []
        for key in _MAPPINGS:
            if isinstance(data.get(key), dict):
                data[key] = {}
        head: M | None = self._validate(model, data, doc, ())
        for key, entry_model in _LISTS.items():
            items = doc.data.get(key)
            if isinstance(items, list):
                for index, item in enumerate(items):
                    self._entry(key, entry_model, item, doc, (key, index), self.entries[key].append)
        for key, entry_model in _MAPPINGS.items():
            mapping = doc.data.get(key)
            if isinstance(mapping, dict) and model is InventoryDocument:
                self._mapping_entries(key, entry_model, mapping, doc)
        return head

    def _mapping_entries(self, key: str, entry_model: Any, mapping: dict[Any, Any], doc: LocatedDoc) -> None:
        target: dict[str, _Entry[Any]] = getattr(self, key)
        for name, item in mapping.items():
            if not isinstance(name, str) or not _is_label(name):
                self.issue(doc, (key, name), "names must be 1 to 64 ASCII letters, digits, '_', '.' or '-'")
                continue
            self._entry(key, entry_model, item, doc, (key, name), _setter(target, name))

    def _entry(
        self,
        key: str,
        model: Any,
        item: Any,
        doc: LocatedDoc,
        path: DocPath,
        keep: Callable[[_Entry[Any]], None],
    ) -> None:
        validated = self._validate(model, item, doc, path)
        if validated is not None:
            keep(_Entry(validated, doc, path))
            return
        name = path[-1] if isinstance(path[-1], str) else _raw_name(item)
        if name is not None:
            self.broken[key].add(name)

    def _validate(self, model: Any, data: Any, doc: LocatedDoc, prefix: DocPath) -> Any:
        try:
            if isinstance(model, type) and issubclass(model, BaseModel):
                return model.model_validate(data, context=self.context)
            return _adapter(model).validate_python(data, context=self.context)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                self._pydantic_issue(error, model, doc, prefix)
            return None

    def _pydantic_issue(self, error: Any, model: Any, doc: LocatedDoc, prefix: DocPath) -> None:
        loc = tuple(error["loc"])
        kind = error["type"]
        path = doc.data_path((*prefix, *loc), keep_last=kind in ("missing", "extra_forbidden"))
        present = doc.data_path(prefix)
        if present != prefix and path[: len(present)] == present:
            # The prefix is netwatch's own path (e.g. a collector named in list form): keep it whole.
            path = (*prefix, *path[len(present) :])
        message = str(error["msg"])
        if kind == "extra_forbidden":
            message = _unknown_key_message(model, loc)
        elif kind == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        self.issue(doc, path, message)

    def _include(self, doc: LocatedDoc, index: int, pattern: str) -> None:
        base = os.path.dirname(self.path)
        matches = sorted(glob.glob(os.path.join(base, pattern)))
        if not matches:
            self.issue(doc, ("include", index), f"no file matches {pattern!r} (relative to {base or '.'})")
            return
        seen = {os.path.realpath(f) for f in self.files}
        for name in matches:
            if os.path.realpath(name) in seen:
                continue
            included = self._read(name)
            if included is None:
                continue
            if included.data is None:
                continue
            if not isinstance(included.data, dict):
                self.issue(
                    included, (), "an included file is a mapping with sites:, devices: or maintenance:"
                )
                continue
            self._validate_document(included, IncludedDocument)

    # Cross-checks and resolution.

    def _resolve(self, head: InventoryDocument) -> Inventory | None:
        sites = self._unique("sites", "site code", lambda m: m.code)
        devices = self._unique("devices", "device name", lambda m: m.name)
        self._check_sites(sites, head)
        self._check_devices(devices, sites)
        self._check_addresses(devices)
        self._check_links(sites, devices)
        self._check_maintenance(sites)
        districts = {code: self._district(code, sites, head.province.code, set()) for code in sites}
        resolved_sites = {code: self._site(entry, head, districts[code]) for code, entry in sites.items()}
        resolved_devices = {}
        for name, entry in devices.items():
            site = resolved_sites.get(entry.model.site)
            if site is not None:
                resolved_devices[name] = self._device(entry, sites[site.code], site, head)
        windows = tuple(self._window(entry) for entry in self.entries["maintenance"])
        if self.issues or self.head is None:
            return None
        return Inventory(
            province=Province(code=head.province.code, name=head.province.name),
            sites=types.MappingProxyType(resolved_sites),
            devices=types.MappingProxyType(resolved_devices),
            maintenance=windows,
            timezone=head.timezone,
            source_files=tuple(self.files),
            credentials=types.MappingProxyType({name: e.model for name, e in self.credentials.items()}),
            alerting=head.alerting,
            retention=head.retention,
        )

    def _unique(self, key: str, what: str, name_of: Callable[[Any], str]) -> dict[str, _Entry[Any]]:
        found: dict[str, _Entry[Any]] = {}
        for entry in self.entries[key]:
            name = name_of(entry.model)
            first = found.get(name)
            if first is not None:
                field = "code" if key == "sites" else "name"
                self.issue(
                    entry.doc, (*entry.path, field), f"{what} {name!r} is already defined at {first.where()}"
                )
            else:
                found[name] = entry
        return found

    def _known(self, key: str, name: str, known: Mapping[str, Any]) -> bool:
        return name in known or name in self.broken[key]

    def _check_sites(self, sites: dict[str, _Entry[SiteModel]], head: InventoryDocument) -> None:
        for code, entry in sites.items():
            site = entry.model
            kinds_readable = isinstance(self.main.data.get("site_kinds", {}), dict)
            if kinds_readable and not self._known("site_kinds", site.kind, self.site_kinds):
                known = ", ".join(sorted(self.site_kinds)) or "none defined under site_kinds"
                self.issue(
                    entry.doc, (*entry.path, "kind"), f"unknown site kind {site.kind!r}; known kinds: {known}"
                )
            if site.parent is not None:
                if site.parent == code:
                    self.issue(entry.doc, (*entry.path, "parent"), "a site cannot be its own parent")
                elif not self._known("sites", site.parent, sites):
                    self.issue(entry.doc, (*entry.path, "parent"), f"no site has code {site.parent!r}")
            if (
                site.district is not None
                and site.district != head.province.code
                and not self._known("sites", site.district, sites)
            ):
                self.issue(
                    entry.doc,
                    (*entry.path, "district"),
                    f"no site has code {site.district!r} (a district is named by its site's code)",
                )
        self._check_cycles(sites, lambda m: m.parent, "parent", "site")

    def _check_cycles(
        self,
        entries: Mapping[str, _Entry[Any]],
        next_of: Callable[[Any], str | None],
        field: str,
        what: str,
    ) -> None:
        order = {name: i for i, name in enumerate(entries)}
        reported: set[str] = set()
        for name, entry in entries.items():
            chain = [name]
            current = next_of(entry.model)
            while current is not None and current in entries and current not in chain:
                chain.append(current)
                current = next_of(entries[current].model)
            if current is None or current not in chain:
                continue
            cycle = chain[chain.index(current) :]
            # A self-reference is reported on its own; a cycle once, at its member first in the file.
            if len(cycle) == 1 or reported.intersection(cycle):
                continue
            reported.update(cycle)
            first = min(cycle, key=order.__getitem__)
            start = cycle.index(first)
            loop = " → ".join([*cycle[start:], *cycle[:start], first])
            at = entries[first]
            self.issue(
                at.doc, (*at.path, field), f"{field} cycle: {loop}; a {what} cannot be its own ancestor"
            )

    def _check_devices(self, devices: dict[str, _Entry[DeviceModel]], sites: Mapping[str, Any]) -> None:
        for name, entry in devices.items():
            device = entry.model
            if not self._known("sites", device.site, sites):
                self.issue(entry.doc, (*entry.path, "site"), f"no site has code {device.site!r}")
            if device.upstream is not None:
                if device.upstream == name:
                    self.issue(entry.doc, (*entry.path, "upstream"), "a device cannot be its own upstream")
                elif not self._known("devices", device.upstream, devices):
                    self.issue(
                        entry.doc, (*entry.path, "upstream"), f"no device is named {device.upstream!r}"
                    )
        self._check_cycles(devices, lambda m: m.upstream, "upstream", "device")

    def _check_addresses(self, devices: dict[str, _Entry[DeviceModel]]) -> None:
        seen: dict[tuple[str, int | None], _Entry[DeviceModel]] = {}
        for entry in devices.values():
            key = (entry.model.address.lower().rstrip("."), entry.model.port)
            first = seen.setdefault(key, entry)
            if first is not entry:
                self.issue(
                    entry.doc,
                    (*entry.path, "address"),
                    f"address already used by device {first.model.name!r} at {first.where()}",
                )

    def _check_links(
        self, sites: dict[str, _Entry[SiteModel]], devices: dict[str, _Entry[DeviceModel]]
    ) -> None:
        for code, entry in sites.items():
            for index, link in enumerate(entry.model.links):
                path = (*entry.path, "links", index, "device")
                device = devices.get(link.device)
                if device is None:
                    if link.device not in self.broken["devices"]:
                        self.issue(entry.doc, path, f"no device is named {link.device!r}")
                elif device.model.site != code:
                    self.issue(
                        entry.doc,
                        path,
                        f"device {link.device!r} stands at site {device.model.site!r}, not {code!r}:"
                        " a link's device must be at the link's site",
                    )

    def _check_maintenance(self, sites: Mapping[str, Any]) -> None:
        for entry in self.entries["maintenance"]:
            for index, code in enumerate(entry.model.sites):
                if not self._known("sites", code, sites):
                    self.issue(entry.doc, (*entry.path, "sites", index), f"no site has code {code!r}")

    def _district(
        self, code: str, sites: Mapping[str, _Entry[SiteModel]], province: str, seen: set[str]
    ) -> str:
        entry = sites.get(code)
        if entry is None or code in seen:
            return province
        site = entry.model
        if site.district is not None:
            return site.district
        if site.kind == "district":
            return code
        if site.parent is None:
            return province
        return self._district(site.parent, sites, province, seen | {code})

    def _site(self, entry: _Entry[SiteModel], head: InventoryDocument, district: str) -> Site:
        site = entry.model
        kind = self.site_kinds.get(site.kind)
        rules: dict[str, Any] = {name: getattr(head.defaults, name) for name in _RULES}
        for level in (kind.model if kind else None, site):
            if level is not None:
                rules.update(
                    {name: getattr(level, name) for name in _RULES if getattr(level, name) is not None}
                )
        links = tuple(
            Link(
                device=link.device,
                interface=link.interface,
                contracted_bps=link.contracted_bps,
                name=link.name,
            )
            for link in site.links
        )
        return Site(
            code=site.code,
            name=site.name,
            kind=site.kind,
            district=district,
            parent=site.parent,
            rules=HealthRules(**rules),
            links=links,
        )

    def _device(
        self, entry: _Entry[DeviceModel], site_entry: _Entry[SiteModel], site: Site, head: Any
    ) -> Device:
        device = entry.model
        kinds = _chosen_kinds(device.collectors)
        target = Target(
            key=device.name,
            address=device.address,
            port=device.port,
            labels={"site": site.code, "district": site.district, "device": device.name},
        )
        jobs = []
        for kind in kinds:
            params = self._params(kind, entry, site_entry, head.defaults)
            if params is not None:
                self._check_credential(params, entry, kind)
                jobs.append(Job(target=target, kind=kind, params=params))
        return Device(
            name=device.name,
            site=device.site,
            address=device.address,
            role=device.role,
            upstream=device.upstream,
            jobs=tuple(jobs),
        )

    def _params(
        self,
        kind: str,
        device: _Entry[DeviceModel],
        site: _Entry[SiteModel],
        defaults: DefaultsModel,
    ) -> CollectorParams | None:
        """Params after precedence, validated at the first level whose overrides make them invalid."""
        site_kind = self.site_kinds.get(site.model.kind)
        main = self.main
        levels: list[tuple[Any, Any, LocatedDoc | None, DocPath]] = [
            (("defaults",), defaults.collectors, main, ("defaults",)),
            (
                ("kind", site.model.kind),
                site_kind.model.collectors if site_kind else None,
                *_where(site_kind),
            ),
            (("site", site.model.code), site.model.collectors, site.doc, site.path),
            (("device", device.model.name), device.model.collectors, device.doc, device.path),
        ]
        merged: dict[str, Any] = {}
        chain: tuple[Any, ...] = (kind,)
        result: CollectorParams | None = None
        model = REGISTRY[kind].params_model
        for position, (ident, collectors, doc, path) in enumerate(levels, start=1):
            partial = _partial(collectors, kind)
            if result is not None and not partial:
                continue
            merged = {**merged, **partial}
            chain = (*chain, ident)
            if position < len(levels) and _only_missing(model, merged):
                # A required param (an SNMP credential) may be given further down: judge it there.
                continue
            if chain not in self.params_cache:
                self.params_cache[chain] = self._validate(
                    REGISTRY[kind].params_model, merged, doc or main, (*path, "collectors", kind)
                )
            result = self.params_cache[chain]
            if result is None:
                return None
        return result

    def _check_credential(self, params: CollectorParams, entry: _Entry[DeviceModel], kind: str) -> None:
        name = getattr(params, "credential", None)
        if isinstance(name, str) and not self._known("credentials", name, self.credentials):
            known = ", ".join(sorted(self.credentials)) or "none defined under credentials"
            self.issue(
                entry.doc,
                (*entry.path, "collectors", kind, "credential"),
                f"no credential is named {name!r}; known: {known}",
            )

    def _window(self, entry: _Entry[MaintenanceModel]) -> MaintenanceWindow:
        window = entry.model
        timezone = str(self.context["timezone"])
        zone = ZoneInfo(timezone)
        if window.start is not None and window.end is not None:
            start = window.start if window.start.tzinfo else window.start.replace(tzinfo=zone)
            end = window.end if window.end.tzinfo else window.end.replace(tzinfo=zone)
            return MaintenanceWindow(
                name=window.name,
                sites=tuple(window.sites),
                start=start.astimezone(UTC),
                end=end.astimezone(UTC),
                timezone=timezone,
            )
        every = window.every or []
        weekdays = () if "daily" in every else tuple(sorted({WEEKDAYS.index(day) for day in every}))
        return MaintenanceWindow(
            name=window.name,
            sites=tuple(window.sites),
            weekdays=weekdays,
            daily_start=window.at,
            duration=window.duration,
            timezone=timezone,
        )


_FALLBACK_HEAD = InventoryDocument.model_construct(province=ProvinceModel.model_construct(code="", name=""))


@functools.cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def _setter(target: dict[str, _Entry[Any]], name: str) -> Callable[[_Entry[Any]], None]:
    def keep(entry: _Entry[Any]) -> None:
        target[name] = entry

    return keep


def _where(entry: _Entry[Any] | None) -> tuple[LocatedDoc | None, DocPath]:
    return (entry.doc, entry.path) if entry is not None else (None, ())


def _only_missing(model: type[BaseModel], params: dict[str, Any]) -> bool:
    """True when ``params`` fail only for want of required fields."""
    try:
        model.model_validate(params)
    except ValidationError as exc:
        return all(error["type"] == "missing" for error in exc.errors())
    return False


def _partial(collectors: BaseModel | None, kind: str) -> dict[str, Any]:
    overrides = getattr(collectors, kind, None) if collectors is not None else None
    return overrides.model_dump(exclude_none=True) if isinstance(overrides, BaseModel) else {}


def _chosen_kinds(collectors: BaseModel | None) -> tuple[str, ...]:
    if collectors is None:
        return _DEFAULT_COLLECTORS
    return tuple(kind for kind in REGISTRY if kind in collectors.model_fields_set)


def _is_label(name: str) -> bool:
    return bool(LABEL_RE.match(name))


def _raw_name(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in ("code", "name"):
            if isinstance(item.get(key), str):
                return str(item[key])
    return None


def _unknown_key_message(model: Any, loc: Sequence[Any]) -> str:
    """'unknown key' with the nearest allowed key, or the list of known collector kinds."""
    parents = _types_at(model, loc[:-1])
    if any(p is CollectorsOverrides for p in parents):
        return f"unknown collector kind; known kinds: {', '.join(REGISTRY)}"
    allowed = sorted({name for p in parents for name in _fields(p)})
    key = str(loc[-1]) if loc else ""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    if allowed:
        return f"unknown key; allowed keys: {', '.join(allowed)}"
    return "unknown key"


def _fields(tp: Any) -> Iterable[str]:
    return tp.model_fields if isinstance(tp, type) and issubclass(tp, BaseModel) else ()


def _arms(tp: Any) -> list[Any]:
    """The concrete types behind Annotated and unions."""
    if typing.get_origin(tp) is typing.Annotated:
        return _arms(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [arm for arg in typing.get_args(tp) for arm in _arms(arg)]
    return [tp]


def _types_at(model: Any, loc: Sequence[Any]) -> list[Any]:
    """The model types a validation location points into; union tags in the location are skipped."""
    current = _arms(model)
    for element in loc:
        following: list[Any] = []
        for tp in current:
            if isinstance(tp, type) and issubclass(tp, StrictModel) and element in tp.model_fields:
                following.extend(_arms(tp.model_fields[element].annotation))
            elif typing.get_origin(tp) is list and isinstance(element, int):
                following.extend(_arms(typing.get_args(tp)[0]))
            elif typing.get_origin(tp) is dict and isinstance(element, str):
                following.extend(_arms(typing.get_args(tp)[1]))
        if following:
            current = following
    return current
