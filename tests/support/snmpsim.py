"""snmpsim agents answering with recordings of real devices, on a free loopback UDP port.

Recordings come from the ``snmpsim-data`` package (bzip2-compressed ``.snmprec`` walks of real
devices), cut down to the subtrees netwatch's profiles read so that snmpsim indexes them in seconds,
plus netwatch's own recordings in ``tests/testdata/snmpsim``. The community of a recording is its file
name without ``.snmprec``. Data and index files live in one stable directory (``NETWATCH_SNMPSIM_DIR``,
default under the system temp dir) so the slow index build happens once per machine, not per run.
Files are copied, never symlinked: snmpsim names communities after the link target.
"""

from __future__ import annotations

import bz2
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.snmpd import free_udp_port

REPO = Path(__file__).resolve().parents[2]
OWN_RECORDINGS = REPO / "tests" / "testdata" / "snmpsim"
RESPONDER = Path(sys.executable).with_name("snmpsim-command-responder")
# Bump when the cut of a recording changes, so stale copies are rebuilt.
LAYOUT_VERSION = "1"

SYSTEM = "1.3.6.1.2.1.1."
IF_MIB = ("1.3.6.1.2.1.2.2.1.", "1.3.6.1.2.1.31.1.1.1.")
HOST = ("1.3.6.1.2.1.25.2.3.1.", "1.3.6.1.2.1.25.3.3.1.", "1.3.6.1.4.1.2021.4.", "1.3.6.1.4.1.2021.10.1.")
UPS = ("1.3.6.1.2.1.33.",)
FCMGMT = ("1.3.6.1.3.94.1.10.1.", "1.3.6.1.3.94.4.5.1.")
BROCADE_SW = ("1.3.6.1.4.1.1588.2.1.1.1.6.2.1.",)


@dataclass(frozen=True)
class Cut:
    """A recording made from a real one: which snmpsim-data file, which subtrees to keep or drop."""

    source: str
    keep: tuple[str, ...]
    drop: tuple[str, ...] = ()


# community → how it is made from snmpsim-data (paths under snmpsim_data/data).
CUTS: dict[str, Cut] = {
    # Cisco Catalyst 3560: 57 interfaces, one of them without ifXTable 64-bit counters.
    "cisco-c3560": Cut("network/switch/cisco-c3560.snmprec.bz2", (SYSTEM, *IF_MIB)),
    # H3C Comware switch with 1,317 interfaces: the big-switch case, from a real device.
    "h3c-comware-1317": Cut("network/switch/h3c-comware-lsq1wcmd0-2509p61.snmprec.bz2", (SYSTEM, *IF_MIB)),
    # Vyatta router (net-snmp based): HOST-RESOURCES-MIB and UCD-SNMP-MIB.
    "vyatta": Cut("network/router/vyatta-unknown.snmprec.bz2", (SYSTEM, *IF_MIB, *HOST)),
    # Eaton 93E 80 kVA UPS: RFC 1628 UPS-MIB.
    "eaton-93e-80": Cut("UPS/eaton-93e-80.snmprec.bz2", (SYSTEM, *UPS)),
    # Brocade Fibre Channel switch with FCMGMT-MIB and SW-MIB.
    "brocade-fc": Cut("network/switch/brocade-fiber-channel.snmprec.bz2", (SYSTEM, *FCMGMT, *BROCADE_SW)),
    # The same switch as seen with the FA-MIB disabled (Brocade's default): SW-MIB only.
    "brocade-sw-only": Cut("network/switch/brocade-fiber-channel.snmprec.bz2", (SYSTEM, *BROCADE_SW)),
}


@dataclass(frozen=True)
class SimAgent:
    """A running snmpsim: where it listens and where its recordings are."""

    address: str
    port: int
    data_dir: Path
    pid: int

    def recording(self, community: str) -> Path:
        """The data file answering ``community``."""
        return self.data_dir / f"{community}.snmprec"

    def rewrite(self, community: str, text: str) -> None:
        """Replace a recording; snmpsim re-reads a file whose mtime changed (whole seconds)."""
        path = self.recording(community)
        before = path.stat().st_mtime if path.exists() else 0.0
        path.write_text(text)
        stamp = max(time.time(), before + 2)
        os.utime(path, (stamp, stamp))


def data_root() -> Path:
    """The stable directory holding prepared recordings and snmpsim's index cache."""
    default = Path(tempfile.gettempdir()) / f"netwatch-snmpsim-{os.getuid()}"
    return Path(os.environ.get("NETWATCH_SNMPSIM_DIR", default))


def _snmpsim_data() -> Path:
    import snmpsim_data  # type: ignore[import-untyped]

    return Path(snmpsim_data.__file__).resolve().parent / "data"


def _cut(cut: Cut, into: Path) -> None:
    source = _snmpsim_data() / cut.source
    with bz2.open(source, "rt", encoding="utf-8", errors="replace") as text:
        lines = [
            line
            for line in text
            if line.startswith(cut.keep) and not (cut.drop and line.startswith(cut.drop))
        ]
    tmp = into.with_suffix(".tmp")
    tmp.write_text("".join(lines))
    tmp.replace(into)


def prepare(communities: Sequence[str], own: Sequence[str]) -> Path:
    """Build (once) the data directory: cut recordings and netwatch's own, copied as files."""
    root = data_root()
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (root / "cache").mkdir(exist_ok=True)
    version = root / "layout-version"
    if not version.exists() or version.read_text() != LAYOUT_VERSION:
        shutil.rmtree(data)
        shutil.rmtree(root / "cache")
        data.mkdir()
        (root / "cache").mkdir()
        version.write_text(LAYOUT_VERSION)
    for community in communities:
        target = data / f"{community}.snmprec"
        if not target.exists():
            _cut(CUTS[community], target)
    for name in own:
        source = OWN_RECORDINGS / f"{name}.snmprec"
        target = data / source.name
        # Own recordings are rewritten by tests: start every session from the committed text.
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
            stamp = time.time() + 2
            os.utime(target, (stamp, stamp))
    keep = {f"{c}.snmprec" for c in communities} | {f"{n}.snmprec" for n in own}
    for stale in data.glob("*.snmprec"):
        if stale.name not in keep:
            stale.unlink()
    return data


def _answers(port: int, community: str) -> bool:
    probe = subprocess.run(
        ["snmpget", "-v2c", "-c", community, "-t", "1", "-r", "0", "-On", f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"],
        capture_output=True,
        text=True,
        env={**os.environ, "MIBS": ":"},
        check=False,
    )  # fmt: skip
    return probe.returncode == 0 and "1.3.6.1.2.1.1.3.0" in probe.stdout


@contextmanager
def running_snmpsim(
    communities: Sequence[str] = tuple(CUTS), own: Sequence[str] = (), ready_timeout: float = 180.0
) -> Iterator[SimAgent]:
    """Start snmpsim on 127.0.0.1 at a free UDP port; stop it by PID on exit."""
    import pytest

    try:
        _snmpsim_data()
    except ImportError:
        pytest.skip("snmpsim-data is not installed (pip install snmpsim snmpsim-data)")
    if not RESPONDER.exists() or shutil.which("snmpget") is None:
        pytest.skip("snmpsim-command-responder or snmpget missing (pip install snmpsim; apt install snmp)")
    data = prepare(communities, own)
    root = data_root()
    probe_community = (list(own) or list(communities))[0]
    port = free_udp_port()
    log = root / f"snmpsim-{port}.log"
    proc = subprocess.Popen(
        [str(RESPONDER), f"--data-dir={data}", f"--cache-dir={root / 'cache'}",
         f"--agent-udpv4-endpoint=127.0.0.1:{port}", f"--logging-method=file:{log}", "--log-level=error"],
        env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        give_up = time.monotonic() + ready_timeout
        while proc.poll() is None and time.monotonic() < give_up and not _answers(port, probe_community):
            time.sleep(0.2)
        if proc.poll() is not None or not _answers(port, probe_community):
            text = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
            raise RuntimeError(f"snmpsim did not start answering:\n{text}")
        yield SimAgent("127.0.0.1", port, data, proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.unlink(missing_ok=True)
