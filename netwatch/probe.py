"""``netwatch probe``: one look at a device now — an ICMP round and, given credentials, its SNMP
system info and interfaces with rates measured over a few seconds.

It polls through the same collectors and counter code as the daemon, so what it shows is what the
daemon would record.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from collectors.base import CollectContext, CollectResult, Target
from collectors.icmp import IcmpEngine, IcmpPermissionError, RoundResult
from collectors.snmp.collector import SnmpParams, collect, open_snmp_resources
from collectors.snmp.credentials import SnmpCredentials
from netwatch.counters import CounterBook

PROBE_CREDENTIAL = "probe"


@dataclass(slots=True)
class InterfaceRow:
    """One interface as the probe shows it."""

    ifindex: str
    name: str = ""
    alias: str = ""
    oper_up: bool | None = None
    speed_bps: float | None = None
    in_bps: float | None = None
    out_bps: float | None = None


@dataclass(slots=True)
class ProbeReport:
    """What one probe found."""

    address: str
    icmp: RoundResult | None = None
    icmp_error: str | None = None
    snmp_error: str | None = None
    sysname: str = ""
    sysdescr: str = ""
    uptime_seconds: float | None = None
    interfaces: list[InterfaceRow] = field(default_factory=list)


def split_address(value: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 literal → (host, port or None)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        if port.isdigit():
            return host, int(port)
    return value, None


async def run_probe(
    address: str,
    *,
    credentials: SnmpCredentials | None,
    probes: int = 5,
    spacing: float = 0.2,
    timeout: float = 1.0,
    rate_seconds: float = 3.0,
) -> ProbeReport:
    """Probe ``address`` (``HOST[:PORT]``; the port is SNMP's)."""
    host, port = split_address(address)
    report = ProbeReport(address=host)
    try:
        async with await IcmpEngine.open() as engine:
            report.icmp = await engine.round(host, probes=probes, probe_spacing=spacing, timeout=timeout)
    except IcmpPermissionError as exc:
        report.icmp_error = str(exc)
    if credentials is not None:
        await _snmp(report, Target(key=host, address=host, port=port), credentials, timeout, rate_seconds)
    return report


async def _snmp(
    report: ProbeReport, target: Target, credentials: SnmpCredentials, timeout: float, rate_seconds: float
) -> None:
    resources = open_snmp_resources({PROBE_CREDENTIAL: credentials})
    ctx = CollectContext({"snmp": resources})
    params = SnmpParams(
        credential=PROBE_CREDENTIAL, profiles=["system", "if-mib"], timeout=timeout, retries=1
    )
    book = CounterBook()
    try:
        first = await collect(target, params, ctx)
        if not first.success:
            report.snmp_error = f"{first.reason}: {first.error}"
            return
        book.apply(first, time.monotonic())
        await asyncio.sleep(rate_seconds)
        second = await collect(target, params, ctx)
        if second.success:
            book.apply(second, time.monotonic())
        else:
            report.snmp_error = f"{second.reason}: {second.error}"
        _fill(report, second if second.success else first, book)
    finally:
        await resources.close()


def _fill(report: ProbeReport, result: CollectResult, book: CounterBook) -> None:
    info = result.details.get("info") or {}
    report.sysname = str(info.get("sysname") or "")
    report.sysdescr = str(info.get("sysdescr") or "")
    report.uptime_seconds = result.value("device_uptime_seconds")
    rows: dict[str, InterfaceRow] = {}
    for m in result.measurements:
        labels = dict(m.labels)
        if "ifindex" not in labels:
            continue
        row = rows.setdefault(
            labels["ifindex"],
            InterfaceRow(labels["ifindex"], labels.get("ifname", ""), labels.get("ifalias", "")),
        )
        if m.name == "if_oper_up":
            row.oper_up = m.value == 1
        elif m.name == "if_speed_bps":
            row.speed_bps = m.value
    for (name, series), _, rate in book.scaled():
        found = rows.get(dict(series).get("ifindex", ""))
        if found is None or rate is None:
            continue
        if name == "if_in_octets":
            found.in_bps = rate * 8
        elif name == "if_out_octets":
            found.out_bps = rate * 8
    report.interfaces = sorted(rows.values(), key=lambda r: int(r.ifindex) if r.ifindex.isdigit() else 0)
