"""The demo's SNMP agents' data: snmpsim ``.snmprec`` files made from recordings of real devices.

Each file is cut from a walk in the ``snmpsim-data`` package down to the subtrees netwatch's
profiles read (so snmpsim indexes it in well under a second), renamed after the demo device, and
given moving values with snmpsim's ``numeric`` variation module: WAN and LAN octet counters grow at
a steady rate (so ``netwatch_if_in_bps`` shows traffic against the contracted rate), sysUpTime ticks,
CPU load and UPS input voltage swing on a sine.
"""

from __future__ import annotations

import bz2
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SYSTEM = "1.3.6.1.2.1.1."
IF_TABLE = "1.3.6.1.2.1.2.2.1."
IFX_TABLE = "1.3.6.1.2.1.31.1.1.1."
HOST = ("1.3.6.1.2.1.25.2.3.1.", "1.3.6.1.2.1.25.3.3.1.", "1.3.6.1.4.1.2021.4.", "1.3.6.1.4.1.2021.10.1.")
UPS = ("1.3.6.1.2.1.33.",)
FCMGMT_PORTS = ("1.3.6.1.3.94.1.10.1.2.", "1.3.6.1.3.94.1.10.1.7.")
SW_PORTS = "1.3.6.1.4.1.1588.2.1.1.1.6.2.1."
SW_TX_WORDS, SW_RX_WORDS = f"{SW_PORTS}11.", f"{SW_PORTS}12."
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
_MAX32 = 4_294_967_295

# Real walks the demo's devices are made from (paths under snmpsim_data/data).
ROUTER_SOURCE = "network/router/vyatta-unknown.snmprec.bz2"
SWITCH_SOURCE = "network/switch/cisco-c3560.snmprec.bz2"
SERVER_SOURCE = "os/linux/unknown-002.snmprec.bz2"
SAN_SOURCE = "network/switch/brocade-fiber-channel.snmprec.bz2"
UPS_SOURCE = "UPS/eaton-93e-80.snmprec.bz2"

ROUTER_WAN = (4, "eth1")
"""ifIndex and ifName of the recorded Vyatta router's interface the demo uses as the WAN link."""
ROUTER_LAN = 5
SWITCH_PORTS = 12
"""How many of the Catalyst 3560's 57 interfaces the core switch keeps (a smaller walk per poll)."""

Record = tuple[str, str, str]
"""(OID, snmprec type tag, value) — one line of a ``.snmprec`` file."""


def snmpsim_data_dir() -> Path | None:
    """Where snmpsim-data keeps its recordings, or None when it is not installed."""
    try:
        import snmpsim_data  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(snmpsim_data.__file__).resolve().parent / "data"
    return path if path.is_dir() else None


def read_cut(data: Path, source: str, keep: Iterable[str]) -> list[Record]:
    """The lines of a recording under the ``keep`` subtrees."""
    return list(_read_cut(data, source, tuple(keep)))


@functools.lru_cache(maxsize=16)
def _read_cut(data: Path, source: str, prefixes: tuple[str, ...]) -> tuple[Record, ...]:
    # Cached: nineteen routers are cut from one recording, and decompressing it is most of the work.
    with bz2.open(data / source, "rt", encoding="utf-8", errors="replace") as text:
        return tuple(
            (parts[0], parts[1], parts[2])
            for line in text
            if line.startswith(prefixes) and len(parts := line.rstrip("\n").split("|", 2)) == 3
        )


def render(records: Iterable[Record]) -> str:
    """A ``.snmprec`` text, sorted by OID as snmpsim's GETNEXT walk needs."""
    ordered = sorted(records, key=lambda r: tuple(int(arc) for arc in r[0].split(".")))
    return "".join(f"{oid}|{tag}|{value}\n" for oid, tag, value in ordered)


def _row_index(oid: str, tables: Iterable[str]) -> int | None:
    for table in tables:
        if oid.startswith(table):
            return int(oid[len(table) :].split(".", 1)[1])
    return None


def _numeric(tag: str, value: str, options: str) -> tuple[str, str]:
    """Turn a recorded value into one snmpsim's numeric module moves (``initial`` = the recording)."""
    base = tag.split(":", 1)[0]
    initial = int(value) if value.isdigit() else 0
    if base == "65":
        return f"{base}:numeric", f"{options},initial={initial % _MAX32},max={_MAX32},wrap=1"
    return f"{base}:numeric", f"{options},initial={initial}"


def _identity(records: list[Record], name: str) -> list[Record]:
    out: list[Record] = []
    for oid, tag, value in records:
        if oid == SYS_NAME:
            out.append((oid, "4", name))
        elif oid == SYS_DESCR and tag == "4x":
            # Recorded in hex for its line breaks; plain text reads better in netwatch_device_info.
            out.append((oid, "4", " ".join(bytes.fromhex(value).decode("utf-8", "replace").split())))
        elif oid == SYS_UPTIME:
            out.append((oid, *_numeric(tag, value, "rate=100")))
        else:
            out.append((oid, tag, value))
    return out


@dataclass(frozen=True)
class Traffic:
    """Steady rates in octets per second the WAN interface receives and sends."""

    in_octets: float
    out_octets: float


_COUNTERS = {
    f"{IF_TABLE}10.": "in",
    f"{IFX_TABLE}6.": "in",
    f"{IF_TABLE}16.": "out",
    f"{IFX_TABLE}10.": "out",
}


def router(data: Path, name: str, wan_alias: str, traffic: Traffic) -> str:
    """A router (Vyatta) with a loopback, a WAN and a LAN interface whose octet counters grow."""
    keep_rows = {1, ROUTER_WAN[0], ROUTER_LAN}
    records = _identity(read_cut(data, ROUTER_SOURCE, (SYSTEM, IF_TABLE, IFX_TABLE)), name)
    out: list[Record] = []
    for oid, tag, value in records:
        row = _row_index(oid, (IF_TABLE, IFX_TABLE))
        if row is not None and row not in keep_rows:
            continue
        direction = next((d for prefix, d in _COUNTERS.items() if oid.startswith(prefix)), None)
        if direction is not None and row in (ROUTER_WAN[0], ROUTER_LAN):
            # The LAN side carries the same traffic the other way round.
            inbound = (direction == "in") == (row == ROUTER_WAN[0])
            rate = traffic.in_octets if inbound else traffic.out_octets
            out.append((oid, *_numeric(tag, value, f"rate={rate:.0f}")))
        elif oid == f"{IFX_TABLE}18.{ROUTER_WAN[0]}":
            out.append((oid, "4", wan_alias))
        elif oid == f"{IFX_TABLE}18.{ROUTER_LAN}":
            out.append((oid, "4", "LAN"))
        else:
            out.append((oid, tag, value))
    return render(out)


def switch(data: Path, name: str) -> str:
    """The core switch (Cisco Catalyst 3560), cut to its first ports."""
    records = _identity(read_cut(data, SWITCH_SOURCE, (SYSTEM, IF_TABLE, IFX_TABLE)), name)
    rows = sorted({r for oid, _, _ in records if (r := _row_index(oid, (IF_TABLE,))) is not None})
    keep = set(rows[:SWITCH_PORTS])
    return render(
        r for r in records if (row := _row_index(r[0], (IF_TABLE, IFX_TABLE))) is None or row in keep
    )


def server(data: Path, name: str, cpu_base: float, memory_share: float) -> str:
    """A Linux server (net-snmp): CPU load swinging around ``cpu_base`` %, RAM use scaled by ``memory_share``."""
    records = _identity(read_cut(data, SERVER_SOURCE, (SYSTEM, *HOST)), name)
    out: list[Record] = []
    for oid, tag, value in records:
        if oid.startswith("1.3.6.1.2.1.25.3.3.1.2."):
            swing = f"function=sin,rate=0.02,scale={cpu_base / 2:.0f},offset={cpu_base:.0f},max=100"
            out.append((oid, "2:numeric", swing))
        elif oid == "1.3.6.1.2.1.25.2.3.1.6.1" and value.isdigit():
            out.append((oid, tag, str(int(int(value) * memory_share))))
        else:
            out.append((oid, tag, value))
    return render(out)


def san(data: Path, name: str) -> str:
    """The SAN switch (Brocade Fibre Channel): FCMGMT-MIB port states, SW-MIB port counters that grow.

    The FCMGMT statistics are 64-bit octet strings snmpsim cannot move, so they are left out and
    netwatch's san profile reads Brocade's 32-bit word counters instead, as on a switch whose FA-MIB
    statistics are off.
    """
    records = _identity(read_cut(data, SAN_SOURCE, (SYSTEM, *FCMGMT_PORTS, SW_PORTS)), name)
    online = {
        oid.rsplit(".", 1)[1] for oid, _, value in records if oid.startswith(f"{SW_PORTS}4.") and value == "1"
    }
    out: list[Record] = []
    for oid, tag, value in records:
        port = oid.rsplit(".", 1)[1]
        if oid.startswith((SW_TX_WORDS, SW_RX_WORDS)) and port in online:
            # Words of 4 bytes: 1–6 MB/s per online port, different on each.
            words = 250_000 * (1 + int(port) % 6)
            out.append((oid, *_numeric(tag, value, f"rate={words}")))
        else:
            out.append((oid, tag, value))
    return render(out)


def ups(data: Path, name: str) -> str:
    """The UPS (Eaton 93E 80 kVA, UPS-MIB), on mains, its first input's voltage swinging a little."""
    out: list[Record] = []
    for oid, tag, value in _identity(read_cut(data, UPS_SOURCE, (SYSTEM, *UPS)), name):
        if oid == "1.3.6.1.2.1.33.1.3.3.1.3.1" and value.isdigit():
            out.append((oid, "2:numeric", f"function=sin,rate=0.01,scale=3,offset={value}"))
        else:
            out.append((oid, tag, value))
    return render(out)
