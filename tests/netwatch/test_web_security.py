"""TLS and basic auth on the HTTP endpoint (``--web-config``, exporter-toolkit format), checked with
the clients operators use: aiohttp, curl and Prometheus itself scraping over https with basic auth."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry, Gauge

from netwatch.errors import ConfigError
from netwatch.web import WebServer
from netwatch.web.webconfig import BasicAuthGate, exposure_warning, load_web_config
from tests.support.processes import REPO, free_port, terminate

USER, PASSWORD = "prometheus", "scrape-Pa55-5c1e"
INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
defaults:
  collectors:
    icmp: {interval: 1, probes: 2, probe_spacing: 0.05, timeout: 0.3}
site_kinds: {datacenter: {}}
sites:
  - {code: DC, name: "Trung tâm dữ liệu tỉnh", kind: datacenter, links: [{device: core}]}
devices:
  - {name: core, site: DC, address: 127.0.9.1, role: switch}
"""


@dataclass(frozen=True)
class Pki:
    """A test CA, a server certificate for 127.0.0.1 it signed, and a client certificate it signed."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    cn: str,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netwatch test CA")])
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server, server_key = _issue(ca_key, ca_name, "netwatch", ExtendedKeyUsageOID.SERVER_AUTH, sans)
    client, client_key = _issue(ca_key, ca_name, "prometheus", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    pki = Pki(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server-key.pem",
        directory / "client.pem",
        directory / "client-key.pem",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, pki.key)
    _write_key(client_key, pki.client_key)
    return pki


def _toolkit_hash(password: str, cost: int = 10) -> str:
    """A hash as `htpasswd -nBC 10` writes it: bcrypt with the $2y$ prefix."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode().replace("$2b$", "$2y$", 1)


def _web_config(directory: Path, pki: Pki, extra: str = "") -> Path:
    path = directory / "web-config.yml"
    path.write_text(
        f"""\
tls_server_config:
  cert_file: {pki.cert}
  key_file: {pki.key}
  min_version: TLS12
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]
{extra}http_server_config:
  headers:
    X-Content-Type-Options: nosniff
    X-Frame-Options: deny
basic_auth_users:
  {USER}: {_toolkit_hash(PASSWORD)}
""",
        encoding="utf-8",
    )
    return path


@contextmanager
def _daemon(tmp_path: Path, web_config: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "netwatch", "run", "-c", str(config), "--db", f"sqlite:///{tmp_path}/nw.db",
         "--listen", f"127.0.0.1:{port}", "--web-config", str(web_config)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            terminate(proc, timeout=20)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _client_context(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca))


def _get(url: str, context: ssl.SSLContext, auth: tuple[str, str] | None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def _wait_ready(proc: subprocess.Popen[str], url: str, context: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"netwatch exited {proc.returncode}: {proc.communicate()[1]}")
        try:
            status, _, body = _get(url, context, (USER, PASSWORD))
            if status == 200 and "netwatch_up{" in body:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("netwatch did not serve metrics over https in time")


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def _aiohttp_checks(base: str, pki: Pki) -> None:
    tls = _client_context(pki)
    async with aiohttp.ClientSession() as session:
        for path in ("/metrics", "/", "/healthz", "/reports/availability?month=2026-01", "/no-such-page"):
            async with session.get(base + path, ssl=tls) as response:
                assert response.status == 401, path
                assert response.headers["WWW-Authenticate"] == 'Basic realm="netwatch"'
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        wrong = _basic(USER, "not-the-password")
        async with session.get(base + "/metrics", ssl=tls, headers=wrong) as response:
            assert response.status == 401
        async with session.get(base + "/metrics", ssl=tls, headers=_basic("mallory", PASSWORD)) as r:
            assert r.status == 401
        right = _basic(USER, PASSWORD)
        async with session.get(base + "/metrics", ssl=tls, headers=right) as response:
            assert response.status == 200
            assert 'netwatch_up{collector="icmp"' in await response.text()
            assert response.headers["X-Frame-Options"] == "deny"
        async with session.get(base + "/healthz", ssl=tls, headers=right) as response:
            assert response.status == 200 and (await response.json())["ok"] is True
        # Without trusting the CA the handshake fails: the certificate is checked, not waved through.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(base + "/metrics", headers=right)
        # Plain HTTP to the TLS port gets no HTTP answer at all.
        with pytest.raises(aiohttp.ClientError):
            async with session.get(base.replace("https://", "http://") + "/metrics", headers=right) as r:
                await r.read()


def _curl(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\\n%{http_code}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout


@contextmanager
def _prometheus(tmp_path: Path, target: str, pki: Pki, password_file: Path) -> Iterator[int]:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password", encoding="utf-8")
    jobs = []
    for job, secret in (("netwatch", password_file), ("netwatch-wrong-password", wrong)):
        jobs.append(
            f"""  - job_name: {job}
    scrape_interval: 1s
    scrape_timeout: 900ms
    scheme: https
    tls_config: {{ca_file: {pki.ca}}}
    basic_auth: {{username: {USER}, password_file: {secret}}}
    static_configs: [{{targets: ["{target}"]}}]
"""
        )
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s}\nscrape_configs:\n" + "".join(jobs), encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield port
    finally:
        terminate(proc, timeout=20)


def _up(prometheus_port: int) -> dict[str, str]:
    query = urllib.parse.urlencode({"query": "up"})
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{prometheus_port}/api/v1/query?{query}", timeout=2
        ) as r:
            data = json.loads(r.read())
    except OSError:
        return {}
    return {item["metric"]["job"]: item["value"][1] for item in data["data"]["result"]}


@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP needs root (CI runs as root)")
def test_daemon_serves_https_with_basic_auth_to_aiohttp_curl_and_prometheus(tmp_path: Path, pki: Pki) -> None:
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    with _daemon(tmp_path, _web_config(tmp_path, pki), port) as proc:
        _wait_ready(proc, base + "/metrics", _client_context(pki))
        asyncio.run(_aiohttp_checks(base, pki))
        if shutil.which("curl"):
            code, out = _curl("--cacert", str(pki.ca), "-u", f"{USER}:{PASSWORD}", base + "/metrics")
            assert code == 0 and out.endswith("\n200") and "netwatch_up{" in out
            code, out = _curl("--cacert", str(pki.ca), "-u", f"{USER}:wrong", base + "/metrics")
            assert code == 0 and out.endswith("\n401")
            code, out = _curl("--cacert", str(pki.ca), base + "/healthz")
            assert code == 0 and out.endswith("\n401")
            assert _curl("-u", f"{USER}:{PASSWORD}", base + "/metrics")[0] == 60  # unknown CA
            code, out = _curl("-u", f"{USER}:{PASSWORD}", f"http://127.0.0.1:{port}/metrics")
            assert code != 0 and "netwatch_up" not in out
        if shutil.which("prometheus"):
            password_file = tmp_path / "password"
            password_file.write_text(PASSWORD, encoding="utf-8")
            with _prometheus(tmp_path, f"127.0.0.1:{port}", pki, password_file) as prometheus_port:
                deadline = time.monotonic() + 60
                up = _up(prometheus_port)
                while len(up) < 2 and time.monotonic() < deadline:
                    time.sleep(0.5)
                    up = _up(prometheus_port)
                while up.get("netwatch") != "1" and time.monotonic() < deadline:
                    time.sleep(0.5)
                    up = _up(prometheus_port)
            assert up == {"netwatch": "1", "netwatch-wrong-password": "0"}
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "beyond this machine" not in err  # loopback: no exposure warning
    assert PASSWORD not in err


@pytest.mark.parametrize(
    ("extra", "users", "expected"),
    [
        (
            "  client_auth: RequireAndVerifyClientCert\n",
            None,
            "web-config.yml:6: tls_server_config.client_auth: unknown key",
        ),
        (
            "  client_ca_file: /nonexistent/ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
            None,
            "web-config.yml:6: tls_server_config.client_ca_file: cannot read /nonexistent/ca.pem: no such file",
        ),
        ("", "$2y$10$tooshort", "web-config.yml:11: basic_auth_users.prometheus: not a bcrypt hash"),
    ],
    ids=["unknown-key", "unreadable-ca", "bad-hash"],
)
def test_bad_web_config_stops_start_up_with_exit_2(
    tmp_path: Path, pki: Pki, extra: str, users: str | None, expected: str
) -> None:
    web_config = _web_config(tmp_path, pki, extra)
    if users is not None:
        text = web_config.read_text(encoding="utf-8")
        web_config.write_text(text.split("basic_auth_users:")[0] + f"basic_auth_users:\n  {USER}: {users}\n")
    port = free_port()
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "netwatch", "run", "-c", str(config), "--db", f"sqlite:///{tmp_path}/nw.db",
         "--listen", f"127.0.0.1:{port}", "--web-config", str(web_config)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path}/{expected}"), lines
    assert not (tmp_path / "nw.db").exists()  # failed before touching the database


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("basic_auth_users: {alice: secret-in-clear}\n", "1: basic_auth_users.alice: not a bcrypt hash"),
        ("http_server_config: {http2: true}\n", "1: http_server_config.http2: netwatch serves HTTP/1.1 only"),
        ("rate_limit: {interval: 1s, burst: 20}\n", "1: rate_limit: not supported by netwatch"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: RequireAnyClientCert\n",
         "4: tls_server_config.client_auth_type: RequireAnyClientCert accepts unverified"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
         "4: tls_server_config.cipher_suites: TLS_AES_128_GCM_SHA256 is a TLS 1.3 suite"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
         "4: tls_server_config.cipher_suites: unknown or insecure suite"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  min_version: TLS13\n  max_version: TLS12\n",
         "1: tls_server_config: min_version is above max_version"),
        ("tls_server_config:\n  cert_file: {cert}\n  key_file: {cert}\n",
         "2: tls_server_config.cert_file: cannot load certificate and key"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
         "3: http_server_config.headers.X-Frame-Options: Input should be 'deny' or 'sameorigin'"),
        ("tls_server_config:\n  curve_preferences: [X25519]\n  cert_file: {cert}\n  key_file: {key}\n",
         "2: tls_server_config.curve_preferences: Python's ssl module cannot set a list of curves"),
    ],
)  # fmt: skip
def test_web_config_refuses_what_it_cannot_honour(tmp_path: Path, pki: Pki, body: str, expected: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(body.replace("{cert}", str(pki.cert)).replace("{key}", str(pki.key)), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    assert len(caught.value.issues) == 1 and str(caught.value.issues[0]).startswith(f"{path}:{expected}")
    assert "secret-in-clear" not in str(caught.value)


async def test_client_certificates_are_verified_when_required(tmp_path: Path, pki: Pki) -> None:
    path = tmp_path / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n",
        encoding="utf-8",
    )
    registry = CollectorRegistry()
    Gauge("netwatch_test_gauge", "A gauge to scrape.", registry=registry).set(1)
    server = WebServer(
        registry, lambda: {"ok": True}, "127.0.0.1", free_port(), security=load_web_config(path)
    )
    await server.start()
    try:
        url = f"https://127.0.0.1:{server.port}/metrics"
        with_cert = _client_context(pki)
        with_cert.load_cert_chain(pki.client_cert, pki.client_key)
        async with aiohttp.ClientSession() as session:
            async with session.get(url, ssl=with_cert) as response:
                assert response.status == 200 and "netwatch_test_gauge 1.0" in await response.text()
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url, ssl=_client_context(pki)) as response:
                    await response.read()
    finally:
        await server.stop()


async def test_verified_credentials_are_cached_so_scrapes_skip_bcrypt() -> None:
    gate = BasicAuthGate({USER: _toolkit_hash(PASSWORD, cost=4).encode()})
    good = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    bad = "Basic " + base64.b64encode(f"{USER}:nope".encode()).decode()
    assert [await gate.allowed(good) for _ in range(5)] == [True] * 5
    assert gate.bcrypt_checks == 1
    assert not await gate.allowed(bad)
    assert not await gate.allowed("Basic !!!not-base64")
    assert not await gate.allowed("Bearer abc")
    assert not await gate.allowed(None)
    assert gate.bcrypt_checks == 2


def test_exposure_warning_only_off_loopback_without_tls_and_auth(tmp_path: Path, pki: Pki) -> None:
    secured = load_web_config(_web_config(tmp_path, pki))
    assert exposure_warning("127.0.0.1", None) is None
    assert exposure_warning("::1", None) is None
    assert exposure_warning("localhost", None) is None
    warning = exposure_warning("0.0.0.0", None)
    assert warning is not None and "without TLS and basic auth" in warning
    assert exposure_warning("192.0.2.10", secured) is None
