"""Each invalid inventory in tests/testdata/config gives exactly the errors in its .expected file."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.config import check_inventory, load_inventory
from netwatch.errors import ConfigError

from .conftest import REPO, TESTDATA

CASES = sorted(p.name for p in (REPO / TESTDATA).glob("invalid-*.yaml"))


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 15
    for name in CASES:
        assert (REPO / TESTDATA / name).with_suffix(".expected").is_file(), name


@pytest.mark.parametrize("name", CASES)
def test_invalid_inventory_reports_exact_errors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NETWATCH_TEST_UNSET_COMMUNITY", raising=False)
    monkeypatch.delenv("NETWATCH_TEST_UNSET_PRIV_KEY", raising=False)
    path = TESTDATA / name
    expected = (REPO / path).with_suffix(".expected").read_text(encoding="utf-8").splitlines()

    assert [str(issue) for issue in check_inventory(str(path))] == expected
    with pytest.raises(ConfigError) as raised:
        load_inventory(str(path))
    assert str(raised.value).splitlines() == expected


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as raised:
        load_inventory(missing)
    assert [str(i) for i in raised.value.issues] == [
        f"{missing}:1: (document): cannot read file: No such file or directory"
    ]
