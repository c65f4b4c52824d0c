"""YAML loading that remembers where every key stands, so errors can say ``file:line: path: message``.

Scalars follow the YAML 1.2 core schema rather than PyYAML's YAML 1.1 default: ``22:00`` stays the
string ``"22:00"`` (not the sexagesimal 1320), ``no``/``on`` stay strings (only ``true``/``false``
are booleans), ``010`` stays a string, and ISO dates stay strings for the model to parse. Duplicate
keys are errors (YAML would silently keep the last one). Pure: no netwatch imports, so device
profiles and the inventory report errors alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

PathElement = str | int
DocPath = tuple[PathElement, ...]

# A document of aliases to aliases can expand exponentially ("billion laughs"); bound the walk.
MAX_NODES = 2_000_000
# Configuration is shallow; a bound here keeps deep nesting a located error, not a RecursionError.
MAX_DEPTH = 64

_CORE_RESOLVERS: tuple[tuple[str, str, str], ...] = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0b[01_]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
)


class _CoreLoader(_BaseLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema plain scalars."""


_CoreLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in _CORE_RESOLVERS:
    _regexp = re.compile(_pattern)
    for _char in _first:
        _CoreLoader.yaml_implicit_resolvers.setdefault(_char, []).append((_tag, _regexp))
# The empty plain scalar is null; PyYAML looks it up under the first character "".
_CoreLoader.yaml_implicit_resolvers[""] = [("tag:yaml.org,2002:null", re.compile(r"^$"))]


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """One thing wrong with a YAML file, located to the line."""

    file: str
    line: int
    path: DocPath
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {format_path(self.path) or '(document)'}: {self.message}"


class YamlSourceError(Exception):
    """A YAML file could not be read as data; ``problems`` lists every located reason."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class LocatedDoc:
    """Plain data read from a YAML file, with the line of every mapping key and sequence item."""

    file: str
    data: Any
    lines: Mapping[DocPath, int] = field(default_factory=dict)

    def line_of(self, path: Iterable[PathElement]) -> int:
        """The line of ``path``, or of its deepest prefix present in the file (1 for the document)."""
        best = 1
        prefix: DocPath = ()
        for element in path:
            prefix = (*prefix, element)
            line = self.lines.get(prefix)
            if line is None:
                break
            best = line
        return best

    def data_path(self, loc: Iterable[Any], keep_last: bool = False) -> DocPath:
        """``loc`` (e.g. a pydantic error location) without the elements that are not in the data.

        Validators add union tags and such to locations; the data names only keys and indexes. With
        ``keep_last`` the last element is kept even when absent (it names a missing or unknown key).
        """
        elements = list(loc)
        kept: list[PathElement] = []
        node = self.data
        for i, element in enumerate(elements):
            last = i == len(elements) - 1
            in_mapping = isinstance(node, dict) and element in node
            in_sequence = isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node)
            if in_mapping or in_sequence:
                node = node[element]
            elif not (last and keep_last):
                continue
            if isinstance(element, str | int):
                kept.append(element)
        return tuple(kept)


def format_path(path: Iterable[Any]) -> str:
    """``("sites", 2, "parent")`` → ``sites[2].parent``."""
    out = ""
    for element in path:
        if isinstance(element, int) and not isinstance(element, bool):
            out += f"[{element}]"
        else:
            out += f".{element}" if out else str(element)
    return out


def load_yaml(text: str, file: str) -> LocatedDoc:
    """Parse one YAML document from ``text``; ``file`` is the name errors will carry.

    Raises:
        YamlSourceError: syntax error, several documents, unsupported tag, duplicate keys.
    """
    loader = _CoreLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise YamlSourceError([_problem_from_yaml_error(exc, file, text)]) from None
        if node is None:
            return LocatedDoc(file=file, data=None, lines={})
        walker = _Walker(loader, file)
        data = walker.build(node, ())
        if walker.problems:
            raise YamlSourceError(walker.problems)
        return LocatedDoc(file=file, data=data, lines=walker.lines)
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path) -> LocatedDoc:
    """Read and parse a UTF-8 YAML file; errors name it as given.

    Raises:
        YamlSourceError: unreadable file, invalid UTF-8, or anything :func:`load_yaml` rejects.
    """
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise YamlSourceError(
            [YamlProblem(name, 1, (), f"cannot read file: {exc.strerror or exc}")]
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlSourceError([YamlProblem(name, line, (), "file is not valid UTF-8")]) from None
    return load_yaml(text, name)


def _problem_from_yaml_error(exc: yaml.YAMLError, file: str, text: str) -> YamlProblem:
    """A YAML error as a problem, located by its mark; never quotes the file's text (it may hold secrets)."""
    line = 1
    message = "invalid YAML"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        # At the end of the file the problem mark says nothing; the context mark says where it began.
        if exc.context_mark is not None and mark is not None and mark.index >= len(text.rstrip()):
            mark = exc.context_mark
        if mark is not None:
            line = mark.line + 1
        parts = [p for p in (exc.context, exc.problem) if p]
        if parts:
            message = "invalid YAML: " + ", ".join(parts)
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        message = (
            f"invalid YAML: character #x{exc.character:04x} is not allowed"
            if isinstance(exc.character, int)
            else "invalid YAML: unacceptable character"
        )
    return YamlProblem(file, line, (), message)


class _Walker:
    """Turns a composed node tree into plain data, recording lines and duplicate keys."""

    def __init__(self, loader: Any, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[DocPath, int] = {}
        self.problems: list[YamlProblem] = []
        self.count = 0
        self.stack: set[int] = set()

    def build(self, node: yaml.Node, path: DocPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlSourceError(
                [
                    YamlProblem(
                        self.file, node.start_mark.line + 1, path, "document too large (alias expansion)"
                    )
                ]
            )
        if len(path) > MAX_DEPTH:
            raise YamlSourceError(
                [
                    YamlProblem(
                        self.file, node.start_mark.line + 1, (), f"nested more than {MAX_DEPTH} levels deep"
                    )
                ]
            )
        if id(node) in self.stack:
            raise YamlSourceError(
                [YamlProblem(self.file, node.start_mark.line + 1, path, "an alias refers to its own anchor")]
            )
        if isinstance(node, yaml.MappingNode):
            self.stack.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self.stack.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self.stack.add(id(node))
            try:
                items = []
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = item.start_mark.line + 1
                    items.append(self.build(item, (*path, index)))
                return items
            finally:
                self.stack.discard(id(node))
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: DocPath) -> Any:
        if node.tag == "tag:yaml.org,2002:str" and isinstance(node, yaml.ScalarNode):
            return node.value  # most scalars: skip the constructor's bookkeeping
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            message = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else "bad value"
            raise YamlSourceError(
                [YamlProblem(self.file, node.start_mark.line + 1, path, f"invalid YAML: {message}")]
            ) from None

    def _mapping(self, node: yaml.MappingNode, path: DocPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        merge_line = 0
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merge_line = key_node.start_mark.line + 1
                merged.update(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSourceError(
                    [
                        YamlProblem(
                            self.file, key_node.start_mark.line + 1, path, "mapping keys must be scalars"
                        )
                    ]
                )
            key = self._scalar(key_node, path)
            line = key_node.start_mark.line + 1
            if key in result:
                self.problems.append(
                    YamlProblem(
                        self.file,
                        line,
                        (*path, key),
                        f"duplicate key, first defined at line {self.lines[(*path, key)]}",
                    )
                )
                continue
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
        for key, value in merged.items():
            if key not in result:
                self.lines[(*path, key)] = merge_line
                result[key] = value
        return result

    def _merge_sources(self, value_node: yaml.Node, path: DocPath) -> dict[Any, Any]:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        merged: dict[Any, Any] = {}
        # Lines inside merged mappings belong to the anchor, elsewhere in the file: point at the '<<'.
        saved, self.lines = self.lines, {}
        try:
            # Earlier sources win in a YAML merge; apply them last.
            for source in reversed(sources):
                if not isinstance(source, yaml.MappingNode):
                    raise YamlSourceError(
                        [YamlProblem(self.file, source.start_mark.line + 1, path, "'<<' must merge mappings")]
                    )
                merged.update(self.build(source, path))
        finally:
            self.lines = saved
        return merged
