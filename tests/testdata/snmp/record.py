"""Record real SNMPv2c response datagrams for the decoder-equality tests (run by hand, not by pytest).

Walks Debian's snmpd (started as the tests start it) and, where snmpsim and snmpsim-data are installed,
real-device recordings served by snmpsim on 127.0.0.1, through netwatch's v2c transport, and writes every
datagram it receives as one hex line to ``<source>.hex`` beside this file::

    PYTHONPATH=. .venv/bin/python tests/testdata/snmp/record.py [--snmpsim-cache DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from collectors.snmp import SnmpClient, SnmpCredentials, SnmpError, SnmpTarget
from collectors.snmp.v2c import Peer, V2cTransport
from tests.support.snmpd import free_udp_port, running_snmpd

HERE = Path(__file__).resolve().parent

IF_COLUMNS = [f"1.3.6.1.2.1.2.2.1.{c}" for c in (1, 2, 3, 5, 6, 8, 10, 13, 14, 16, 19, 20)] + [
    f"1.3.6.1.2.1.31.1.1.1.{c}" for c in (1, 6, 10, 15, 18)
]
# (columns walked together, max-repetitions, max rows): what the decoder must read, every SMI type among it.
SNMPD_WALKS: list[tuple[list[str], int, int]] = [
    (["1.3.6.1.2.1.1"], 10, 200),  # system: OctetString, OID, TimeTicks
    (IF_COLUMNS, 25, 5000),  # ifTable + ifXTable: Counter32, Counter64, Gauge32
    ([f"1.3.6.1.2.1.25.2.3.1.{c}" for c in range(1, 8)], 10, 2000),  # hrStorage
    ([f"1.3.6.1.2.1.25.3.2.1.{c}" for c in range(1, 7)], 10, 2000),  # hrDevice
    (["1.3.6.1.2.1.25.3.3.1.2"], 10, 200),  # hrProcessorLoad
    (["1.3.6.1.2.1.4.20.1"], 10, 200),  # ipAddrTable: IpAddress
    (["1.3.6.1.4.1.2021.4", "1.3.6.1.4.1.2021.10.1", "1.3.6.1.4.1.2021.11"], 10, 2000),  # UCD, Opaque
    (["1.3.6.1.6.3.16.1.5.2.1.6", "1.3.6.1.6.3.99"], 5, 200),  # past the end: endOfMibView
]
SNMPD_GETS = [
    ["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0"],
    ["1.3.6.1.2.1.1.6.0", "1.3.6.1.2.1.1.99.0", "1.3.6.1.2.1.1.6", "1.3.6.1.99.1.0"],  # noSuch*
]
DEVICE_WALKS: list[tuple[list[str], int, int]] = [
    (["1.3.6.1.2.1.1"], 10, 100),
    (IF_COLUMNS, 10, 900),
    (["1.3.6.1.2.1.4.20.1", "1.3.6.1.2.1.25", "1.3.6.1.2.1.33"], 10, 300),  # ip, host, UPS-MIB
    (["1.3.6.1.4.1"], 20, 300),  # the vendor's own subtree
]
DEVICES = {
    "cisco-c3560": "network/switch/cisco-c3560.snmprec.bz2",
    "juniper-mx960": "network/router/juniper-mx960-16-1r6-7-a.snmprec.bz2",
    "brocade-fc": "network/switch/brocade-fiber-channel.snmprec.bz2",
    "netapp-fas3270": "storage/netapp-fas3270.snmprec.bz2",
    "apc-ups": "UPS/apc-8932.snmprec",
    "linux-host": "os/linux/unknown-001.snmprec.bz2",
}


async def _walk_all(
    target: SnmpTarget, walks: Sequence[tuple[list[str], int, int]], gets: Sequence[list[str]]
) -> list[bytes]:
    seen: list[bytes] = []

    def tap(data: bytes, _peer: Peer) -> None:
        seen.append(data)

    async with SnmpClient(v2c_transport=V2cTransport(tap=tap)) as client:
        for columns, reps, rows in walks:
            with suppress(SnmpError):  # a bounded walk ends in too_many_rows: what came is recorded
                await client.walk(target, columns, max_repetitions=reps, max_rows=rows)
        for oids in gets:
            await client.get(target, oids)
    return seen


def _write(name: str, datagrams: list[bytes]) -> None:
    path = HERE / f"{name}.hex"
    path.write_text("".join(d.hex() + "\n" for d in datagrams))
    print(f"{path.name}: {len(datagrams)} datagrams, {sum(map(len, datagrams))} bytes")


@contextmanager
def _snmpsim(cache: Path) -> Iterator[tuple[int, Path]]:
    import snmpsim_data  # type: ignore[import-not-found,import-untyped,unused-ignore]

    source = Path(snmpsim_data.__file__).parent / "data"
    data_dir = Path(tempfile.mkdtemp(prefix="netwatch-snmpsim-"))
    try:
        for name, relative in DEVICES.items():
            raw = (source / relative).read_bytes()
            (data_dir / f"{name}.snmprec").write_bytes(
                bz2.decompress(raw) if relative.endswith(".bz2") else raw
            )
        port = free_udp_port()
        responder = shutil.which("snmpsim-command-responder", path=str(Path(sys.executable).parent))
        if responder is None:
            raise SystemExit("snmpsim-command-responder not found beside this Python")
        proc = subprocess.Popen(
            [responder, f"--data-dir={data_dir}", f"--cache-dir={cache}",
             f"--agent-udpv4-endpoint=127.0.0.1:{port}", "--log-level=error"],
            env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"},
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield port, data_dir
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _record_devices(port: int) -> None:
    for name in DEVICES:
        target = SnmpTarget("127.0.0.1", SnmpCredentials.v2c(name), port=port, timeout=10.0, retries=2)
        give_up = time.monotonic() + 120  # snmpsim indexes each recording on first use
        while True:
            try:
                await _walk_all(target, [(["1.3.6.1.2.1.1.1"], 1, 1)], [])
                break
            except SnmpError:
                if time.monotonic() > give_up:
                    raise
        _write(
            f"snmpsim-{name}",
            await _walk_all(target, DEVICE_WALKS, [["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.77.0"]]),
        )


def main() -> None:
    """Record every source into ``tests/testdata/snmp/*.hex``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--snmpsim-cache", type=Path, default=Path(tempfile.gettempdir()) / "netwatch-snmpsim-cache"
    )
    parser.add_argument("--no-snmpsim", action="store_true", help="record only Debian's snmpd")
    args = parser.parse_args()
    with running_snmpd() as agent:
        target = SnmpTarget(agent.address, SnmpCredentials.v2c(agent.community), port=agent.port)
        _write("snmpd-debian12", asyncio.run(_walk_all(target, SNMPD_WALKS, SNMPD_GETS)))
    if not args.no_snmpsim:
        args.snmpsim_cache.mkdir(parents=True, exist_ok=True)
        with _snmpsim(args.snmpsim_cache) as (port, _data_dir):
            asyncio.run(_record_devices(port))


if __name__ == "__main__":
    main()
