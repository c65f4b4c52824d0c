"""The inventory's JSON Schema documents every key, and the example files conform to it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from collectors.yamlsource import load_yaml_file
from netwatch.config import inventory_json_schema

from .conftest import LOOPBACK, QUANGNAM


def _properties(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every (location, property schema) pair in the schema."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            found.append((f"{where}/{name}", prop))
        for key, child in node.items():
            found.extend(_properties(child, f"{where}/{key}"))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found.extend(_properties(child, f"{where}/{index}"))
    return found


def test_schema_is_json_and_describes_every_property() -> None:
    schema = inventory_json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert {"province", "sites", "devices", "credentials", "maintenance", "include"} <= set(
        schema["properties"]
    )
    undocumented = [where for where, prop in _properties(schema) if not prop.get("description")]
    assert undocumented == []


def test_schema_forbids_unknown_keys_everywhere() -> None:
    for name, definition in inventory_json_schema()["$defs"].items():
        if definition.get("type") == "object":
            assert definition.get("additionalProperties") is False, name


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def _violations(schema: dict[str, Any], data: Any, root: dict[str, Any], where: str = "") -> list[str]:
    """A small JSON Schema check for the keywords pydantic emits here (jsonschema is not a dependency)."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema or "oneOf" in schema:
        arms = schema.get("anyOf") or schema["oneOf"]
        results = [_violations(arm, data, root, where) for arm in arms]
        return [] if any(not r for r in results) else [f"{where}: matches no alternative"]
    problems: list[str] = []
    expected = schema.get("type")
    if expected and (
        not isinstance(data, _TYPES[expected]) or (isinstance(data, bool) and expected != "boolean")
    ):
        return [f"{where}: not {expected}"]
    if "enum" in schema and data not in schema["enum"]:
        problems.append(f"{where}: not one of {schema['enum']}")
    if "const" in schema and data != schema["const"]:
        problems.append(f"{where}: not {schema['const']}")
    if "pattern" in schema and isinstance(data, str) and not re.search(schema["pattern"], data):
        problems.append(f"{where}: does not match {schema['pattern']}")
    return problems + _member_violations(schema, data, root, where)


def _member_violations(schema: dict[str, Any], data: Any, root: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    if isinstance(data, dict):
        properties = schema.get("properties", {})
        problems += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in data]
        for key, value in data.items():
            if key in properties:
                problems += _violations(properties[key], value, root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}.{key}: not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += _violations(schema["additionalProperties"], value, root, f"{where}.{key}")
    if isinstance(data, list) and "items" in schema:
        for index, item in enumerate(data):
            problems += _violations(schema["items"], item, root, f"{where}[{index}]")
    return problems


@pytest.mark.parametrize("path", [QUANGNAM, LOOPBACK, "config/quangnam/communes-tk.yaml"])
def test_examples_validate_against_schema(path: Any) -> None:
    schema = inventory_json_schema()
    data = load_yaml_file(path).data
    if "province" not in data:  # an included file: its keys are the main file's sites, devices, maintenance
        data = {"province": {"code": "QNM", "name": "Quảng Nam"}, **data}
    assert _violations(schema, data, schema) == []


def test_schema_check_catches_a_typo() -> None:
    schema = inventory_json_schema()
    data = {
        "province": {"code": "QNM", "name": "Quảng Nam"},
        "sites": [{"code": "A", "name": "A", "kid": "x"}],
    }
    assert _violations(schema, data, schema) == [".sites[0].kind: required", ".sites[0].kid: not allowed"]


def test_examples_validate_with_jsonschema_when_installed() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = inventory_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in (QUANGNAM, LOOPBACK):
        jsonschema.validate(load_yaml_file(path).data, schema)
