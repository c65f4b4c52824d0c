"""The example Alertmanager configuration: amtool checks it and its routes, and a real Alertmanager
(Debian's prometheus-alertmanager, on a loopback port) applies its inhibition rules to posted alerts.

amtool cannot simulate inhibition, so the live test posts alerts to Alertmanager's v2 API and reads
back which ones it reports inhibited, and by whom.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import free_port, http_get, terminate

REPO = Path(__file__).resolve().parents[2]
AM_DIR = REPO / "deploy" / "alertmanager"
CONFIG = AM_DIR / "alertmanager.yml"
AMTOOL = shutil.which("amtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

needs_amtool = pytest.mark.skipif(
    AMTOOL is None, reason="amtool not installed (Debian package prometheus-alertmanager)"
)
needs_alertmanager = pytest.mark.skipif(
    ALERTMANAGER is None, reason="alertmanager not installed (Debian package prometheus-alertmanager)"
)


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run amtool with ``args``; its exit status and output."""
    assert AMTOOL is not None
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


@needs_amtool
def test_amtool_check_config() -> None:
    """``amtool check-config`` accepts the example, with its receivers, inhibitions and templates."""
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 inhibit rules" in result.stdout
    assert "1 templates" in result.stdout


def test_no_secret_inline() -> None:
    """The SMTP password is read from a file; the example holds no inline password."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert "smtp_auth_password" not in config["global"]
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/")
    for receiver in config["receivers"]:
        for email in receiver.get("email_configs", []):
            assert "auth_password" not in email


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # A Tam Kỳ outage reaches the NOC and Tam Kỳ's own IT staff.
        (["alertname=NetwatchSiteDown", "district=TK", "severity=critical"], "noc-webhook,district-tk-email"),
        (
            ["alertname=NetwatchHighLatency", "district=TK", "severity=warning"],
            "noc-webhook,district-tk-email",
        ),
        # Informational alerts are not mailed.
        (["alertname=NetwatchSiteUnreachable", "district=TK", "severity=info"], "noc-webhook"),
        # Another district's outage only reaches the NOC.
        (["alertname=NetwatchSiteDown", "district=HA", "severity=critical"], "noc-webhook"),
        # netwatch's own alerts have no district.
        (["alertname=NetwatchDown", "severity=critical"], "noc-webhook"),
    ],
)
def test_routes(labels: list[str], receivers: str) -> None:
    """Alerts route by district: the example district's mail gets only its own problems."""
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


@needs_amtool
@pytest.mark.parametrize("name", ["netwatch.subject", "netwatch.text"])
def test_templates_render(name: str) -> None:
    """The templates the email receiver names exist and render (with amtool's example data)."""
    result = amtool(
        "template",
        "render",
        f"--template.glob={AM_DIR / 'templates' / '*.tmpl'}",
        f"--template.text={{{{ template {json.dumps(name)} . }}}}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()


@dataclass(frozen=True)
class Alertmanager:
    """A running Alertmanager's API base URL."""

    url: str

    def post(self, alerts: list[dict[str, Any]]) -> None:
        """POST alerts to /api/v2/alerts."""
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def alerts(self) -> list[dict[str, Any]]:
        """Every active alert (inhibited ones included), as the v2 API reports them."""
        status, body = http_get(f"{self.url}/api/v2/alerts?active=true&inhibited=true&silenced=true")
        assert status == 200, body
        result: list[dict[str, Any]] = json.loads(body)
        return result


def local_config(tmp: Path) -> Path:
    """The example config with every receiver pointed at a closed loopback port, so a test never
    sends mail or reaches the example hosts; routes and inhibition rules are the shipped ones."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    sink = f"http://127.0.0.1:{free_port()}/alerts"
    for receiver in config["receivers"]:
        for key in [k for k in receiver if k.endswith("_configs")]:
            del receiver[key]
        receiver["webhook_configs"] = [{"url": sink, "send_resolved": False}]
    config["global"] = {"resolve_timeout": config["global"]["resolve_timeout"]}
    config["templates"] = [str(AM_DIR / t) for t in config["templates"]]
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    """Alertmanager with the example's routes and inhibitions, on a loopback port, clustering off."""
    assert ALERTMANAGER is not None
    tmp = tmp_path_factory.mktemp("alertmanager")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp / "alertmanager.log").open("w") as log:
        proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={local_config(tmp)}",
                f"--storage.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (tmp / "alertmanager.log").read_text()
                try:
                    if http_get(f"{url}/-/ready", timeout=1)[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "alertmanager did not become ready"
                time.sleep(0.1)
            yield Alertmanager(url)
        finally:
            terminate(proc, timeout=10)


def site_alert(
    alertname: str, site: str, district: str, kind: str, parent: str, severity: str
) -> dict[str, Any]:
    """An alert as netwatch's rules label it (cause_site: the site itself if down, else its parent)."""
    cause = site if alertname == "NetwatchSiteDown" else parent
    labels = {
        "alertname": alertname,
        "severity": severity,
        "site": site,
        "district": district,
        "kind": kind,
        "parent": parent,
        "name": f"Site {site}",
        "job": "netwatch",
        "instance": "127.0.0.1:9555",
    }
    if alertname in ("NetwatchSiteDown", "NetwatchSiteUnreachable"):
        labels["cause_site"] = cause
    return {"labels": labels, "annotations": {"summary": f"{alertname} {site}"}}


# (alertname, site) → the alert, and whether the example's inhibition rules must mute it.
SCENARIO: dict[tuple[str, str], tuple[dict[str, Any], bool]] = {
    # Tam Kỳ's district committee is down: its commune's down alert is noise.
    ("NetwatchSiteDown", "TK"): (
        site_alert("NetwatchSiteDown", "TK", "TK", "district", "TU", "critical"),
        False,
    ),
    ("NetwatchSiteDown", "TK-C01"): (
        site_alert("NetwatchSiteDown", "TK-C01", "TK", "commune", "TK", "critical"),
        True,
    ),
    ("NetwatchSiteUnreachable", "TK-C02"): (
        site_alert("NetwatchSiteUnreachable", "TK-C02", "TK", "commune", "TK", "info"),
        True,
    ),
    # A commune of Hội An down while Hội An itself is up: a real outage of its own.
    ("NetwatchSiteDown", "HA-C01"): (
        site_alert("NetwatchSiteDown", "HA-C01", "HA", "commune", "HA", "critical"),
        False,
    ),
    ("NetwatchSiteUnreachable", "HA-C02"): (
        site_alert("NetwatchSiteUnreachable", "HA-C02", "HA", "commune", "HA", "info"),
        False,
    ),
    # The provincial hub down: the district behind it is unreachable (muted by its parent's alert),
    # and that district's communes are muted by the district's unreachable alert.
    ("NetwatchSiteDown", "TU"): (
        site_alert("NetwatchSiteDown", "TU", "QNM", "province", "", "critical"),
        False,
    ),
    ("NetwatchSiteUnreachable", "DL"): (
        site_alert("NetwatchSiteUnreachable", "DL", "DL", "district", "TU", "info"),
        True,
    ),
    ("NetwatchSiteUnreachable", "DL-C01"): (
        site_alert("NetwatchSiteUnreachable", "DL-C01", "DL", "commune", "DL", "info"),
        True,
    ),
    # A down site's lesser alerts are muted; another site's are not.
    ("NetwatchHighLatency", "TK"): (
        site_alert("NetwatchHighLatency", "TK", "TK", "district", "TU", "warning"),
        True,
    ),
    ("NetwatchHighLatency", "HA"): (
        site_alert("NetwatchHighLatency", "HA", "HA", "district", "TU", "warning"),
        False,
    ),
}


@pytest.fixture(scope="module")
def inhibited(alertmanager: Alertmanager) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """After posting SCENARIO: (alertname, site) → the (alertname, site) of the alerts muting it."""
    alertmanager.post([alert for alert, _ in SCENARIO.values()])
    expected = {key for key, (_, muted) in SCENARIO.items() if muted}
    # The inhibitor learns source alerts asynchronously: wait (bounded) until it has them all.
    deadline = time.monotonic() + 15
    while True:
        alerts = alertmanager.alerts()
        by_fingerprint = {a["fingerprint"]: (a["labels"]["alertname"], a["labels"]["site"]) for a in alerts}
        result = {
            by_fingerprint[a["fingerprint"]]: sorted(by_fingerprint[f] for f in a["status"]["inhibitedBy"])
            for a in alerts
        }
        done = len(result) == len(SCENARIO) and {k for k, v in result.items() if v} == expected
        if done or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


@needs_alertmanager
def test_district_down_inhibits_only_its_own_communes(
    inhibited: dict[tuple[str, str], list[tuple[str, str]]],
) -> None:
    """Tam Kỳ down mutes its commune's down alert, not Hội An's commune, and not its own alert."""
    assert inhibited[("NetwatchSiteDown", "TK-C01")] == [("NetwatchSiteDown", "TK")]
    assert inhibited[("NetwatchSiteDown", "HA-C01")] == []
    assert inhibited[("NetwatchSiteDown", "TK")] == []


@needs_alertmanager
def test_unreachable_sites_are_muted_by_the_outage_behind_them(
    inhibited: dict[tuple[str, str], list[tuple[str, str]]],
) -> None:
    """Unreachable alerts are muted by the parent's down alert or the district's, and only then."""
    assert inhibited[("NetwatchSiteUnreachable", "TK-C02")] == [("NetwatchSiteDown", "TK")]
    assert inhibited[("NetwatchSiteUnreachable", "DL")] == [("NetwatchSiteDown", "TU")]
    assert inhibited[("NetwatchSiteUnreachable", "DL-C01")] == [("NetwatchSiteUnreachable", "DL")]
    assert inhibited[("NetwatchSiteUnreachable", "HA-C02")] == []
    assert inhibited[("NetwatchSiteDown", "TU")] == []


@needs_alertmanager
def test_site_down_mutes_its_lesser_alerts(inhibited: dict[tuple[str, str], list[tuple[str, str]]]) -> None:
    """A down site's warning alerts are muted by its down alert; another site's warnings are not."""
    assert inhibited[("NetwatchHighLatency", "TK")] == [("NetwatchSiteDown", "TK")]
    assert inhibited[("NetwatchHighLatency", "HA")] == []


@needs_alertmanager
def test_exactly_the_expected_alerts_are_muted(
    inhibited: dict[tuple[str, str], list[tuple[str, str]]],
) -> None:
    """Every posted alert is active in Alertmanager and nothing else is muted."""
    assert set(inhibited) == set(SCENARIO)
    assert {k for k, v in inhibited.items() if v} == {k for k, (_, muted) in SCENARIO.items() if muted}
