"""The container files, checked statically (no container engine on the test machines): the compose
file parses and points only at files that exist, the netwatch service runs as non-root with NET_RAW
as its one capability on a read-only root, ports are published on the host's loopback only, and the
Prometheus and Alertmanager configs the stack mounts pass promtool and amtool as laid out inside
their containers.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONTAINER_DIR = REPO / "deploy" / "container"
COMPOSE = CONTAINER_DIR / "compose.yaml"
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
SERVICES = {"netwatch", "prometheus", "alertmanager", "grafana"}


def compose() -> dict[str, Any]:
    """compose.yaml, parsed."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount of ``service`` (named volumes left out)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = (
            (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
        )
        if source.startswith((".", "/")):
            mounts.append(((COMPOSE.parent / source).resolve(), target))
    return mounts


def containerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("#")
        ),
    )
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for line in joined.splitlines()
        if (parts := line.strip().split(None, 1))
    ]


def build_paths(service: dict[str, Any]) -> tuple[Path, Path]:
    """The build context and Containerfile of a service built from this repository."""
    context = (COMPOSE.parent / service["build"]["context"]).resolve()
    return context, context / service["build"]["dockerfile"]


def mirror(service: dict[str, Any], root: Path) -> None:
    """Copy ``service``'s bind mounts under ``root`` at their in-container paths, so tools that
    resolve relative paths (rule_files, templates) see the container's layout."""
    for host, target in bind_mounts(service):
        dest = root / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if host.is_dir():
            shutil.copytree(host, dest)
        else:
            shutil.copy(host, dest)


def config_flag(service: dict[str, Any]) -> str:
    """The ``--config.file=`` path a Prometheus-family service is started with."""
    (value,) = [arg.split("=", 1)[1] for arg in service["command"] if arg.startswith("--config.file=")]
    return str(value)


def test_compose_has_the_stack_and_every_host_path_exists() -> None:
    """The four services are there, and every build context, Containerfile and bind-mounted host
    path exists relative to the compose file (a typo would fail only at `compose up`)."""
    services = compose()["services"]
    assert set(services) == SERVICES
    missing = [
        f"{name}: {host}"
        for name, service in services.items()
        for host, _ in bind_mounts(service)
        if not host.exists()
    ]
    assert missing == []
    context, containerfile = build_paths(services["netwatch"])
    assert context == REPO and containerfile.is_file()
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if isinstance(v, str)}
    assert {v for v in named if not v.startswith((".", "/"))} <= set(compose()["volumes"])


def test_containerfile_copies_only_existing_files_and_runs_as_non_root() -> None:
    """Every COPY source exists in the build context; the image is python:3.11-slim based,
    multi-stage, runs as a non-root user, exposes 9555 and checks /healthz."""
    context, containerfile = build_paths(compose()["services"]["netwatch"])
    steps = containerfile_instructions(containerfile)
    froms = [args for op, args in steps if op == "FROM"]
    assert len(froms) >= 2 and all(re.search(r"python:3\.11-slim\b", f) for f in froms)
    copies = [shlex.split(args) for op, args in steps if op == "COPY"]
    sources = [src for args in copies if not any(a.startswith("--from") for a in args) for src in args[:-1]]
    assert sources and [s for s in sources if not (context / s).exists()] == []
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert ("EXPOSE", "9555") in steps
    (healthcheck,) = [args for op, args in steps if op == "HEALTHCHECK"]
    assert "http://127.0.0.1:9555/healthz" in healthcheck
    (cmd,) = [args for op, args in steps if op == "CMD"]
    assert "0.0.0.0:9555" in cmd
    assert "setcap cap_net_raw+ep" in " ".join(args for op, args in steps if op == "RUN")


def test_netwatch_service_is_non_root_with_net_raw_only_and_read_only() -> None:
    """The daemon's container drops every capability but NET_RAW, runs as a non-root uid on a
    read-only root, and keeps file capabilities usable (no no-new-privileges)."""
    service = compose()["services"]["netwatch"]
    assert service["cap_drop"] == ["ALL"]
    assert service["cap_add"] == ["NET_RAW"]
    assert service["read_only"] is True
    assert not service.get("privileged", False)
    uid = str(service["user"]).split(":")[0]
    assert uid not in {"0", "root"}
    assert "network_mode" not in service, "host networking would bypass the loopback-only ports"
    # The database lives in a volume (the root is read-only) at the path NETWATCH_DB names.
    assert any(v.endswith(":/var/lib/netwatch") for v in service["volumes"])


def test_ports_are_published_on_host_loopback_only() -> None:
    """Nothing listens on the host's other interfaces: every port is bound to 127.0.0.1."""
    ports = [(name, p) for name, s in compose()["services"].items() for p in s.get("ports", [])]
    assert {name for name, _ in ports} == SERVICES
    assert [p for _, p in ports if not str(p).startswith("127.0.0.1:")] == []


def test_prometheus_scrapes_netwatch_and_alerts_through_the_stack() -> None:
    """The container config targets the compose service names, not the host's loopback."""
    services = compose()["services"]
    mounts = dict((target, host) for host, target in bind_mounts(services["prometheus"]))
    config = yaml.safe_load(mounts[config_flag(services["prometheus"])].read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert [t for sc in jobs["netwatch"]["static_configs"] for t in sc["targets"]] == ["netwatch:9555"]
    am_targets = [
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert am_targets == ["alertmanager:9093"]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_accepts_the_mounted_prometheus_config(tmp_path: Path) -> None:
    """``promtool check config`` on the config as mounted, with rule_files resolved in the
    container's layout, finds and accepts the shipped rule file."""
    assert PROMTOOL is not None
    service = compose()["services"]["prometheus"]
    mirror(service, tmp_path)
    config = tmp_path / config_flag(service).lstrip("/")
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(config)], capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rule_files = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))
    assert f"SUCCESS: {len(rule_files)} rule files found" in output


@pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (Debian package prometheus-alertmanager)")
def test_amtool_accepts_the_mounted_alertmanager_config(tmp_path: Path) -> None:
    """``amtool check-config`` on the config as mounted finds its templates beside it."""
    assert AMTOOL is not None
    service = compose()["services"]["alertmanager"]
    mirror(service, tmp_path)
    config = tmp_path / config_flag(service).lstrip("/")
    result = subprocess.run(
        [AMTOOL, "check-config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


def test_grafana_provisioning_points_inside_the_stack() -> None:
    """Grafana's dashboard providers read the mounted dashboards, and its Prometheus datasource is
    the compose service."""
    service = compose()["services"]["grafana"]
    mounts = {target: host for host, target in bind_mounts(service)}
    provisioning = mounts["/etc/grafana/provisioning"]
    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for provider in yaml.safe_load(path.read_text(encoding="utf-8")).get("providers", [])
    ]
    assert providers, "no dashboard provider"
    for provider in providers:
        assert provider["options"]["path"].startswith("/etc/grafana/dashboards"), provider
    assert list(mounts["/etc/grafana/dashboards"].glob("*.json"))
    datasources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.y*ml"))
        for source in yaml.safe_load(path.read_text(encoding="utf-8")).get("datasources", [])
        if source.get("type") == "prometheus"
    ]
    assert [s["url"] for s in datasources] == ["http://prometheus:9090"]
