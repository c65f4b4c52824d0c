"""Whatever text is in the file, loading it gives an inventory or a ConfigError, never a crash."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netwatch.config import load_inventory
from netwatch.errors import ConfigError

SEED = """\
province: {code: QNM, name: Quảng Nam}
site_kinds: {district: {sla_target: 0.99}}
sites:
  - {code: TK, name: Tam Kỳ, kind: district, links: [{device: r1, contracted_bps: 4Mbps}]}
devices:
  - {name: r1, site: TK, address: 198.51.100.1, collectors: {icmp: {probes: 3}}}
credentials:
  c: {version: "3", username: u, auth_protocol: SHA, auth_key: abcdefgh, priv_protocol: AES, priv_key: abcdefgh}
maintenance:
  - {name: m, sites: [TK], every: [sun], at: "22:00", duration: 1h}
"""
YAMLISH = st.text(alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#%@,?\n \t0123456789.~<$é")), max_size=200)


def _load(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_inventory(path)
        except ConfigError as exc:
            assert exc.issues
            assert all(issue.line >= 1 for issue in exc.issues)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_arbitrary_yamlish_text(text: str) -> None:
    _load(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEED) - 1), st.integers(0, 30), YAMLISH)
def test_mutated_valid_inventory(start: int, length: int, insert: str) -> None:
    _load(SEED[:start] + insert + SEED[start + length :])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100))
def test_arbitrary_unicode(text: str) -> None:
    _load(text)
