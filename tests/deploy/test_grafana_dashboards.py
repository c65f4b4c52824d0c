"""The shipped Grafana dashboards and provisioning: they load, use the provisioned Prometheus, read
only metrics netwatch exports, and every panel shows data from a real Prometheus scraping
``netwatch demo``.

A renamed metric or a wrong label matcher leaves a panel saying "No data" without any error, so
the live tests run every panel's query, with the dashboard's variables substituted as Grafana
would, against Prometheus 2 (Debian's ``prometheus``) loaded with the shipped rules.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import free_port, http_get, netwatch_process, scrape, terminate

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
RULE_FILES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))
COMPOSE = REPO / "deploy" / "container" / "compose.yaml"
PROMETHEUS = shutil.which("prometheus")

UIDS = {"netwatch-province", "netwatch-link", "netwatch-datacenter", "netwatch-self"}
DATASOURCE_UID = "netwatch-prometheus"
DATASOURCE_REFS = {"${datasource}", "$datasource", DATASOURCE_UID}
TIMEZONE = "Asia/Ho_Chi_Minh"

# What Grafana puts in place of its built-in variables, for an instant query at "now".
BUILTINS = {"__rate_interval": "30s", "__interval": "1m", "__range": "5m"}
SCRAPE_SECONDS = 2
READY_SECONDS = 90.0
"""Bound on waiting for the demo's first rounds and this month's availability to reach Prometheus."""
FAULT_PERIOD = 80
"""The demo's simulated-fault period: a commune is down about 35-50 s into every period, so panels
about open outages have something to show within one period."""
DATA_SECONDS = FAULT_PERIOD + 10.0
"""After that, how long a panel may wait for data (an outage, SNMP rates) before it fails."""

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "inf", "nan",
}  # fmt: skip
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE"}
"""Series Prometheus makes itself (besides ``scrape_*``)."""


# --- reading the dashboards ------------------------------------------------------------------


def load_dashboard(path: Path) -> dict[str, Any]:
    """One dashboard file, parsed."""
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included (rows themselves too)."""
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        yield panel
        stack[:0] = panel.get("panels", [])


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels that query a datasource (everything but rows)."""
    return [p for p in panels(dashboard) if p.get("type") != "row"]


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's template variables."""
    return list(dashboard.get("templating", {}).get("list", []))


def variable_query(variable: dict[str, Any]) -> str:
    """A query variable's query text (Grafana stores it as a string or as ``{query: ...}``)."""
    query = variable.get("query")
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


def prometheus_annotations(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Annotation queries that read Prometheus (not Grafana's built-in one)."""
    return [a for a in dashboard.get("annotations", {}).get("list", []) if "expr" in a]


@dataclass(frozen=True)
class PanelQuery:
    """One panel target's PromQL, named for test ids."""

    dashboard: str
    panel: str
    ref: str
    expr: str

    @property
    def id(self) -> str:
        """``uid/panel title/refId``."""
        return f"{self.dashboard}/{self.panel}/{self.ref}"


def panel_queries() -> list[PanelQuery]:
    """Every target of every panel of every shipped dashboard."""
    out = []
    for path in DASHBOARD_FILES:
        dashboard = load_dashboard(path)
        for panel in query_panels(dashboard):
            for target in panel.get("targets", []):
                out.append(PanelQuery(dashboard["uid"], panel["title"], target["refId"], target["expr"]))
    return out


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, variable name, label_values query) of every query variable."""
    return [
        (load_dashboard(path)["uid"], v["name"], variable_query(v))
        for path in DASHBOARD_FILES
        for v in variables(load_dashboard(path))
        if v.get("type") == "query"
    ]


def every_expr() -> list[str]:
    """All PromQL in the dashboards: panel targets, annotation queries and variable selectors."""
    exprs = [q.expr for q in panel_queries()]
    for path in DASHBOARD_FILES:
        exprs.extend(a["expr"] for a in prometheus_annotations(load_dashboard(path)))
    for _, _, query in variable_queries():
        selector, _ = parse_label_values(query)
        if selector:
            exprs.append(selector)
    return exprs


def parse_label_values(query: str) -> tuple[str | None, str]:
    """``label_values(selector, label)`` or ``label_values(label)`` as (selector, label)."""
    match = re.fullmatch(r"\s*label_values\(\s*(?:(.*\S)\s*,\s*)?(\w+)\s*\)\s*", query, re.DOTALL)
    assert match is not None, f"not a label_values() query: {query!r}"
    return match.group(1), match.group(2)


# --- PromQL metric names ---------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords,
    label names (in matchers and in by/on/... lists) or durations."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # range and subquery durations
    text = _LABEL_LIST.sub(" ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in PROMQL_KEYWORDS}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('netwatch_up{collector="icmp"}', {"netwatch_up"}),
        (
            "histogram_quantile(0.9, sum by (le, instance) (rate(netwatch_poll_lag_seconds_bucket"
            '{job="netwatch",instance=~"$instance"}[$__rate_interval])))',
            {"netwatch_poll_lag_seconds_bucket"},
        ),
        (
            "a_total / on (device, ifindex) group_left () (b_bps > 0) or vector(0) offset 5m",
            {"a_total", "b_bps"},
        ),
        ('label_replace(x, "direction", "in", "", "") unless on() y == bool 1', {"x", "y"}),
        ("sum(rate(x[5m])) by (site) * 1e3", {"x"}),
        (
            'interface:netwatch_if_utilisation:ratio{ifname=~"$interface"}',
            {"interface:netwatch_if_utilisation:ratio"},
        ),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    """The tokenizer finds metrics, and not functions, label names, strings or durations."""
    assert metric_names(expr) == names


def declared_metric_names() -> set[str]:
    """Sample names netwatch declares: literal family names in the exporter (with their sample
    suffixes), plus every metric of every SNMP profile; so a family with no sample yet counts."""
    source = (REPO / "netwatch" / "exporter.py").read_text(encoding="utf-8")
    families = set(re.findall(r'"(netwatch_[a-z0-9_]+)"', source))
    names = {f + suffix for f in families for suffix in ("", "_total", "_bucket", "_sum", "_count")}
    for path in (REPO / "collectors" / "profiles").glob("*.yaml"):
        profile = yaml.safe_load(path.read_text(encoding="utf-8"))
        metrics = list(profile.get("scalars", []))
        for table in profile.get("tables", []):
            metrics.extend(table.get("metrics", []))
        for metric in metrics:
            suffix = "_total" if metric["kind"] == "counter" else ""
            names.add(f"netwatch_{metric['name']}{suffix}")
    return names


def recording_rule_names() -> set[str]:
    """Series the shipped recording rules make."""
    return {
        rule["record"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def known_names(extra: frozenset[str] | set[str] = frozenset()) -> set[str]:
    """Every series name a dashboard may read."""
    return declared_metric_names() | recording_rule_names() | PROMETHEUS_OWN | set(extra)


def unknown_names(exprs: list[str], known: set[str]) -> set[str]:
    """Names read by ``exprs`` that are not in ``known`` (``scrape_*`` is Prometheus' own)."""
    used = {name for expr in exprs for name in metric_names(expr)}
    return {name for name in used - known if not name.startswith("scrape_")}


# --- static checks ---------------------------------------------------------------------------


def test_dashboards_have_the_fixed_uids_and_the_province_time_zone() -> None:
    """Links between dashboards and bookmarks use the uids; staff read times in Vietnam's zone."""
    dashboards = [load_dashboard(path) for path in DASHBOARD_FILES]
    uids = [d["uid"] for d in dashboards]
    assert sorted(uids) == sorted(UIDS), "one file per dashboard, each with its fixed uid"
    for path, dashboard in zip(DASHBOARD_FILES, dashboards, strict=True):
        assert path.stem == dashboard["uid"], "file named after its uid"
        assert dashboard["timezone"] == TIMEZONE
        assert dashboard["schemaVersion"] >= 36
        assert dashboard["title"] and query_panels(dashboard), f"{path.name} has panels"
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids are unique"


def test_vietnamese_text_is_stored_as_utf8() -> None:
    """Vietnamese titles stay readable in the files (not \\u escapes), and survive a round trip."""
    text = (DASHBOARD_DIR / "netwatch-province.json").read_text(encoding="utf-8")
    assert "Tổng quan tỉnh" in text
    assert "\\u" not in text
    assert load_dashboard(DASHBOARD_DIR / "netwatch-province.json")["title"].startswith(
        "netwatch — Tổng quan"
    )


def test_every_panel_and_variable_reads_the_provisioned_prometheus() -> None:
    """A panel bound to another datasource (or none) shows nothing on a provisioned Grafana."""
    for path in DASHBOARD_FILES:
        dashboard = load_dashboard(path)
        (selector,) = [v for v in variables(dashboard) if v.get("type") == "datasource"]
        assert selector["name"] == "datasource" and selector["query"] == "prometheus"
        assert selector["current"]["value"] == DATASOURCE_UID
        sources = [(p["title"], p.get("datasource")) for p in query_panels(dashboard)]
        sources += [
            (f"{p['title']}/{t['refId']}", t.get("datasource", p.get("datasource")))
            for p in query_panels(dashboard)
            for t in p.get("targets", [])
        ]
        sources += [
            (f"${v['name']}", v.get("datasource")) for v in variables(dashboard) if v["type"] == "query"
        ]
        sources += [(a["name"], a.get("datasource")) for a in prometheus_annotations(dashboard)]
        for where, source in sources:
            assert isinstance(source, dict), f"{path.name}: {where} names no datasource"
            assert source.get("type") == "prometheus", f"{path.name}: {where}: {source}"
            assert source.get("uid") in DATASOURCE_REFS, f"{path.name}: {where}: {source}"
        for panel in query_panels(dashboard):
            assert panel.get("targets"), f"{path.name}: {panel['title']} has no query"
            assert all(t.get("expr", "").strip() for t in panel["targets"]), panel["title"]


def test_provisioning_points_at_the_shipped_dashboards() -> None:
    """The datasource carries the uid the dashboards use; the file provider reads the directory
    that compose mounts from deploy/grafana/dashboards."""
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "netwatch.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "netwatch.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    mounts = dict(
        volume.rsplit(":", 2)[:2] if volume.count(":") >= 2 else volume.split(":", 1)
        for volume in compose["services"]["grafana"]["volumes"]
    )
    by_target = {target: source for source, target in mounts.items()}
    assert path in by_target, f"compose mounts nothing at the provider's path {path}"
    mounted = (COMPOSE.parent / by_target[path]).resolve()
    assert mounted == DASHBOARD_DIR.resolve()
    assert {p.name for p in mounted.glob("*.json")} == {f"{uid}.json" for uid in UIDS}
    assert by_target.get("/etc/grafana/provisioning") and (
        (COMPOSE.parent / by_target["/etc/grafana/provisioning"]).resolve()
        == (GRAFANA / "provisioning").resolve()
    )


def test_dashboards_read_only_metrics_netwatch_exports() -> None:
    """Every series a panel, annotation or variable reads is exported by netwatch, made by a
    shipped recording rule, or Prometheus' own."""
    exprs = every_expr()
    assert len(exprs) > 40
    assert unknown_names(exprs, known_names()) == set()


# --- live: netwatch demo + Prometheus --------------------------------------------------------

live = pytest.mark.skipif(
    os.geteuid() != 0 or PROMETHEUS is None,
    reason="needs root (ICMP on loopback) and Debian's prometheus; CI has both",
)


@dataclass
class Stack:
    """A running demo and a Prometheus scraping it."""

    demo_port: int
    prometheus_port: int
    data_deadline: float

    def api(self, path: str, **params: str) -> Any:
        """GET a Prometheus HTTP API path; its ``data`` (asserting success)."""
        query = urllib.parse.urlencode(params)
        status, body = http_get(f"http://127.0.0.1:{self.prometheus_port}{path}?{query}", timeout=10)
        reply = json.loads(body)
        assert status == 200 and reply["status"] == "success", f"{path} {params}: {body[:500]}"
        return reply["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (a scalar as one sample)."""
        data = self.api("/api/v1/query", query=expr)
        result = data["result"]
        return [{"value": result}] if data["resultType"] == "scalar" else list(result)


def substitute(expr: str) -> str:
    """``expr`` as Grafana sends it with every site, device and interface selected ("All" = ``.*``)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return BUILTINS.get(name, ".*")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def prometheus_config(directory: Path, demo_port: int) -> Path:
    """A config scraping the demo every few seconds with the shipped rule files."""
    config = {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [
            {"job_name": "netwatch", "static_configs": [{"targets": [f"127.0.0.1:{demo_port}"]}]}
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``netwatch demo`` and Prometheus, until the demo's rounds and this month's availability have
    been scraped; both stopped afterwards."""
    assert PROMETHEUS is not None
    tmp = tmp_path_factory.mktemp("grafana-live")
    demo_port, prometheus_port = free_port(), free_port()
    demo = ("demo", "--listen", f"127.0.0.1:{demo_port}", "--fault-period", str(FAULT_PERIOD))
    with netwatch_process(*demo, port=demo_port, cwd=tmp):
        log = (tmp / "prometheus.log").open("w")
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={prometheus_config(tmp, demo_port)}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            stack = Stack(demo_port, prometheus_port, data_deadline=0.0)
            deadline = time.monotonic() + READY_SECONDS
            while not _ready(stack):
                assert proc.poll() is None, (tmp / "prometheus.log").read_text()
                assert time.monotonic() < deadline, "the demo's rounds never reached Prometheus"
                time.sleep(1)
            stack.data_deadline = time.monotonic() + DATA_SECONDS
            yield stack
        finally:
            terminate(proc, timeout=20)
            log.close()


def _ready(stack: Stack) -> bool:
    """Prometheus has ~20 s of scrapes and netwatch's first availability figures."""
    try:
        rounds = stack.query('count_over_time(up{job="netwatch"}[1m]) >= 10 and up{job="netwatch"} == 1')
        availability = stack.query('count(netwatch_site_availability_ratio{period="month"})')
    except (OSError, AssertionError, ValueError):
        return False
    return bool(rounds and availability)


@live
def test_scraped_families_are_the_declared_ones(stack: Stack) -> None:
    """The declared names the static check trusts are what the demo really serves, including this
    month's availability per site."""
    scraped = {name for name, _ in scrape(stack.demo_port)}
    assert scraped - declared_metric_names() == set()
    assert unknown_names(every_expr(), known_names(scraped)) == set()
    availability = stack.query('netwatch_site_availability_ratio{period="month"}')
    assert len(availability) == len(stack.query("netwatch_site_info")), "a figure for every site"
    assert all(0.0 <= float(s["value"][1]) <= 1.0 for s in availability)
    downtime = stack.query('netwatch_site_downtime_seconds{period="month"} >= 0')
    assert len(downtime) == len(availability), "this month's DOWN time for every site"


@live
@pytest.mark.parametrize(("uid", "name", "query"), variable_queries(), ids=lambda v: str(v))
def test_variable_offers_values(stack: Stack, uid: str, name: str, query: str) -> None:
    """A variable with no values leaves its whole dashboard empty."""
    selector, label = parse_label_values(query)
    params = {"match[]": substitute(selector)} if selector else {}
    values = stack.api(f"/api/v1/label/{label}/values", **params)
    assert values, f"{uid}: ${name} ({query}) offers nothing"


@live
def test_annotation_queries_run(stack: Stack) -> None:
    """Outage annotations are valid PromQL (they return series only while something is down)."""
    exprs = [a["expr"] for path in DASHBOARD_FILES for a in prometheus_annotations(load_dashboard(path))]
    assert exprs
    for expr in exprs:
        stack.query(substitute(expr))


@live
@pytest.mark.parametrize("target", panel_queries(), ids=lambda q: q.id)
def test_panel_shows_data(stack: Stack, target: PanelQuery) -> None:
    """Every panel query returns series from the demo (retried while SNMP rates warm up)."""
    expr = substitute(target.expr)
    while not (result := stack.query(expr)) and time.monotonic() < stack.data_deadline:
        time.sleep(SCRAPE_SECONDS)
    assert result, f"no data for {target.id}: {expr}"
