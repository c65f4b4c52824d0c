"""The shipped Prometheus config and alert rules: promtool checks them and runs their unit tests.

Beside promtool's verdict, these tests hold the rules to what users build on: every alert has a
firing and a quiet unit test, a severity and English and Vietnamese texts, site and device alerts
keep ``site``/``district`` (Alertmanager routes on them) and name the site, and every metric a rule
reads is one netwatch exports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.rules.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
PROMTOOL = shutil.which("promtool")

# Alerts about netwatch itself: no site, so no site labels.
SELF_ALERTS = {
    "NetwatchDown",
    "NetwatchPollsLagging",
    "NetwatchSamplesDropped",
    "NetwatchConfigReloadFailed",
    "NetwatchStorageBacklog",
}
# Metrics the rules read before netwatch exports them (the architecture lists them as coming).
PENDING_METRICS = {"netwatch_site_flapping"}

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package prometheus)"
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool with ``args``; its exit status and output."""
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def load(path: Path) -> Any:
    """A YAML file, parsed."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of every shipped rule file."""
    return [
        rule
        for path in RULE_FILES
        for group in load(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def alert_cases() -> list[tuple[str, str, dict[str, Any]]]:
    """(test file, alert name, case) for every ``alert_rule_test`` case of the unit tests."""
    return [
        (path.name, case["alertname"], case)
        for path in TEST_FILES
        for test in load(path)["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_rule_files_exist() -> None:
    """There is something to check: the rule file and its unit tests are where the config says."""
    assert [p.name for p in RULE_FILES] == ["netwatch.rules.yml"]
    assert len(TEST_FILES) >= 4


def test_rule_files_glob_loads_the_rules_and_no_unit_test() -> None:
    """prometheus.yml's rule_files load every rule file and none of the unit tests beside them."""
    globs = load(CONFIG)["rule_files"]
    matched = sorted({p for pattern in globs for p in CONFIG.parent.glob(pattern)})
    assert matched == RULE_FILES
    assert not set(matched) & set(TEST_FILES)


def test_scrape_config_targets_netwatch_on_loopback() -> None:
    """The scrape job is called ``netwatch`` (NetwatchDown expects it) and targets the default port."""
    jobs = {job["job_name"]: job for job in load(CONFIG)["scrape_configs"]}
    targets = [t for sc in jobs["netwatch"]["static_configs"] for t in sc["targets"]]
    assert targets == ["127.0.0.1:9555"]


@needs_promtool
def test_promtool_check_config() -> None:
    """``promtool check config`` accepts prometheus.yml and finds the rule file through it."""
    result = promtool("check", "config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr


@needs_promtool
def test_promtool_check_rules() -> None:
    """``promtool check rules`` accepts every rule file."""
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Path) -> None:
    """Each unit-test file passes ``promtool test rules``."""
    result = promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """Each alert is tested both ways: a case where it fires and one where it must not."""
    names = {rule["alert"] for rule in alert_rules()}
    firing = {name for _, name, case in alert_cases() if case.get("exp_alerts")}
    quiet = {name for _, name, case in alert_cases() if not case.get("exp_alerts")}
    assert names - firing == set(), "alerts without a firing case"
    assert names - quiet == set(), "alerts without a not-firing case"
    assert {name for _, name, _ in alert_cases()} <= names, "unit tests of alerts that do not exist"


def test_every_alert_has_severity_and_texts() -> None:
    """Each alert has a known severity and English summary/description plus a Vietnamese summary."""
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        for key in ("summary", "description", "summary_vi"):
            assert rule["annotations"].get(key, "").strip(), (rule["alert"], key)


def test_site_alerts_keep_site_and_district_and_name_the_site() -> None:
    """Every expected site/device alert carries site and district (for routing) and the site's name."""
    checked = set()
    for file, name, case in alert_cases():
        if name in SELF_ALERTS:
            continue
        for alert in case.get("exp_alerts") or []:
            labels = alert["exp_labels"]
            assert {"site", "district", "name", "severity"} <= labels.keys(), (file, name)
            assert labels["name"] in alert["exp_annotations"]["summary"], (file, name)
            checked.add(name)
    assert checked == {rule["alert"] for rule in alert_rules()} - SELF_ALERTS


def test_site_down_and_unreachable_carry_what_inhibition_needs() -> None:
    """Alertmanager's inhibition rules match on kind, district and cause_site: the unit tests show
    the site alerts produce them (a district's own down alert carries kind="district")."""
    by_name: dict[str, list[dict[str, str]]] = {}
    for _, name, case in alert_cases():
        for alert in case.get("exp_alerts") or []:
            by_name.setdefault(name, []).append(alert["exp_labels"])
    down = by_name["NetwatchSiteDown"]
    assert any(a["kind"] == "district" and a["cause_site"] == a["site"] for a in down)
    unreachable = by_name["NetwatchSiteUnreachable"]
    assert unreachable and all(a["cause_site"] == a["parent"] for a in unreachable)


def exported_metric_names() -> set[str]:
    """Sample names netwatch exposes: literal names in the exporter, plus every profile metric."""
    source = (REPO / "netwatch" / "exporter.py").read_text(encoding="utf-8")
    families = set(re.findall(r'"(netwatch_[a-z0-9_]+)"', source))
    names = {f + suffix for f in families for suffix in ("", "_total", "_bucket", "_sum", "_count")}
    for path in (REPO / "collectors" / "profiles").glob("*.yaml"):
        profile = load(path)
        metrics = list(profile.get("scalars", []))
        for table in profile.get("tables", []):
            metrics.extend(table.get("metrics", []))
        for metric in metrics:
            suffix = "_total" if metric["kind"] == "counter" else ""
            names.add(f"netwatch_{metric['name']}{suffix}")
    return names


def test_rules_read_only_metrics_netwatch_exports() -> None:
    """A renamed metric breaks alerts silently; every netwatch_* name a rule reads must exist."""
    exprs = [rule["expr"] for path in RULE_FILES for group in load(path)["groups"] for rule in group["rules"]]
    # Names inside recording-rule names (level:metric:ops) are not metrics.
    used = {m for expr in exprs for m in re.findall(r"(?<![:\w])netwatch_[a-z0-9_]+(?![:\w])", expr)}
    assert len(used) > 20
    assert used - exported_metric_names() <= PENDING_METRICS
