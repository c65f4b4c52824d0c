"""The ``netwatch`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from netwatch import __version__

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
def run(config_path: Path, db_url: str, listen: str, instance: str) -> None:
    """Run the daemon on an inventory until SIGTERM or Ctrl-C."""
    from netwatch.daemon import DaemonOptions, run_daemon
    from netwatch.errors import NetwatchError

    options = DaemonOptions(config=config_path, db_url=db_url, listen=listen, instance=instance)
    try:
        code = asyncio.run(run_daemon(options))
    except NetwatchError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
    sys.exit(code)


@main.command()
@click.option("--listen", default=DEFAULT_LISTEN, show_default=True, help="HOST:PORT for /metrics.")
@click.option("--keep-db", is_flag=True, help="Keep the temporary SQLite database after exit.")
def demo(listen: str, keep_db: bool) -> None:
    """Run netwatch on a built-in simulated network on loopback (temporary SQLite database)."""
    from netwatch.demo import run_demo

    sys.exit(run_demo(listen=listen, keep_db=keep_db))


@main.command()
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
def check(config_path: Path) -> None:
    """Validate an inventory: exit 0, or 2 with one ``file:line: field: message`` line per error."""
    from netwatch.config import check_inventory, load_inventory

    issues = check_inventory(config_path)
    if issues:
        for issue in issues:
            click.echo(str(issue), err=True)
        sys.exit(2)
    inventory = load_inventory(config_path)
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
    help="Seconds to wait for each reply.",
)
def probe(address: str, probes: int, spacing: float, timeout: float) -> None:
    """One ICMP round to ADDRESS now, as a table."""
    from collectors.icmp import IcmpEngine, IcmpPermissionError

    async def one_round() -> int:
        try:
            engine = await IcmpEngine.open()
        except IcmpPermissionError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            result = await engine.round(address, probes=probes, probe_spacing=spacing, timeout=timeout)
        finally:
            await engine.close()
        table = Table(title=f"ICMP round to {address}")
        for column in ("sent", "received", "loss", "min ms", "avg ms", "max ms", "jitter ms", "note"):
            table.add_column(column, justify="right" if column != "note" else "left")

        def ms(value: float | None) -> str:
            return "—" if value is None else f"{value * 1000:.3f}"

        table.add_row(
            str(result.sent),
            str(result.received),
            f"{result.loss_ratio:.0%}",
            ms(result.min),
            ms(result.avg),
            ms(result.max),
            ms(result.jitter),
            result.error or "",
        )
        Console().print(table)
        return 0 if result.received else 1

    sys.exit(asyncio.run(one_round()))


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


if __name__ == "__main__":
    main()
