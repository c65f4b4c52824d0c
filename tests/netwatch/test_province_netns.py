"""The outage engine and alerting end to end: `netwatch run` as a subprocess polling a real
hub → district → communes network in namespaces, with a real webhook receiver and SMTP server.

What an operator relies on: a district link that fails is ONE page naming the communes cut off
behind it, never a page per commune and never a commune reported DOWN; it is detected within the
rounds rule; the ledger says who was down and who was only unreachable; random loss never pages;
a flapping link does not page on every toggle; a restart during an outage keeps one outage.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.netns import NetnsUnavailable
from tests.support.processes import free_port, netwatch_process, samples, scrape, stop
from tests.support.province import Province, province_network
from tests.support.receivers import SmtpServer, WebhookReceiver, smtp_server, webhook_receiver

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HUB, DISTRICT = "HUB", "TK"
COMMUNES = ("TK-C01", "TK-C02")
SITES = (HUB, DISTRICT, *COMMUNES)
DOWN_AFTER = 3
SCRAPE_EVERY = 0.2
DOWN = "NetwatchSiteDown"


@dataclass(frozen=True)
class Rounds:
    """The ICMP round settings of one test."""

    interval: float = 1.0
    probes: int = 3
    spacing: float = 0.1
    timeout: float = 0.5

    @property
    def detection_bound(self) -> float:
        """Link down → DOWN at the latest: a round to start, ``down_after`` failed rounds, 1 s slack."""
        return (DOWN_AFTER + 1) * self.interval + 1.0


def inventory(province: Province, hook: WebhookReceiver, mail: SmtpServer, rounds: Rounds) -> str:
    """The province's inventory: hub, district TK behind tk-router, two communes behind it."""
    c1, c2 = province.commune_addresses
    return f"""\
province: {{code: QNM, name: "Quảng Nam"}}
defaults:
  down_after: {DOWN_AFTER}
  up_after: 1
  degraded_loss_ratio: 0.2
  collectors:
    icmp: {{interval: {rounds.interval}, probes: {rounds.probes}, probe_spacing: {rounds.spacing}, timeout: {rounds.timeout}}}
site_kinds:
  province: {{}}
  district: {{}}
  commune: {{}}
sites:
  - {{code: {HUB}, name: "Tỉnh ủy Quảng Nam", kind: province, links: [{{device: hub-core}}]}}
  - {{code: TK, name: "Thành ủy Tam Kỳ", kind: district, parent: {HUB}, links: [{{device: tk-router}}]}}
  - {{code: TK-C01, name: "Đảng ủy phường An Mỹ", kind: commune, parent: TK, links: [{{device: c01-router}}]}}
  - {{code: TK-C02, name: "Đảng ủy xã Tam Thanh", kind: commune, parent: TK, links: [{{device: c02-router}}]}}
devices:
  - {{name: hub-core, site: {HUB}, address: 127.0.0.1, role: switch}}
  - {{name: tk-router, site: TK, address: {province.district_address}, role: router, upstream: hub-core}}
  - {{name: c01-router, site: TK-C01, address: {c1}, role: router, upstream: tk-router}}
  - {{name: c02-router, site: TK-C02, address: {c2}, role: router, upstream: tk-router}}
alerting:
  language: vi
  retry: {{attempts: 3, initial_backoff: 0.5, max_backoff: 1}}
  channels:
    noc-hook: {{type: webhook, url: "{hook.url}", timeout: 5}}
    noc-mail:
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
"""


@dataclass(frozen=True)
class Snapshot:
    """One scrape: when (monotonic), each site's state and flapping flag, tk-router's rounds so far."""

    at: float
    states: dict[str, str]
    flapping: dict[str, bool]
    tk_probes_sent: float


@dataclass
class Timeline:
    """Every scrape of one netwatch, in order, so a test can say what was NEVER seen."""

    port: int
    snapshots: list[Snapshot] = field(default_factory=list)

    def take(self) -> Snapshot:
        """Scrape once and remember it."""
        metrics = scrape(self.port)
        states = {
            dict(labels)["site"]: dict(labels)["state"]
            for (name, labels), value in metrics.items()
            if name == "netwatch_site_state" and value == 1
        }
        flapping = {
            dict(labels)["site"]: value == 1
            for (name, labels), value in metrics.items()
            if name == "netwatch_site_flapping"
        }
        sent = samples(metrics, "netwatch_icmp_packets_sent_total", device="tk-router")
        snap = Snapshot(time.monotonic(), states, flapping, sent[0] if sent else 0.0)
        self.snapshots.append(snap)
        return snap

    def wait(self, predicate: Callable[[Snapshot], bool], within: float, what: str) -> Snapshot:
        """Scrape every SCRAPE_EVERY until ``predicate`` holds; fail after ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            snap = self.take()
            if predicate(snap):
                return snap
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {within:g} s; last states: {snap.states}")
            time.sleep(SCRAPE_EVERY)

    def watch(self, seconds: float) -> None:
        """Keep scraping for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.take()
            time.sleep(SCRAPE_EVERY)

    def seen(self, site: str, state: str) -> int:
        """In how many scrapes ``site`` was in ``state``."""
        return sum(1 for s in self.snapshots if s.states.get(site) == state)


def all_up(snap: Snapshot) -> bool:
    """Every site UP."""
    return all(snap.states.get(site) == "up" for site in SITES)


def district_cut_off(snap: Snapshot) -> bool:
    """TK DOWN and its communes UNREACHABLE."""
    return snap.states.get(DISTRICT) == "down" and all(snap.states.get(c) == "unreachable" for c in COMMUNES)


def wait_until(predicate: Callable[[], object], within: float, what: str) -> None:
    """Poll ``predicate`` every 0.1 s; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {within:g} s")
        time.sleep(0.1)


def ledger(db: Path) -> list[sqlite3.Row]:
    """The outage ledger, oldest first."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(
            "select id, site, state, cause, started_at, ended_at from outages order by id"
        ).fetchall()


def utc(text: str) -> datetime:
    """A timestamp as SQLite holds it, UTC-aware."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@pytest.fixture
def province() -> Iterator[Province]:
    try:
        with province_network(communes=len(COMMUNES)) as network:
            yield network
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable here: {exc}")


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def mail(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path) as server:
        yield server


@dataclass
class Setup:
    """What a test needs to start netwatch on the province: config, database, receivers."""

    tmp_path: Path
    province: Province
    hook: WebhookReceiver
    mail: SmtpServer
    config: Path = field(init=False)
    db: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config = self.tmp_path / "inventory.yaml"
        self.db = self.tmp_path / "netwatch.db"

    def write(self, rounds: Rounds) -> None:
        """Write the inventory for these round settings."""
        self.config.write_text(inventory(self.province, self.hook, self.mail, rounds), encoding="utf-8")

    @contextmanager
    def netwatch(self) -> Iterator[tuple[subprocess.Popen[str], Timeline]]:
        """`netwatch run` on this config and database, and a timeline of its /metrics."""
        port = free_port()
        args = (
            "run",
            "-c",
            str(self.config),
            "--db",
            f"sqlite:///{self.db}",
            "--listen",
            f"127.0.0.1:{port}",
        )
        with netwatch_process(*args, port=port, cwd=self.tmp_path) as proc:
            yield proc, Timeline(port)


@pytest.fixture
def setup(tmp_path: Path, province: Province, hook: WebhookReceiver, mail: SmtpServer) -> Setup:
    return Setup(tmp_path, province, hook, mail)


@pytest.mark.parametrize("silent", [True, False], ids=["far-end-silent", "hub-end-no-route"])
def test_district_down_is_one_outage_one_page_and_its_communes_are_unreachable(
    setup: Setup, silent: bool
) -> None:
    rounds = Rounds()
    setup.write(rounds)
    hook, mail = setup.hook, setup.mail
    with setup.netwatch() as (proc, timeline):
        timeline.wait(all_up, 20, "all sites up")
        assert hook.posts == [] and mail.mails == []

        cut_at = time.monotonic()
        setup.province.link_down(silent=silent)
        down = timeline.wait(district_cut_off, rounds.detection_bound + 3, "TK down, communes unreachable")
        first_tk_down = next(s.at for s in timeline.snapshots if s.states.get(DISTRICT) == "down")
        wait_until(lambda: hook.matching(status="firing") and mail.mails, 10, "the page delivered")
        timeline.watch(3)  # anything more would be a second page or a commune turning DOWN
        metrics_delay = first_tk_down - cut_at
        hook_delay = hook.posts[0].at - cut_at
        print(
            f"\n{'silent' if silent else 'no route'}: detection delay: link down → TK down in /metrics {metrics_delay * 1000:.0f} ms,"
            f" → webhook {hook_delay * 1000:.0f} ms, → mail {(mail.mails[0].at - cut_at) * 1000:.0f} ms"
            f" (bound {rounds.detection_bound * 1000:.0f} ms)"
        )
        assert down.states[DISTRICT] == "down"
        assert metrics_delay <= rounds.detection_bound
        assert hook_delay <= rounds.detection_bound
        for commune in COMMUNES:
            assert timeline.seen(commune, "down") == 0, f"{commune} reported DOWN behind a down district"

        firing = hook.posts
        assert [(p.status, p.labels["alertname"], p.labels["site"]) for p in firing] == [
            ("firing", DOWN, DISTRICT)
        ]
        page = firing[0].body
        assert page["version"] == "4" and page["status"] == "firing"
        assert firing[0].labels["severity"] == "critical" and firing[0].labels["district"] == DISTRICT
        assert firing[0].annotations["unreachable_sites"] == ",".join(COMMUNES)
        assert firing[0].annotations["unreachable_count"] == str(len(COMMUNES))
        assert [m.alert for m in mail.mails] == [(DOWN, DISTRICT, "firing")]
        assert all(c in mail.mails[0].message.get_body(("plain",)).get_content() for c in COMMUNES)  # type: ignore[union-attr]

        restored_at = time.monotonic()
        setup.province.link_up()
        timeline.wait(all_up, rounds.detection_bound + 3, "all sites up again")
        wait_until(lambda: hook.matching(status="resolved") and len(mail.mails) >= 2, 10, "resolution sent")
        timeline.watch(2)
        print(f"recovery: link up → all up in {(timeline.snapshots[-1].at - restored_at) * 1000:.0f} ms")
        assert [(p.status, p.labels["site"]) for p in hook.posts] == [
            ("firing", DISTRICT),
            ("resolved", DISTRICT),
        ]
        assert [m.alert for m in mail.mails] == [(DOWN, DISTRICT, "firing"), (DOWN, DISTRICT, "resolved")]
        for commune in COMMUNES:
            assert timeline.seen(commune, "down") == 0
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err

    rows = [r for r in ledger(setup.db) if r["state"] in ("down", "unreachable")]
    assert sorted((r["site"], r["state"], r["cause"]) for r in rows) == [
        (DISTRICT, "down", None),
        *((c, "unreachable", DISTRICT) for c in COMMUNES),
    ], [dict(r) for r in rows]
    assert all(r["ended_at"] is not None for r in rows), [dict(r) for r in rows]
    print("ledger:", *[tuple(r) for r in ledger(setup.db)], sep="\n  ")
    tk = next(r for r in rows if r["site"] == DISTRICT)
    tk_start, tk_end = utc(tk["started_at"]), utc(tk["ended_at"])
    for r in rows:
        if r is tk:
            continue
        start, end = utc(r["started_at"]), utc(r["ended_at"])
        # Cut off within TK's outage, and back with the link: at the commune's first good round,
        # which may start a little before or after TK's (whichever round came first after link up).
        assert tk_start <= start < tk_end, dict(r)
        assert abs((end - tk_end).total_seconds()) <= rounds.interval + rounds.probes * rounds.spacing, dict(
            r
        )
    assert [r for r in ledger(setup.db) if r["ended_at"] is None] == []


def test_random_loss_never_pages_and_shows_degraded(setup: Setup) -> None:
    rounds = Rounds(interval=0.3, probes=5, spacing=0.02, timeout=0.15)
    setup.write(rounds)
    want_rounds, bound = 300, 130.0
    with setup.netwatch() as (proc, timeline):
        start = timeline.wait(all_up, 20, "all sites up")
        setup.province.add_loss(20)
        deadline = time.monotonic() + bound
        while True:
            snap = timeline.take()
            done = (snap.tk_probes_sent - start.tk_probes_sent) / rounds.probes
            if done >= want_rounds or time.monotonic() > deadline:
                break
            time.sleep(SCRAPE_EVERY)
        setup.province.clear_loss()
        timeline.watch(1)
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    degraded = timeline.seen(DISTRICT, "degraded")
    print(
        f"\nloss 20 %: {done:.0f} rounds of tk-router in {snap.at - start.at:.0f} s,"
        f" {len(timeline.snapshots)} scrapes, TK degraded in {degraded},"
        f" webhooks {[(p.labels['alertname'], p.labels['site'], p.status) for p in setup.hook.posts]}"
    )
    assert done >= want_rounds
    for site in SITES:
        assert timeline.seen(site, "down") == 0, site
        assert timeline.seen(site, "unreachable") == 0, site
    assert degraded >= 1
    assert setup.hook.matching(status="firing") == [], "random loss paged"
    assert setup.mail.mails == []


def test_flapping_district_pages_a_bounded_number_of_times(setup: Setup) -> None:
    rounds = Rounds()
    setup.write(rounds)
    cycles = 6
    with setup.netwatch() as (proc, timeline):
        timeline.wait(all_up, 20, "all sites up")
        for _ in range(cycles):
            setup.province.link_down(silent=True)
            timeline.wait(district_cut_off, rounds.detection_bound + 3, "TK down, communes unreachable")
            setup.province.link_up()
            timeline.wait(all_up, rounds.detection_bound + 3, "all sites up again")
        timeline.watch(3)
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    posts = [(p.labels["alertname"], p.labels["site"], p.status) for p in setup.hook.posts]
    mails = [m.alert for m in setup.mail.mails]
    flapped = [s.at for s in timeline.snapshots if s.flapping.get(DISTRICT)]
    print(f"\nflapping: {cycles} down/up cycles, {len(posts)} webhooks: {posts}; {len(mails)} mails")
    assert flapped, "TK never flagged as flapping"
    for commune in COMMUNES:
        assert timeline.seen(commune, "down") == 0
    # TK's first outages page one by one until its flap counter passes the threshold (more than
    # four changes in the window; the one-round DEGRADED after each recovery counts too), then ONE
    # flapping page replaces the down pages. Observed: down, resolved, down, flapping, resolved.
    tk = [(name, status) for name, site, status in posts if site == DISTRICT]
    assert tk.count(("NetwatchSiteFlapping", "firing")) == 1, tk
    assert 1 <= tk.count((DOWN, "firing")) <= 3, tk
    assert tk.count((DOWN, "resolved")) == tk.count((DOWN, "firing")), tk
    # The communes only followed TK (UNREACHABLE, never DOWN): they must not page on their own,
    # not even as "flapping" (20 communes behind a flapping district would be 20 pages).
    assert [p for p in posts if p[1] != DISTRICT] == [], "communes behind TK paged on their own"
    assert len(posts) <= cycles  # well below one page per toggle (2 × cycles)
    assert sorted(mails) == sorted(posts)


def test_restart_during_an_outage_keeps_one_outage_and_records_the_gap(setup: Setup) -> None:
    rounds = Rounds()
    setup.write(rounds)
    with setup.netwatch() as (proc, timeline):
        timeline.wait(all_up, 20, "all sites up")
        setup.province.link_down(silent=True)
        timeline.wait(district_cut_off, rounds.detection_bound + 3, "TK down, communes unreachable")
        wait_until(lambda: setup.hook.posts, 10, "the page delivered")
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    time.sleep(3)
    with setup.netwatch() as (proc, timeline):
        first = timeline.take()
        assert first.states.get(DISTRICT) == "down", first.states
        timeline.watch(3)  # still cut off: the outage goes on, nothing flips
        assert all(district_cut_off(s) for s in timeline.snapshots), [s.states for s in timeline.snapshots]
        setup.province.link_up()
        timeline.wait(all_up, rounds.detection_bound + 3, "all sites up again")
        timeline.watch(2)
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err

    with sqlite3.connect(setup.db) as conn:
        runs = conn.execute("select started_at, stopped_at from instance_runs order by started_at").fetchall()
    assert len(runs) == 2 and all(stopped is not None for _, stopped in runs), runs
    first_stopped, second_started = utc(runs[0][1]), utc(runs[1][0])
    gap = (second_started - first_stopped).total_seconds()
    print(f"\nrestart: monitoring gap {gap * 1000:.0f} ms between the runs")
    assert gap >= 3

    downs = [r for r in ledger(setup.db) if r["site"] == DISTRICT and r["state"] == "down"]
    assert len(downs) == 1, [dict(r) for r in downs]
    assert utc(downs[0]["started_at"]) < first_stopped
    assert downs[0]["ended_at"] is not None and utc(downs[0]["ended_at"]) > second_started
    assert [r for r in ledger(setup.db) if r["ended_at"] is None] == []

    # What the NOC saw: the page before the restart, and its resolution after it.
    posts = [(p.labels["site"], p.status) for p in setup.hook.posts]
    print(f"restart: webhooks {posts}")
    assert posts == [(DISTRICT, "firing"), (DISTRICT, "resolved")], "the outage's resolution was never sent"
