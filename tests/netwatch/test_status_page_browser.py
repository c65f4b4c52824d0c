"""The status page in a real browser: headless Chromium (Debian's, driven by Selenium through
Debian's chromedriver) renders ``/`` of a running ``netwatch run`` whose loopback inventory has one
district cut off by a firewall rule, and the page a person sees matches what /metrics says.

Checked on the rendered page: every site's state equals its ``netwatch_site_state``, the summary
counts add up, the down district is listed as an open outage with a duration, this month's
availability is shown (100 % where nothing failed, below it for the down district), Vietnamese
names are intact, there is no script and no external asset, the page refreshes itself, and its
monthly export links answer (CSV as UTF-8 with a BOM). The raw HTML must parse with html5lib in
strict mode. A screenshot is saved under $NETWATCH_TEST_ARTIFACTS (default: the test's tmp dir).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import html5lib
import pytest

from tests.support.processes import free_port, http_get, netwatch_process, samples, scrape

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
NFT = shutil.which("nft")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP and nftables need root (CI runs as root)"),
    pytest.mark.skipif(
        not (CHROMEDRIVER.exists() and CHROMIUM.exists()),
        reason="Debian packages chromium and chromium-driver not installed",
    ),
    pytest.mark.skipif(NFT is None, reason="nft not installed (Debian package nftables)"),
]

# Đại Lộc's router and its commune's switch are cut off by an nftables rule: Đại Lộc goes DOWN and
# its commune UNREACHABLE behind it; the rest of the province stays UP.
INVENTORY = """\
province: {code: QNM, name: "Quảng Nam"}
defaults:
  down_after: 2
  collectors:
    icmp: {interval: 1, probes: 2, probe_spacing: 0.05, timeout: 0.3}
site_kinds: {province: {}, district: {}, commune: {}}
sites:
  - {code: TU, name: "Tỉnh ủy Quảng Nam", kind: province, links: [{device: core}]}
  - {code: TK, name: "Thành ủy Tam Kỳ", kind: district, parent: TU, links: [{device: tk-router}]}
  - {code: TK-C01, name: "Phường An Mỹ", kind: commune, parent: TK, links: [{device: tk-c01}]}
  - {code: DL, name: "Huyện ủy Đại Lộc", kind: district, parent: TU, links: [{device: dl-router}]}
  - {code: DL-C01, name: "Xã Đại Hiệp", kind: commune, parent: DL, links: [{device: dl-c01}]}
devices:
  - {name: core, site: TU, address: 127.0.6.1, role: switch}
  - {name: tk-router, site: TK, address: 127.0.6.2, role: router, upstream: core}
  - {name: tk-c01, site: TK-C01, address: 127.0.6.3, role: switch, upstream: tk-router}
  - {name: dl-router, site: DL, address: 127.0.6.4, role: router, upstream: core}
  - {name: dl-c01, site: DL-C01, address: 127.0.6.5, role: switch, upstream: dl-router}
"""
CUT_OFF = ("127.0.6.4", "127.0.6.5")
EXPECTED = {"TU": "up", "TK": "up", "TK-C01": "up", "DL": "down", "DL-C01": "unreachable"}
NFT_TABLE = "netwatch_test_status_browser"


@pytest.fixture
def cut_off_dai_loc() -> Iterator[None]:
    """Drop echo requests to Đại Lộc's devices (loopback addresses) until the test ends."""
    assert NFT is not None
    rules = (
        f"table inet {NFT_TABLE} {{\n chain output {{\n"
        "  type filter hook output priority 0; policy accept;\n"
        f"  ip daddr {{ {', '.join(CUT_OFF)} }} icmp type echo-request drop\n }}\n}}\n"
    )
    subprocess.run([NFT, "-f", "-"], input=rules, text=True, check=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run([NFT, "delete", "table", "inet", NFT_TABLE], check=True, timeout=30)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Headless Chromium through Debian's chromedriver; Selenium Manager never downloads anything."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_states(port: int, timeout: float = 30.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics once every site shows its EXPECTED state (bounded in time)."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = scrape(port)
        if site_states(metrics) == EXPECTED:
            return metrics
        assert time.monotonic() < deadline, f"states never settled: {site_states(metrics)}"
        time.sleep(0.3)


def site_states(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, str]:
    """site → the state whose ``netwatch_site_state`` is 1."""
    return {
        dict(labels)["site"]: dict(labels)["state"]
        for (name, labels), value in metrics.items()
        if name == "netwatch_site_state" and value == 1.0
    }


def csv_availability(base: str) -> dict[str, str]:
    """site → "Availability (%)" of this month's English CSV export ("" where not judged)."""
    month = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m")
    _, _, body = fetch(f"{base}reports/availability?month={month}&format=csv&lang=en")
    rows = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    return {row["Site"]: row["Availability (%)"] for row in rows}


def wait_for_availability(base: str, timeout: float = 30.0) -> dict[str, str]:
    """The CSV export's availability once it has a figure for every site and counts the down
    district's outage (bounded in time)."""
    deadline = time.monotonic() + timeout
    while True:
        figures = csv_availability(base)
        # The down district's outage reaches the database a writer batch after the state changes.
        if set(figures) == set(EXPECTED) and all(figures.values()) and float(figures["DL"]) < 100:
            return figures
        assert time.monotonic() < deadline, f"availability never computed: {figures}"
        time.sleep(0.5)


def artifacts_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $NETWATCH_TEST_ARTIFACTS, else the test's tmp dir."""
    path = Path(os.environ.get("NETWATCH_TEST_ARTIFACTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def percent(text: str) -> float | None:
    """``99.50 %`` → 99.5; ``—`` → None."""
    match = re.fullmatch(r"([\d.]+) %", text.strip())
    return float(match.group(1)) if match else None


def test_status_page_in_chromium_matches_metrics(
    tmp_path: Path, cut_off_dai_loc: None, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    config = tmp_path / "inventory.yaml"
    config.write_text(INVENTORY, encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    args = (
        "run",
        "-c",
        str(config),
        "--db",
        f"sqlite:///{tmp_path / 'nw.db'}",
        "--listen",
        f"127.0.0.1:{port}",
    )
    with netwatch_process(*args, port=port, cwd=tmp_path):
        before = wait_for_states(port)
        # The page caches the month's availability for a minute: load it once the database can
        # judge every site, as the CSV export shows.
        exported = wait_for_availability(base)
        browser.get(base)
        body_text = browser.find_element(By.TAG_NAME, "body").text
        rows = {
            code: browser.find_element(By.ID, f"site-{code}").find_elements(By.TAG_NAME, "td")
            for code in EXPECTED
        }
        shown = {
            code: (cells[2].find_element(By.CSS_SELECTOR, ".st").get_attribute("class") or "").split()
            for code, cells in rows.items()
        }
        availability = {code: percent(cells[6].text) for code, cells in rows.items()}
        outage_rows = [
            [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in browser.find_elements(By.CSS_SELECTOR, "table.outages tr")
        ][1:]
        summary = browser.find_element(By.CSS_SELECTOR, "p.summary").text
        refs = [
            (element.tag_name, attr, element.get_attribute(attr) or "")
            for attr in ("src", "href")
            for element in browser.find_elements(By.CSS_SELECTOR, f"[{attr}]")
        ]
        scripts = browser.find_elements(By.TAG_NAME, "script")
        refresh = [
            m.get_attribute("content") or ""
            for m in browser.find_elements(By.CSS_SELECTOR, "meta[http-equiv]")
            if (m.get_attribute("http-equiv") or "").lower() == "refresh"
        ]
        screenshot = artifacts_dir(tmp_path) / "status-page.png"
        assert browser.save_screenshot(str(screenshot))
        print(f"status page screenshot: {screenshot}")
        after = scrape(port)
        status, raw_html = http_get(base)
        export_links = [href for tag, _, href in refs if tag == "a" and "/reports/availability" in href]
        exports = {href: fetch(href) for href in export_links}
        # The browser follows one export as a person would click it.
        html_export = next(h for h in export_links if "format=html" in h and "lang=vi" in h)
        browser.get(html_export)
        export_text = browser.find_element(By.TAG_NAME, "body").text

    # What the browser shows is what Prometheus scrapes.
    assert site_states(after) == site_states(before) == EXPECTED, "states moved while the page loaded"
    assert {code: f"st-{state}" in shown[code] for code, state in EXPECTED.items()} == dict.fromkeys(
        EXPECTED, True
    ), shown
    assert f"{len(EXPECTED)} điểm" in summary
    for state in set(EXPECTED.values()):
        count = sum(1 for s in EXPECTED.values() if s == state)
        assert re.search(rf"\b{state}\s+{count}\b", summary), (state, summary)
    # The open outage of Đại Lộc, with how long it has lasted; its commune unreachable behind it.
    by_code = {row[1]: row for row in outage_rows}
    assert set(by_code) == {"DL", "DL-C01"}, outage_rows
    assert by_code["DL"][2] == "Huyện ủy Đại Lộc"
    assert re.fullmatch(r"< 1 phút|\d+ phút", by_code["DL"][5]), by_code["DL"]
    # This month's availability: 100 % where nothing failed, less for the district that is down.
    for code in ("TU", "TK", "TK-C01"):
        assert availability[code] == 100.0, availability
        assert float(exported[code]) == 100.0, exported
        metric = samples(after, "netwatch_site_availability_ratio", site=code, period="month")
        assert metric in ([], [1.0]), metric
    assert availability["DL"] is not None and availability["DL"] < 100.0, availability
    # the page, computed later, shows no more (it rounds to 0.01 %, the export to 0.0001 %)
    assert availability["DL"] <= float(exported["DL"]) + 0.005, (availability["DL"], exported["DL"])
    # Vietnamese intact as the browser renders it (UTF-8 end to end).
    for text in ("Quảng Nam", "Huyện ủy Đại Lộc", "Xã Đại Hiệp", "Thành ủy Tam Kỳ", "Mất kết nối"):
        assert text in body_text, text
    # Self-contained: no scripts, nothing fetched from another origin, refreshes itself.
    assert scripts == []
    assert refs and [r for r in refs if urlsplit(r[2]).netloc not in ("", f"127.0.0.1:{port}")] == []
    assert len(refresh) == 1 and int(refresh[0].split(";")[0]) > 0
    # Valid HTML as served (strict html5lib raises on the first parse error).
    assert status == 200
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    try:
        parser.parse(raw_html)
    except html5lib.html5parser.ParseError as exc:
        (line, col), *_ = parser.errors[-1]
        pytest.fail(
            f"invalid HTML at {line}:{col}: {exc}: {raw_html.splitlines()[line - 1][col - 40 : col + 40]!r}"
        )
    # The monthly export links: this month's and last month's, each in every format and language.
    months = {parse_qs(urlsplit(h).query)["month"][0] for h in export_links}
    assert len(months) == 2 and len(export_links) == 2 * 2 * 3
    for href, (http_status, content_type, body) in exports.items():
        assert http_status == 200, href
        fmt = parse_qs(urlsplit(href).query)["format"][0]
        if fmt == "csv":
            assert content_type.startswith("text/csv"), content_type
            assert body.startswith(b"\xef\xbb\xbf") or "charset=utf-8" in content_type.lower()
            assert "Huyện ủy Đại Lộc" in body.decode("utf-8-sig"), href
        elif fmt == "xlsx":
            assert body[:2] == b"PK", href
    assert "Huyện ủy Đại Lộc" in export_text


def fetch(url: str) -> tuple[int, str, bytes]:
    """Status, Content-Type and body of a GET of a same-origin link."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()
