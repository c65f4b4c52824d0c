"""The ``netwatch`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from netwatch import __version__

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from collectors.snmp.credentials import SnmpCredentials
    from netwatch.probe import ProbeReport
    from netwatch.web.webconfig import WebSecurity

DEFAULT_DB = "sqlite:///netwatch.db"
DEFAULT_LISTEN = "127.0.0.1:9555"

db_option = click.option(
    "--db",
    "db_url",
    envvar="NETWATCH_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="Database URL (sqlite:///FILE or postgresql://USER@HOST/DB); env NETWATCH_DB.",
)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Their INFO lines are per-job chatter ("Adding job tentatively", alembic plugin set-up).
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netwatch")
@click.option(
    "--log-level",
    envvar="NETWATCH_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log verbosity (logs go to standard error).",
)
def main(log_level: str) -> None:
    """netwatch: watch a WAN's sites and devices over ICMP and SNMP, keep history in SQL, export to
    Prometheus."""
    _setup_logging(log_level)


def _shard_spec(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from netwatch.sharding import parse_shard

    try:
        index, count = parse_shard(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return f"{index}/{count}"


@main.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Inventory YAML file.",
)
@db_option
@click.option(
    "--listen",
    envvar="NETWATCH_LISTEN",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="HOST:PORT for /metrics and /healthz.",
)
@click.option(
    "--instance",
    envvar="NETWATCH_INSTANCE",
    default=socket.gethostname(),
    show_default=True,
    help="Stable name of this instance, recorded with its heartbeats.",
)
@click.option(
    "--web-config",
    envvar="NETWATCH_WEB_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    help="exporter-toolkit web-config.yml: TLS, basic auth and headers for the HTTP endpoint.",
)
@click.option(
    "--shard",
    envvar="NETWATCH_SHARD",
    default="0/1",
    show_default=True,
    callback=_shard_spec,
    help="K/N: poll only the district subtrees hashed to shard K of N (province-level sites: shard 0).",
)
@click.option(
    "--spool-dir",
    envvar="NETWATCH_SPOOL_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where rows wait on disk while the database is away [default: $STATE_DIRECTORY/spool, "
    "else beside the SQLite file (FILE-spool); none for PostgreSQL outside systemd].",
)
@click.option(
    "--spool-max-bytes",
    envvar="NETWATCH_SPOOL_MAX_BYTES",
    type=click.IntRange(min=0),
    help="Bound of the disk spool; beyond it the newest rows are dropped and counted; 0 disables "
    "the spool [default: 1 GiB].",
)
@click.option(
    "--queue-max-rows",
    envvar="NETWATCH_QUEUE_MAX_ROWS",
    type=click.IntRange(min=1),
    help="Rows held in memory for the database; from half of it they go to the spool [default: 200000].",
)
def run(
    config_path: Path,
    db_url: str,
    listen: str,
    instance: str,
    web_config: Path | None,
    shard: str,
    spool_dir: Path | None,
    spool_max_bytes: int | None,
    queue_max_rows: int | None,
) -> None:
    """Run the daemon on an inventory until SIGTERM or Ctrl-C."""
    from netwatch.daemon import DaemonOptions, run_daemon
    from netwatch.errors import NetwatchError

    security = _web_security(web_config)
    options = DaemonOptions(
        config=config_path,
        db_url=db_url,
        listen=listen,
        instance=instance,
        web_security=security,
        shard=shard,
        spool_dir=spool_dir,
    )
    if spool_max_bytes is not None:
        options = dataclasses.replace(options, spool_max_bytes=spool_max_bytes)
    if queue_max_rows is not None:
        options = dataclasses.replace(options, queue_max_rows=queue_max_rows)
    try:
        code = asyncio.run(run_daemon(options))
    except NetwatchError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
    sys.exit(code)


def _web_security(path: Path | None) -> WebSecurity | None:
    """The web config at ``path`` loaded now, so a bad one stops start-up: exit 2 with its issues."""
    if path is None:
        return None
    from netwatch.errors import ConfigError
    from netwatch.web.webconfig import load_web_config

    try:
        return load_web_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        sys.exit(2)


@main.command()
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, help="HOST:PORT for /metrics.")
@click.option("--keep-db", is_flag=True, help="Keep the temporary SQLite database after exit.")
@click.option("--prometheus", is_flag=True, help="Also run Prometheus (if on PATH) scraping the demo.")
@click.option(
    "--fault-period",
    type=click.FloatRange(min=0),
    default=240.0,
    show_default=True,
    help="Seconds in the simulated-fault schedule's period (0: no simulated faults).",
)
def demo(listen: str, keep_db: bool, prometheus: bool, fault_period: float) -> None:
    """Run netwatch on a built-in simulated network on loopback: ICMP, simulated SNMP agents (snmpsim,
    with the demo extra) and simulated faults, with a temporary SQLite database."""
    from netwatch.demo import run_demo

    sys.exit(run_demo(listen=listen, keep_db=keep_db, prometheus=prometheus, fault_period=fault_period))


@main.command()
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
def check(config_path: Path) -> None:
    """Validate an inventory: exit 0, or 2 with one ``file:line: field: message`` line per error.

    Weak security settings (community public, MD5/DES, noAuthNoPriv, mail without TLS) are printed
    as ``warning: file:line: field: message`` lines on standard error; alone they still exit 0."""
    from netwatch.config import check_inventory, load_inventory
    from netwatch.config.warnings import weak_settings

    issues = check_inventory(config_path)
    if issues:
        for issue in issues:
            click.echo(str(issue), err=True)
        sys.exit(2)
    inventory = load_inventory(config_path)
    for warning in weak_settings(inventory):
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"{config_path}: ok — {len(inventory.sites)} sites, {len(inventory.devices)} devices, "
        f"{len(inventory.jobs)} polls"
    )


@main.group()
def config() -> None:
    """Inventory format tools."""


@config.command("schema")
def config_schema() -> None:
    """Print the inventory's JSON Schema (for editors)."""
    from netwatch.config import inventory_json_schema

    click.echo(json.dumps(inventory_json_schema(), indent=2, ensure_ascii=False))


AUTH_PROTOCOLS = ["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PRIV_PROTOCOLS = ["DES", "AES", "AES-192", "AES-256", "AES-192-C", "AES-256-C"]


@main.command()
@click.argument("address")
@click.option("--probes", default=5, show_default=True, type=click.IntRange(1, 100), help="Echo requests.")
@click.option(
    "--spacing", default=0.2, show_default=True, type=click.FloatRange(0, 10), help="Seconds between probes."
)
@click.option(
    "--timeout",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01, 60),
    help="Seconds to wait for each reply (ICMP and SNMP).",
)
@click.option(
    "--snmp-community",
    envvar="NETWATCH_SNMP_COMMUNITY",
    help="SNMPv2c community (env NETWATCH_SNMP_COMMUNITY).",
)
@click.option("--snmp-user", help="SNMPv3 user name.")
@click.option(
    "--snmp-auth-protocol", type=click.Choice(AUTH_PROTOCOLS), help="SNMPv3 authentication protocol."
)
@click.option(
    "--snmp-auth-key", envvar="NETWATCH_SNMP_AUTH_KEY", help="SNMPv3 auth key (env NETWATCH_SNMP_AUTH_KEY)."
)
@click.option("--snmp-priv-protocol", type=click.Choice(PRIV_PROTOCOLS), help="SNMPv3 privacy protocol.")
@click.option(
    "--snmp-priv-key", envvar="NETWATCH_SNMP_PRIV_KEY", help="SNMPv3 priv key (env NETWATCH_SNMP_PRIV_KEY)."
)
@click.option(
    "--rate-seconds",
    default=3.0,
    show_default=True,
    type=click.FloatRange(0.5, 60),
    help="Seconds between the two SNMP reads that give interface rates.",
)
def probe(
    address: str,
    probes: int,
    spacing: float,
    timeout: float,
    snmp_community: str | None,
    snmp_user: str | None,
    snmp_auth_protocol: str | None,
    snmp_auth_key: str | None,
    snmp_priv_protocol: str | None,
    snmp_priv_key: str | None,
    rate_seconds: float,
) -> None:
    """One look at ADDRESS[:PORT] now: an ICMP round and, with SNMP credentials, system info and
    interfaces with their current rates."""
    from netwatch.probe import run_probe

    credentials = _probe_credentials(
        snmp_community, snmp_user, snmp_auth_protocol, snmp_auth_key, snmp_priv_protocol, snmp_priv_key
    )
    report = asyncio.run(
        run_probe(
            address,
            credentials=credentials,
            probes=probes,
            spacing=spacing,
            timeout=timeout,
            rate_seconds=rate_seconds,
        )
    )
    _print_probe(report, snmp=credentials is not None)
    # With credentials the question was SNMP: its failure fails the probe even if pings came back.
    if credentials is not None:
        answered = not report.snmp_error
    else:
        answered = bool(report.icmp and report.icmp.received)
    sys.exit(0 if answered else 1)


def _probe_credentials(
    community: str | None,
    user: str | None,
    auth_protocol: str | None,
    auth_key: str | None,
    priv_protocol: str | None,
    priv_key: str | None,
) -> SnmpCredentials | None:
    from collectors.snmp.credentials import SnmpCredentials

    if community and user:
        raise click.UsageError("give either --snmp-community (v2c) or --snmp-user (v3), not both")
    try:
        if community:
            return SnmpCredentials.v2c(community)
        if user:
            return SnmpCredentials.v3(
                user,
                auth_protocol=auth_protocol,  # type: ignore[arg-type]
                auth_key=auth_key,
                priv_protocol=priv_protocol,  # type: ignore[arg-type]
                priv_key=priv_key,
            )
    except ValueError as exc:  # names fields, never values
        raise click.UsageError(str(exc)) from None
    return None


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.3f}"


def _bps(value: float | None) -> str:
    if value is None:
        return "—"
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f} bit/s"


def _print_probe(report: ProbeReport, *, snmp: bool) -> None:
    console = Console()
    if report.icmp_error:
        console.print(f"[yellow]ICMP: {report.icmp_error}[/yellow]")
    elif report.icmp is not None:
        r = report.icmp
        table = Table(title=f"ICMP round to {report.address}")
        for column in ("sent", "received", "loss", "min ms", "avg ms", "max ms", "jitter ms", "note"):
            table.add_column(column, justify="left" if column == "note" else "right")
        table.add_row(
            str(r.sent),
            str(r.received),
            f"{r.loss_ratio:.0%}",
            _ms(r.min),
            _ms(r.avg),
            _ms(r.max),
            _ms(r.jitter),
            r.error or "",
        )
        console.print(table)
    if snmp:
        _print_snmp(console, report)


def _print_snmp(console: Console, report: ProbeReport) -> None:
    if report.snmp_error and not report.interfaces:
        console.print(f"[red]SNMP: {report.snmp_error}[/red]")
        return
    uptime = "—" if report.uptime_seconds is None else str(timedelta(seconds=int(report.uptime_seconds)))
    console.print(f"sysName: {report.sysname}\nsysDescr: {report.sysdescr}\nuptime: {uptime}")
    table = Table(title="Interfaces")
    for column in ("ifIndex", "name", "alias", "status", "speed", "in", "out"):
        table.add_column(column, justify="right" if column in ("ifIndex", "speed", "in", "out") else "left")
    for row in report.interfaces:
        status = "—" if row.oper_up is None else ("up" if row.oper_up else "down")
        table.add_row(
            row.ifindex, row.name, row.alias, status, _bps(row.speed_bps), _bps(row.in_bps), _bps(row.out_bps)
        )
    console.print(table)
    if report.snmp_error:
        console.print(f"[yellow]SNMP (second read): {report.snmp_error}[/yellow]")


STATE_STYLES = {
    "up": "green",
    "degraded": "yellow",
    "down": "bold red",
    "unreachable": "magenta",
    "maintenance": "cyan",
    "unknown": "dim",
}
tz_option = click.option(
    "--tz", "tz_name", default="Asia/Ho_Chi_Minh", show_default=True, help="Time zone to show times in."
)


def _engine(db_url: str) -> Engine:
    from netwatch.storage.engine import create_engine_for

    return create_engine_for(db_url)


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return "—" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _silent_shards(runs: list[dict[str, Any]], zone: ZoneInfo) -> tuple[int, dict[int, str]]:
    """The shard count of the newest run, and why each shard of that count is not measuring now."""
    from netwatch.daemon import HEARTBEAT_SECONDS
    from netwatch.sharding import parse_shard

    if not runs:
        return 1, {}
    count = parse_shard(runs[0]["shard"])[1] if "/" in runs[0]["shard"] else 1
    latest = {parse_shard(r["shard"])[0]: r for r in runs if r["shard"].endswith(f"/{count}")}
    expired = datetime.now(UTC) - timedelta(seconds=3 * HEARTBEAT_SECONDS)
    silent: dict[int, str] = {}
    for index in range(count):
        run = latest.get(index)
        if run is None:
            silent[index] = f"shard {index}/{count} has never run"
        elif run["stopped_at"] is not None:
            silent[index] = f"shard {index}/{count} stopped at {_local(run['stopped_at'], zone)}"
        elif run["heartbeat_at"] < expired:
            silent[index] = (
                f"shard {index}/{count} dead: no heartbeat since {_local(run['heartbeat_at'], zone)}"
            )
    return count, silent


@main.command()
@db_option
@tz_option
def status(db_url: str, tz_name: str) -> None:
    """Site states as a tree by district, from the database (works beside running daemons)."""
    from netwatch.sharding import district_key, shard_of_district
    from netwatch.storage import repository

    zone = ZoneInfo(tz_name)
    engine = _engine(db_url)
    try:
        rows = repository.site_overview(engine)
        count, silent = _silent_shards(repository.shard_runs(engine), zone)
    finally:
        engine.dispose()
    codes = {r["code"] for r in rows}
    for row in rows:  # a site whose shard is not measuring: its last state is stale, not current
        row["shard"] = shard_of_district(district_key(row["district"], codes), count)
        if row["shard"] in silent:
            row["state"], row["cause"] = "unknown", silent[row["shard"]]
    if not rows:
        raise click.ClickException("no sites in this database: has netwatch run against it?")
    names = {row["code"]: row["name"] for row in rows}
    table = Table(title=f"Site states ({tz_name})")
    for column in ("site", "name", "state", "since", "cause", *(("shard",) if count > 1 else ())):
        table.add_column(column)
    counts: dict[str, int] = {}
    district = None
    for row in sorted(rows, key=lambda r: (r["district"], r["code"] != r["district"], r["code"])):
        if row["district"] != district:
            district = row["district"]
            table.add_section()
            if district not in names:  # province-level sites: no district site heads them
                table.add_row(f"[bold]{district}[/bold]", *[""] * (len(table.columns) - 1))
        state = row["state"] or "unknown"
        counts[state] = counts.get(state, 0) + 1
        head = row["code"] == district
        table.add_row(
            f"[bold]{row['code']}[/bold]" if head else "  " + row["code"],
            f"[bold]{row['name']}[/bold]" if head else row["name"],
            f"[{STATE_STYLES.get(state, '')}]{state}[/]",
            _local(row["since"], zone),
            row["cause"] or "",
            *((f"{row['shard']}/{count}",) if count > 1 else ()),
        )
    console = Console()
    console.print(table)
    console.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    for reason in silent.values():
        console.print(f"[bold red]{reason}[/]: its sites are unknown until it returns")


@main.group(invoke_without_command=True)
@click.option("--open", "only_open", is_flag=True, help="Only outages still going on.")
@click.option("--site", help="Only this site (its code).")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    help="Only outages going on at or after this local date/time.",
)
@db_option
@tz_option
@click.pass_context
def outages(
    ctx: click.Context, only_open: bool, site: str | None, since: datetime | None, db_url: str, tz_name: str
) -> None:
    """Outage events (down, unreachable, degraded, maintenance intervals) from the database."""
    if ctx.invoked_subcommand is not None:
        return
    from netwatch.storage import repository

    zone = ZoneInfo(tz_name)
    engine = _engine(db_url)
    try:
        rows = repository.outages(
            engine, only_open=only_open, site=site, since=since.replace(tzinfo=zone) if since else None
        )
    finally:
        engine.dispose()
    table = Table(title=f"Outages ({tz_name})")
    for column in ("id", "site", "state", "start", "end", "duration", "cause"):
        table.add_column(column, justify="right" if column in ("id", "duration") else "left")
    now = datetime.now(zone)
    for row in rows:
        end = row["ended_at"] or now
        duration = timedelta(seconds=int((end - row["started_at"]).total_seconds()))
        state = row["state"]
        table.add_row(
            str(row["id"]),
            row["site"],
            f"[{STATE_STYLES.get(state, '')}]{state}[/]",
            _local(row["started_at"], zone),
            _local(row["ended_at"], zone) if row["ended_at"] else "[bold]open[/bold]",
            str(duration),
            row["cause"] or "",
        )
    Console().print(table)


@main.group()
def db() -> None:
    """Database schema and maintenance."""


@db.command("upgrade")
@db_option
def db_upgrade(db_url: str) -> None:
    """Create or upgrade the database schema to this version."""
    from netwatch.errors import StorageError
    from netwatch.storage import migrate
    from netwatch.storage.engine import create_engine_for

    engine = create_engine_for(db_url)
    try:
        migrate.upgrade(engine)
        click.echo(f"database at revision {migrate.current_revision(engine)}")
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


_WHEN = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]


@db.command("rollup")
@click.option(
    "--from", "start", type=click.DateTime(_WHEN), required=True, help="Local start (date or date and time)."
)
@click.option("--to", "end", type=click.DateTime(_WHEN), required=True, help="Local end, exclusive.")
@tz_option
@db_option
def db_rollup(start: datetime, end: datetime, tz_name: str, db_url: str) -> None:
    """Rebuild the 5-minute and hourly rollups of a time range from the raw samples still kept."""
    from netwatch.reports.progress import ProgressBar
    from netwatch.storage.rollups import rebuild

    zone = ZoneInfo(tz_name)
    first, last = start.replace(tzinfo=zone), end.replace(tzinfo=zone)
    if last <= first:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    engine = _engine(db_url)
    try:
        with ProgressBar("Rebuilding rollups") as bar:
            result = rebuild(engine, first, last, on_batch=bar)
    finally:
        engine.dispose()
    for name, rows in result.rows.items():
        click.echo(f"{name}: {rows} rows in {result.batches[name]} batches")


# --- reports and outage annotations -----------------------------------------------------------
# `report` groups the monthly reports: `availability` below; `bandwidth` joins it beside it.


def _zone_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        ZoneInfo(value)
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError; "../x" is a ValueError
        raise click.BadParameter(
            f"unknown time zone {value!r} (use an IANA name like Asia/Ho_Chi_Minh)"
        ) from None
    return value


def _month(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from netwatch.reports.availability import parse_month

    try:
        parse_month(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _output_path(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and not value.resolve().parent.is_dir():
        raise click.BadParameter(f"directory {str(value.resolve().parent)!r} does not exist")
    return value


month_option = click.option(
    "--month", required=True, callback=_month, help="Local calendar month, YYYY-MM (e.g. 2026-10)."
)
report_tz_option = click.option(
    "--tz",
    "tz_name",
    default="Asia/Ho_Chi_Minh",
    show_default=True,
    callback=_zone_name,
    help="Time zone whose local month the report covers.",
)
lang_option = click.option(
    "--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True, help="Report language."
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_output_path,
    help="Write to FILE instead of standard output (required for xlsx).",
)


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx", "html"]),
    default="csv",
    show_default=True,
    help="Output.",
)


def _need_file_for_xlsx(fmt: str, output: Path | None) -> None:
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx writes a binary workbook: give -o FILE")


def _emit(body: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        output.write_bytes(body)
        click.echo(f"{output}: {len(body)} bytes", err=True)


@main.group()
def report() -> None:
    """Monthly reports (CSV, XLSX or HTML; Vietnamese or English)."""


@report.command("availability")
@month_option
@format_option
@lang_option
@report_tz_option
@click.option("--site", help="Only this site (its code).")
@click.option("--district", help="Only the sites of this district (its code).")
@output_option
@db_option
def report_availability(
    month: str,
    fmt: str,
    lang: str,
    tz_name: str,
    site: str | None,
    district: str | None,
    output: Path | None,
    db_url: str,
) -> None:
    """Availability per site, district and province for one local month (month to date if current)."""
    from sqlalchemy.exc import SQLAlchemyError

    from netwatch.errors import StorageError
    from netwatch.reports.availability import compute, load_month, month_bounds
    from netwatch.reports.progress import ProgressBar
    from netwatch.reports.render import render_availability

    _need_file_for_xlsx(fmt, output)
    now = datetime.now(ZoneInfo(tz_name))
    if month_bounds(month, tz_name)[0] >= now:
        raise click.BadParameter(f"{month} has not begun yet in {tz_name}", param_hint="--month")
    engine = _engine(db_url)
    try:
        with Console(stderr=True).status(f"Reading {month}…"):
            data = load_month(engine, month, tz_name, site=site, district=district)
        if not data.sites and site is not None:
            raise click.BadParameter(f"no site has code {site!r}", param_hint="--site")
        if not data.sites and district is not None:
            raise click.BadParameter(f"no district has code {district!r}", param_hint="--district")
        if not data.sites:
            raise click.ClickException("no sites in this database: has netwatch run against it?")
        with ProgressBar(f"Computing availability for {month}") as bar:
            report = compute(data, now, progress=bar)
        body = render_availability(report, fmt, lang)  # type: ignore[arg-type]
    except (StorageError, SQLAlchemyError) as exc:
        raise click.ClickException(f"cannot read the database: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()
    _emit(body, output)


@report.command("bandwidth")
@month_option
@format_option
@lang_option
@report_tz_option
@click.option("--site", help="Only this site's links (its code).")
@click.option("--district", help="Only the links of this district's sites (its code).")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Inventory to take links and retention from (default: links the daemon mirrored in the database).",
)
@output_option
@db_option
def report_bandwidth(
    month: str,
    fmt: str,
    lang: str,
    tz_name: str,
    site: str | None,
    district: str | None,
    config_path: Path | None,
    output: Path | None,
    db_url: str,
) -> None:
    """Per link: average, peak and 95th percentile in and out, utilisation, hours above 80 %."""
    from sqlalchemy.exc import SQLAlchemyError

    from netwatch.errors import ConfigError, StorageError
    from netwatch.reports.bandwidth import bandwidth_report, links_from_inventory
    from netwatch.reports.bandwidth_render import render_bandwidth
    from netwatch.reports.progress import ProgressBar

    _need_file_for_xlsx(fmt, output)
    links, policy = None, None
    if config_path is not None:
        from netwatch.config import load_inventory

        try:
            inventory = load_inventory(config_path)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        links, policy = links_from_inventory(inventory), inventory.retention
    engine = _engine(db_url)
    try:
        with ProgressBar(f"Computing bandwidth for {month}") as bar:
            result = bandwidth_report(
                engine,
                month,
                tz=tz_name,
                links=links,
                site=site,
                district=district,
                policy=policy,
                progress=bar,
            )
    except (StorageError, SQLAlchemyError) as exc:
        raise click.ClickException(f"cannot read the database: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()
    if not result.links:
        raise click.ClickException("no links with an interface and a contracted rate match")
    body = render_bandwidth(result, fmt, lang)  # type: ignore[arg-type]
    if result.fallback:
        click.echo(
            f"note: {month} is older than the 5-minute rollups' retention: hourly figures used", err=True
        )
    elif result.hourly_links:
        click.echo(
            f"note: {len(result.hourly_links)} link(s) without 5-minute rollups: hourly figures used",
            err=True,
        )
    _emit(body, output)


def _default_author() -> str:
    import getpass
    import os

    return os.environ.get("SUDO_USER") or os.environ.get("USER") or getpass.getuser()


@outages.command("annotate")
@click.argument("outage_id", type=int)
@click.option("--cause", help="What caused the outage, in the operator's words.")
@click.option("--ticket", help="Ticket or work-order reference.")
@click.option(
    "--reclassify",
    type=click.Choice(["maintenance", "down", "unreachable", "degraded"]),
    help="Count the interval as this state in reports (e.g. planned work as maintenance).",
)
@click.option("--author", default=_default_author, show_default="$SUDO_USER or $USER", help="Who annotates.")
@db_option
def outages_annotate(
    outage_id: int, cause: str | None, ticket: str | None, reclassify: str | None, author: str, db_url: str
) -> None:
    """Annotate outage ID (cause, ticket, reclassification); audited with the before and after."""
    from netwatch.storage.annotations import OutageNotFoundError, annotate

    if cause is None and ticket is None and reclassify is None:
        raise click.UsageError("nothing to annotate: give --cause, --ticket or --reclassify")
    engine = _engine(db_url)
    try:
        result = annotate(engine, outage_id, author=author, cause=cause, ticket=ticket, reclassify=reclassify)
    except OutageNotFoundError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    finally:
        engine.dispose()
    table = Table(title=f"Outage {outage_id} annotated by {author} (annotation {result.annotation_id})")
    for column in ("field", "before", "after"):
        table.add_column(column)
    for key in ("site", "state", "cause", "ticket", "started_at", "ended_at"):
        old, new = result.before.get(key), result.after.get(key)
        mark = "[bold]" if old != new else ""
        table.add_row(key, str(old or "—"), f"{mark}{new or '—'}")
    Console().print(table)


if __name__ == "__main__":
    main()
