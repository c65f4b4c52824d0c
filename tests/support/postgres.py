"""A real PostgreSQL for tests: the server CI gives, or a throwaway cluster started here.

``postgres_url`` (session): ``NETWATCH_TEST_POSTGRES_URL`` when set (CI's ``.ci/run`` starts a
server and sets it; the role needs CREATEDB), otherwise a cluster of this machine's PostgreSQL
(``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``, run as ``postgres`` when we are root)
in a temporary directory, on 127.0.0.1 and a free port, trust auth, unix sockets in that
directory; stopped and deleted at the end. Either way the session gets its own database.
``postgres_db_url`` gives each test a fresh database of its own, dropped afterwards.
Without PostgreSQL binaries (and no URL), the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

__all__ = [
    "ENV_URL",
    "PostgresCluster",
    "find_bindir",
    "fresh_database",
    "postgres_db_url",
    "postgres_url",
    "throwaway_cluster",
]

ENV_URL = "NETWATCH_TEST_POSTGRES_URL"
"""Environment variable naming an existing server to test against instead of a throwaway one."""


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` that has ``initdb`` and ``pg_ctl``, if any."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "pg_ctl").exists()]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresCluster:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="netwatch-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        """URL of the cluster's ``postgres`` database as the ``postgres`` superuser."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        result = subprocess.run(
            command,
            user="postgres" if self._as_root else None,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=self.root,
        )
        if result.returncode != 0:
            server_log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}\n{server_log}")

    def init(self) -> None:
        """Create the cluster (trust auth, UTF-8, no fsync: its data is thrown away)."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server (again, on the same port after a stop) and wait until it accepts."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
        )

    def stop(self) -> None:
        """Stop the server, disconnecting clients (``-m fast``)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """True while the postmaster's pid file exists."""
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        """Stop the server if it runs and delete its directory."""
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PostgresCluster]:
    """A started cluster of its own, destroyed on exit; skips the test without PostgreSQL."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (apt install postgresql)")
    cluster = PostgresCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create an empty database on the server of ``server_url``; yield its URL; drop it on exit."""
    name = f"netwatch_test_{uuid.uuid4().hex[:12]}"
    base = make_url(server_url)
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    # No pool: a server restarted by a test must not leave the drop with a dead connection.
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a database of its own for this test session, on CI's server or a throwaway one."""
    configured = os.environ.get(ENV_URL)
    if configured:
        with fresh_database(configured) as url:
            yield url
        return
    with throwaway_cluster() as cluster, fresh_database(cluster.url) as url:
        yield url


@pytest.fixture
def postgres_db_url(postgres_url: str) -> Iterator[str]:
    """URL of an empty database for this test alone, on the session's server."""
    with fresh_database(postgres_url) as url:
        yield url
