"""net-snmp's own C tools as the reference a walk is compared with."""

from __future__ import annotations

import os
import re
import subprocess

from collectors.snmp import Value

_LINE = re.compile(r"^\.(?P<oid>[\d.]+) = (?:(?P<type>[A-Za-z][\w-]*): ?)?(?P<text>.*)$")
_TYPES = {
    "INTEGER": "Integer32",
    "Counter32": "Counter32",
    "Counter64": "Counter64",
    "Gauge32": "Gauge32",
    "Timeticks": "TimeTicks",
    "Hex-STRING": "OctetString",
    "STRING": "OctetString",
    "OID": "ObjectIdentifier",
    "IpAddress": "IpAddress",
}


def _value(kind: str | None, text: str) -> Value:
    text = text.strip()
    if kind is None:  # an empty string prints as ""
        return Value("OctetString", b"")
    smi = _TYPES[kind]
    if smi == "OctetString":
        return Value(
            smi, bytes.fromhex(text.replace(" ", "")) if kind == "Hex-STRING" else text.strip('"').encode()
        )
    if smi == "ObjectIdentifier":
        return Value(smi, text.lstrip("."))
    if smi == "IpAddress":
        return Value(smi, text)
    return Value(smi, int(text))


def snmpbulkwalk(endpoint: str, community: str, column: str) -> dict[str, Value]:
    """``snmpbulkwalk -v2c -On -Oe -Ot -Ox`` of one column: index suffix → value."""
    out = subprocess.run(
        [
            "snmpbulkwalk",
            "-v2c",
            "-c",
            community,
            "-On",
            "-Oe",
            "-Ot",
            "-Ox",
            "-t",
            "2",
            "-r",
            "1",
            endpoint,
            column,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MIBS": ":"},
        check=True,
        timeout=30,
    ).stdout
    rows: dict[str, tuple[str | None, str]] = {}
    last: str | None = None
    for line in out.splitlines():
        match = _LINE.match(line)
        if match is None:  # a long Hex-STRING continues on the next lines
            if last is not None and line.strip():
                kind, text = rows[last]
                rows[last] = (kind, text + " " + line.strip())
            continue
        if "No Such" in line or "No more variables" in line:
            continue
        last = match["oid"][len(column) + 1 :]
        rows[last] = (match["type"], match["text"])
    return {index: _value(kind, text) for index, (kind, text) in rows.items()}
