"""A hand-made UDP "agent" on 127.0.0.1 that misbehaves on purpose: a fake peer for fault tests only.

It speaks just enough BER (SNMPv2c) to read a request's id and OIDs and to answer with chosen varbinds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

Answer = Callable[[int, bytes, list[str]], bytes | None]
"""(request id, community, requested OIDs) → the datagram to send back, or None for silence."""


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, body: bytes) -> bytes:
    """One BER tag-length-value."""
    return bytes([tag]) + _length(len(body)) + body


def integer(value: int, tag: int = 0x02) -> bytes:
    """A BER INTEGER (or an application type with the same encoding, e.g. Counter32 0x41)."""
    return tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def oid(dotted: str) -> bytes:
    """A BER OBJECT IDENTIFIER."""
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def response(request_id: int, community: bytes, varbinds: list[tuple[str, bytes]]) -> bytes:
    """An SNMPv2c GetResponse with ``varbinds`` (OID, encoded value)."""
    bindings = b"".join(tlv(0x30, oid(o) + v) for o, v in varbinds)
    pdu = tlv(0xA2, integer(request_id) + integer(0) + integer(0) + tlv(0x30, bindings))
    return tlv(0x30, integer(1) + tlv(0x04, community) + pdu)


def _read(data: bytes, at: int) -> tuple[int, bytes, int]:
    tag, length, at = data[at], data[at + 1], at + 2
    if length & 0x80:
        size = length & 0x7F
        length, at = int.from_bytes(data[at : at + size], "big"), at + size
    return tag, data[at : at + length], at + length


def _oid_text(body: bytes) -> str:
    parts, value = [body[0] // 40, body[0] % 40], 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def parse_request(data: bytes) -> tuple[int, bytes, list[str]]:
    """Request id, community and requested OIDs of an SNMPv2c request."""
    _tag, message, _ = _read(data, 0)
    _tag, _version, at = _read(message, 0)
    _tag, community, at = _read(message, at)
    _tag, pdu, _ = _read(message, at)
    _tag, request_id, at = _read(pdu, 0)
    _tag, _status, at = _read(pdu, at)
    _tag, _index, at = _read(pdu, at)
    _tag, bindings, _ = _read(pdu, at)
    oids, at = [], 0
    while at < len(bindings):
        _tag, binding, at = _read(bindings, at)
        _tag, name, _ = _read(binding, 0)
        oids.append(_oid_text(name))
    return int.from_bytes(request_id, "big", signed=True), community, oids


class _Agent(asyncio.DatagramProtocol):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1
        reply = self.answer(*parse_request(data))
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


@asynccontextmanager
async def fake_agent(answer: Answer) -> AsyncIterator[tuple[int, _Agent]]:
    """Run a UDP agent answering with ``answer`` on 127.0.0.1; yields (port, agent)."""
    loop = asyncio.get_running_loop()
    transport, agent = await loop.create_datagram_endpoint(
        lambda: _Agent(answer), local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1], agent
    finally:
        transport.close()
