"""Secrets never leak: one daemon run with distinctive secrets in every place a secret can stand, then
a search for each secret (and its base64 and hex forms) in everything netwatch writes or serves."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import bcrypt
import pytest

from netwatch.config import check_inventory, load_inventory
from netwatch.config.snmp import snmp_credentials
from netwatch.errors import ConfigError
from tests.support.processes import REPO, free_port
from tests.support.receivers import smtp_server
from tests.support.snmpd import V3User, running_snmpd

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP and nftables need root (CI runs as root)")

COMMUNITY = "S3cr3t-Comm-7f1a"
WRONG_COMMUNITY = "Wr0ng-Comm-7f1a"
AUTH_KEY = "Auth-K3y-7f1a-b2c3"
PRIV_KEY = "Priv-K3y-7f1a-d4e5"
WEB_USER, WEB_PASSWORD = "noc", "B4sic-Pa55-7f1a"
SNMP_USER = "nw-secret-user"
DOWN_ADDRESS = "127.0.77.9"
"""A loopback address whose echo requests an nftables rule drops, so its site goes DOWN and mails."""
NFT_TABLE = "netwatch_secrets_test"


def encodings(secret: str) -> set[str]:
    raw = secret.encode()
    return {secret, raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode()}


def secret_forms(smtp_user: str, smtp_password: str) -> dict[str, str]:
    """Every form a leak could take, mapped to the secret it gives away."""
    forms: dict[str, str] = {}
    for secret in (COMMUNITY, WRONG_COMMUNITY, AUTH_KEY, PRIV_KEY, WEB_PASSWORD, smtp_password):
        forms.update(dict.fromkeys(encodings(secret), secret))
    forms[base64.b64encode(f"{WEB_USER}:{WEB_PASSWORD}".encode()).decode()] = "basic auth user:pass"
    forms[base64.b64encode(f"\0{smtp_user}\0{smtp_password}".encode()).decode()] = "SMTP AUTH PLAIN"
    return forms


def leaks(where: str, data: bytes | str, forms: dict[str, str]) -> list[str]:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    raw = data if isinstance(data, bytes) else data.encode()
    return [
        f"{where}: {secret!r} as {form!r}"
        for form, secret in forms.items()
        if form in text or form.encode() in raw
    ]


def inventory_text(agents: dict[str, int], mail: object, extra: str = "") -> str:
    return f"""\
province: {{code: QNM, name: "Quảng Nam"}}
defaults:
  down_after: 2
  collectors:
    icmp: {{interval: 1, probes: 2, probe_spacing: 0.05, timeout: 0.3}}
site_kinds: {{district: {{}}, commune: {{}}}}
sites:
  - {{code: TK, name: "Thành ủy Tam Kỳ", kind: district, links: [{{device: v2c-box}}]}}
  - {{code: TK-C01, name: "Đảng ủy phường An Mỹ", kind: commune, parent: TK, links: [{{device: gone}}]}}
devices:
  - name: v2c-box
    site: TK
    address: 127.0.0.1
    collectors: {{icmp: {{}}, snmp: {{credential: v2c, port: {agents["v2c"]}, interval: 1, timeout: 0.5, retries: 0}}}}
  - name: v3-box
    site: TK
    address: 127.0.0.1
    port: {agents["v3"]}
    collectors: {{snmp: {{credential: v3, port: {agents["v3"]}, interval: 1, timeout: 0.5, retries: 0}}}}
  - name: wrong-box
    site: TK
    address: 127.0.0.1
    port: {agents["wrong"]}
    collectors: {{snmp: {{credential: wrong, port: {agents["wrong"]}, interval: 1, timeout: 0.3, retries: 0}}}}
  - {{name: gone, site: TK-C01, address: {DOWN_ADDRESS}}}
credentials:
  v2c: {{version: 2c, community: "{COMMUNITY}"}}
  wrong: {{version: 2c, community: "{WRONG_COMMUNITY}"}}
  v3:
    version: 3
    username: {SNMP_USER}
    auth_protocol: SHA
    auth_key: "{AUTH_KEY}"
    priv_protocol: AES
    priv_key: "{PRIV_KEY}"{extra}
alerting:
  retry: {{attempts: 2, initial_backoff: 0.5, max_backoff: 1}}
  channels:
    mail:
      type: email
      host: 127.0.0.1
      port: {mail.port}
      starttls: true
      ca_file: "{mail.ca_file}"
      username: "{mail.username}"
      password: "{mail.password}"
      from: "netwatch <netwatch@qnm.example>"
      to: ["noc@qnm.example"]
      timeout: 10
"""  # type: ignore[attr-defined]


@contextmanager
def icmp_dropped(address: str) -> Iterator[None]:
    subprocess.run(
        ["nft", "-f", "-"],
        input=f"table ip {NFT_TABLE} {{\n chain out {{\n  type filter hook output priority 0;\n"
        f"  ip daddr {address} icmp type echo-request drop\n }}\n}}\n",
        text=True,
        check=True,
    )
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], check=False)


def netwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netwatch", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def fetch(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    token = base64.b64encode(f"{WEB_USER}:{WEB_PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_no_secret_leaks_anywhere(tmp_path: Path) -> None:
    users = [V3User(SNMP_USER, "SHA", AUTH_KEY, "AES", PRIV_KEY)]
    with ExitStack() as stack:
        v2c = stack.enter_context(running_snmpd(community=COMMUNITY, users=users))
        v3 = stack.enter_context(running_snmpd(community=COMMUNITY, users=users))
        wrong = stack.enter_context(running_snmpd(community=COMMUNITY, users=users))
        mail = stack.enter_context(smtp_server(tmp_path))
        forms = secret_forms(mail.username, mail.password)
        agents = {"v2c": v2c.port, "v3": v3.port, "wrong": wrong.port}
        config = tmp_path / "inventory.yaml"
        config.write_text(inventory_text(agents, mail), encoding="utf-8")
        bad = tmp_path / "bad.yaml"
        bad.write_text(inventory_text(agents, mail, "\n    priv_protocol_typo: AES"), encoding="utf-8")
        web_config = tmp_path / "web.yml"
        hashed = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        web_config.write_text(f"basic_auth_users:\n  {WEB_USER}: {hashed}\n", encoding="utf-8")
        db = tmp_path / "nw.db"
        found: list[str] = []

        for args in (("check", str(config)), ("check", str(bad))):
            done = netwatch(*args, cwd=tmp_path)
            found += leaks(f"netwatch {' '.join(args)}", done.stdout + done.stderr, forms)
        assert "priv_protocol_typo" in netwatch("check", str(bad), cwd=tmp_path).stderr

        # Exception messages and reprs, in process.
        try:
            load_inventory(bad)
        except ConfigError as exc:
            found += leaks("ConfigError", str(exc) + repr(exc.issues), forms)
        inventory = load_inventory(config)
        found += leaks("Inventory repr", repr(inventory), forms)
        found += leaks("SnmpCredentials repr", repr(snmp_credentials(inventory.credentials)), forms)
        found += leaks("check_inventory", repr(check_inventory(bad)), forms)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        stack.enter_context(icmp_dropped(DOWN_ADDRESS))
        proc = subprocess.Popen(
            [sys.executable, "-m", "netwatch", "--log-level", "debug", "run", "-c", str(config),
             "--db", f"sqlite:///{db}", "--listen", f"127.0.0.1:{port}", "--web-config", str(web_config)],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            metrics = ""
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.5)
                try:
                    status, body = fetch(base + "/metrics")
                except OSError:
                    continue
                metrics = body.decode()
                polled = 'netwatch_up{collector="snmp",device="v3-box"' in metrics
                failed = 'reason="timeout"' in metrics or "netwatch_poll_errors_total{" in metrics
                if polled and failed and mail.matching("NetwatchSiteDown", "TK-C01"):
                    break
            assert mail.matching("NetwatchSiteDown", "TK-C01"), "no alert mail in time"
            assert re.search(r'netwatch_up\{collector="snmp",device="v3-box"[^}]*\} 1\.0', metrics)
            assert re.search(r'netwatch_up\{collector="snmp",device="wrong-box"[^}]*\} 0\.0', metrics)
            found += leaks("/metrics", metrics, forms)
            for path in ("/healthz", "/", "/no-such-page"):
                found += leaks(path, fetch(base + path)[1], forms)
            month = time.strftime("%Y-%m")
            for fmt in ("csv", "html", "xlsx"):
                status, body = fetch(f"{base}/reports/availability?month={month}&format={fmt}")
                assert status == 200, body[:200]
                if fmt == "xlsx":
                    with zipfile.ZipFile(io.BytesIO(body)) as book:
                        body = b"".join(book.read(name) for name in book.namelist())
                found += leaks(f"/reports/availability {fmt}", body, forms)
            for mail_item in mail.mails:
                found += leaks("alert mail", mail_item.message.as_bytes(), forms)
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-2000:]
        assert "DEBUG" in err  # the log really was at debug level
        found += leaks("daemon stdout", out, forms)
        found += leaks("daemon stderr", err, forms)
        for args in (("status",), ("outages",)):
            done = netwatch(*args, "--db", f"sqlite:///{db}", cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            found += leaks(f"netwatch {args[0]}", done.stdout + done.stderr, forms)
        assert "TK-C01" in netwatch("outages", "--db", f"sqlite:///{db}", cwd=tmp_path).stdout
        stored = [
            f
            for f in tmp_path.rglob("*")
            if f.is_file() and f.relative_to(tmp_path).parts[0].startswith("nw.db")
        ]
        assert db in stored
        for file in stored:  # the database, its WAL and any spool of rows not yet written
            found += leaks(file.name, file.read_bytes(), forms)
    assert found == []
