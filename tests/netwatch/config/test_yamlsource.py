"""collectors.yamlsource: lines for every key and item, YAML 1.2 scalars, duplicate keys, syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.yamlsource import YamlSourceError, format_path, load_yaml, load_yaml_file

DOC = """\
province:
  code: QNM
sites:
  - code: TK
    at: 22:00
    flags: [no, on, true, 010, 0x10, 1e3, 2024-05-01]
  - code: HA
"""


def test_lines_of_keys_and_items() -> None:
    doc = load_yaml(DOC, "inv.yaml")
    assert doc.line_of(("province", "code")) == 2
    assert doc.line_of(("sites", 1)) == 7
    assert doc.line_of(("sites", 1, "code")) == 7
    assert doc.line_of(("sites", 1, "missing", "deeper")) == 7
    assert doc.line_of(()) == 1


def test_scalars_follow_yaml_1_2_core_schema() -> None:
    site = load_yaml(DOC, "inv.yaml").data["sites"][0]
    assert site["at"] == "22:00"
    assert site["flags"] == ["no", "on", True, "010", 16, 1000.0, "2024-05-01"]


def test_data_path_drops_validator_tags() -> None:
    doc = load_yaml(DOC, "inv.yaml")
    assert doc.data_path(("sites", 0, "function-after[x]", "code")) == ("sites", 0, "code")
    assert doc.data_path(("sites", 0, "name"), keep_last=True) == ("sites", 0, "name")
    assert doc.data_path(("sites", 0, "tag")) == ("sites", 0)
    assert format_path(("sites", 2, "links", 0, "device")) == "sites[2].links[0].device"


def test_duplicate_keys_are_all_reported() -> None:
    with pytest.raises(YamlSourceError) as raised:
        load_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "dup.yaml")
    assert [str(p) for p in raised.value.problems] == [
        "dup.yaml:4: b.c: duplicate key, first defined at line 3",
        "dup.yaml:5: a: duplicate key, first defined at line 1",
    ]


def test_merge_keys_apply_and_explicit_keys_win() -> None:
    doc = load_yaml("base: &b {x: 1, y: 2}\nsite:\n  <<: *b\n  y: 3\n", "m.yaml")
    assert doc.data["site"] == {"x": 1, "y": 3}
    assert doc.line_of(("site", "x")) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: [1,\n",
            "m.yaml:2: (document): invalid YAML: while parsing a flow node, did not find expected node content",
        ),
        (
            "a: !!python/object:os.system x\n",
            "m.yaml:1: a: invalid YAML: could not determine a constructor for the tag"
            " 'tag:yaml.org,2002:python/object:os.system'",
        ),
        ("- &a [*a]\n", "m.yaml:1: [0][0]: an alias refers to its own anchor"),
        (
            "a: 1\n---\nb: 2\n",
            "m.yaml:2: (document): invalid YAML: expected a single document in the stream,"
            " but found another document",
        ),
        ("? [1]\n: 2\n", "m.yaml:1: (document): mapping keys must be scalars"),
        ("a: \x01\n", "m.yaml:1: (document): invalid YAML: character #x0001 is not allowed"),
    ],
)
def test_yaml_errors_are_located(text: str, message: str) -> None:
    with pytest.raises(YamlSourceError) as raised:
        load_yaml(text, "m.yaml")
    assert str(raised.value) == message


def test_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"a: 1\nname: Qu\xe1ng\n")
    with pytest.raises(YamlSourceError) as raised:
        load_yaml_file(bad)
    assert str(raised.value) == f"{bad}:2: (document): file is not valid UTF-8"
    bom = tmp_path / "bom.yaml"
    bom.write_bytes("\ufeffname: Quảng Nam\n".encode())
    assert load_yaml_file(bom).data == {"name": "Quảng Nam"}


def test_deep_nesting_is_a_located_error() -> None:
    text = "".join("  " * depth + "k:\n" for depth in range(200))
    with pytest.raises(YamlSourceError) as raised:
        load_yaml(text, "deep.yaml")
    assert str(raised.value) == "deep.yaml:66: (document): nested more than 64 levels deep"
