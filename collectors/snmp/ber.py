"""A pure BER codec for SNMPv2c: encode Get/GetNext/GetBulk requests, decode Response PDUs.

The fast path under :class:`collectors.snmp.client.SnmpClient` for v2c: pysnmp and pyasn1 spend about
240 µs of CPU per varbind, this about 2. It accepts exactly what pysnmp's own decoding accepts or less:
whatever it returns equals pysnmp's reading of the same bytes (proven on recorded real-device answers and
fuzzed in ``tests/collectors/snmp/test_ber.py``); anything else raises :class:`BerError`, its only error.
Every length is checked against the bytes at hand before anything is sliced, so a hostile datagram costs
at most its own size.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

Oid = tuple[int, ...]


class Value(NamedTuple):
    """One SNMP value as plain Python: its SMI type name and an int, bytes or dotted-OID/IP string."""

    type: str
    value: int | bytes | str


class BerError(ValueError):
    """A datagram is not a well-formed SNMPv2c message of the kind expected (never shows its bytes)."""


class Response(NamedTuple):
    """A decoded SNMPv2c Response PDU; varbinds are (OID as a tuple of arcs, value)."""

    request_id: int
    error_status: int
    error_index: int
    community: bytes
    varbinds: list[tuple[Oid, Value]]


GET: Final = 0xA0
GET_NEXT: Final = 0xA1
RESPONSE: Final = 0xA2
GET_BULK: Final = 0xA5

NULL: Final = Value("Null", b"")
NO_SUCH_OBJECT: Final = Value("noSuchObject", b"")
NO_SUCH_INSTANCE: Final = Value("noSuchInstance", b"")
END_OF_MIB_VIEW: Final = Value("endOfMibView", b"")
ABSENT: Final = frozenset({NULL.type, NO_SUCH_OBJECT.type, NO_SUCH_INSTANCE.type, END_OF_MIB_VIEW.type})
"""Value types that stand for "no value here" (Null and the three SNMPv2 exceptions)."""

ERROR_STATUS: Final[Mapping[int, str]] = dict(
    enumerate(
        [
            "noError",
            "tooBig",
            "noSuchName",
            "badValue",
            "readOnly",
            "genErr",
            "noAccess",
            "wrongType",
            "wrongLength",
            "wrongEncoding",
            "wrongValue",
            "noCreation",
            "inconsistentValue",
            "resourceUnavailable",
            "commitFailed",
            "undoFailed",
            "authorizationError",
            "notWritable",
            "inconsistentName",
        ]
    )
)
"""RFC 3416 error-status numbers → the names pysnmp prints for them."""

_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_UINT64 = (0, 2**64 - 1)
_MAX_INDEX = 2**31 - 1
_MAX_OCTETS = 65535
_VERSION_2C = 1


# -- decoding -----------------------------------------------------------------------------------------


def _header(data: bytes, at: int, end: int, tag: int) -> tuple[int, int]:
    """Check the tag at ``at``; return (content start, content end), the end never past ``end``."""
    if at + 2 > end or data[at] != tag:
        raise BerError(f"expected tag 0x{tag:02x} at offset {at}")
    n = data[at + 1]
    at += 2
    if n & 0x80:
        size = n & 0x7F
        # 0x80 is the indefinite form, which SNMP never uses; more than 4 octets is beyond any datagram.
        if size == 0 or size > 4 or at + size > end:
            raise BerError(f"bad length at offset {at - 1}")
        n = int.from_bytes(data[at : at + size], "big")
        at += size
    if at + n > end:
        raise BerError(f"length {n} at offset {at} runs past the end")
    return at, at + n


def _integer(body: bytes, low: int, high: int) -> int:
    # pyasn1 reads an empty INTEGER as 0; refusing it is stricter, never different.
    if not body or len(body) > 9:
        raise BerError("bad INTEGER length")
    value = int.from_bytes(body, "big", signed=True)
    if not low <= value <= high:
        raise BerError("INTEGER out of range for its type")
    return value


def _split_first(first: int) -> Oid:
    return (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)


def oid_arcs(body: bytes) -> Oid:
    """The arcs of an OBJECT IDENTIFIER from its content octets (a name the decoder accepted)."""
    if not body:
        raise BerError("empty OBJECT IDENTIFIER")
    if body.isascii():  # every arc below 128: done in C
        return _split_first(body[0]) + tuple(body[1:])
    # Table indexes (ifIndex ≥ 128, addresses) sit at the end: an all-ASCII head is whole arcs, in C.
    cut = len(body) - 6
    if cut > 0 and body[:cut].isascii():
        return _split_first(body[0]) + tuple(body[1:cut]) + _multi_octet(body[cut:])
    arcs = _multi_octet(body)
    return _split_first(arcs[0]) + arcs[1:]


def _multi_octet(body: bytes) -> Oid:
    arcs: list[int] = []
    append = arcs.append
    value = 0
    for byte in body:
        if byte < 0x80:
            append(value | byte)
            value = 0
        elif value:
            # pyasn1 allows 20 octets to an arc; 10 already exceed any SNMP arc (2^32 - 1).
            if value >> 56:
                raise BerError("OBJECT IDENTIFIER arc too long")
            value = (value | (byte & 0x7F)) << 7
        elif byte == 0x80:
            raise BerError("OBJECT IDENTIFIER arc with a leading 0x80")
        else:
            value = (byte & 0x7F) << 7
    if value:
        raise BerError("OBJECT IDENTIFIER ends inside an arc")
    return tuple(arcs)


def _dotted(arcs: Oid) -> str:
    return ".".join(map(str, arcs))


def _empty(value: Value) -> Callable[[bytes], Value]:
    def decode(body: bytes) -> Value:
        if body:
            raise BerError(f"{value.type} with content")
        return value

    return decode


def _ranged(name: str, low: int, high: int) -> Callable[[bytes], Value]:
    def decode(body: bytes) -> Value:
        return Value(name, _integer(body, low, high))

    return decode


def _octets(name: str) -> Callable[[bytes], Value]:
    def decode(body: bytes) -> Value:
        if len(body) > _MAX_OCTETS:
            raise BerError(f"{name} longer than {_MAX_OCTETS} octets")
        return Value(name, body)

    return decode


def _ip_address(body: bytes) -> Value:
    if len(body) != 4:
        raise BerError("IpAddress not 4 octets")
    return Value("IpAddress", f"{body[0]}.{body[1]}.{body[2]}.{body[3]}")


def _object_identifier(body: bytes) -> Value:
    return Value("ObjectIdentifier", _dotted(oid_arcs(body)))


_DECODERS: Final[Mapping[int, Callable[[bytes], Value]]] = {
    0x02: _ranged("Integer32", *_INT32),
    0x04: _octets("OctetString"),
    0x05: _empty(NULL),
    0x06: _object_identifier,
    0x40: _ip_address,
    0x41: _ranged("Counter32", *_UINT32),
    0x42: _ranged("Gauge32", *_UINT32),
    0x43: _ranged("TimeTicks", *_UINT32),
    0x44: _octets("Opaque"),
    0x46: _ranged("Counter64", *_UINT64),
    0x80: _empty(NO_SUCH_OBJECT),
    0x81: _empty(NO_SUCH_INSTANCE),
    0x82: _empty(END_OF_MIB_VIEW),
}


_INTEGERS: Final[Mapping[int, tuple[str, int, int]]] = {
    0x02: ("Integer32", *_INT32),
    0x41: ("Counter32", *_UINT32),
    0x42: ("Gauge32", *_UINT32),
    0x43: ("TimeTicks", *_UINT32),
    0x46: ("Counter64", *_UINT64),
}
"""The integer types, decoded inline in :func:`_flat_varbinds` (most values of a table walk)."""


_OID_CONTENT: Final = re.compile(rb"(?:(?:[\x81-\xff][\x80-\xff]{0,7})?[\x00-\x7f])+")
"""Well-formed OBJECT IDENTIFIER content octets, as :func:`oid_arcs` reads them: arcs of at most nine
octets (the tenth would pass 2^63), none starting with 0x80, the last octet ending an arc."""

Flat = list[Any]
"""Decoded varbinds as one flat list, three items per varbind: the OID's content octets (``bytes``, as
on the wire), the value's SMI type name (``str``), and the value as :class:`Value` holds it."""


def _flat_varbinds(data: bytes, at: int, end: int) -> Flat:  # noqa: C901  (inlined on purpose)
    # The hot loop of every walk: lengths and integers are read inline, and nothing is built per
    # varbind but the OID's bytes and its value; a walk reads the row index off the OID's tail.
    # (A cache of decoded OIDs won in a small-table benchmark and lost 50 % at 5,000 interfaces.)
    out: Flat = []
    append = out.append
    decoders, integers, well_formed = _DECODERS, _INTEGERS, _OID_CONTENT.fullmatch
    from_bytes = int.from_bytes
    while at < end:
        # Short-form lengths are read inline (every varbind of a real answer has them); _header does the rest.
        n = data[at + 1] if at + 2 <= end and data[at] == 0x30 else 0x80
        if n < 0x80:
            at += 2
            bind_end = at + n
            if bind_end > end:
                raise BerError(f"length {n} at offset {at} runs past the end")
        else:
            at, bind_end = _header(data, at, end, 0x30)
        n = data[at + 1] if at + 2 <= bind_end and data[at] == 0x06 else 0x80
        if n < 0x80:
            at += 2
            name_end = at + n
            if name_end > bind_end:
                raise BerError(f"length {n} at offset {at} runs past the end")
        else:
            at, name_end = _header(data, at, bind_end, 0x06)
        name = data[at:name_end]
        if not name or not (name.isascii() or well_formed(name)):
            raise BerError(f"malformed OBJECT IDENTIFIER at offset {at}")
        if name_end + 2 > bind_end:
            raise BerError(f"varbind without a value at offset {name_end}")
        tag = data[name_end]
        n = data[name_end + 1]
        if n < 0x80:
            at = name_end + 2
            value_end = at + n
        else:
            at, value_end = _header(data, name_end, bind_end, tag)
        if value_end != bind_end:
            raise BerError(f"varbind length disagrees with its value's at offset {name_end}")
        integer = integers.get(tag)
        if integer is not None:
            # pyasn1 reads an empty INTEGER as 0; refusing it is stricter, never different.
            if not 0 < value_end - at <= 9:
                raise BerError("bad INTEGER length")
            type_name, low, high = integer
            value = from_bytes(data[at:value_end], "big", signed=True)
            if not low <= value <= high:
                raise BerError("INTEGER out of range for its type")
            append(name)
            append(type_name)
            append(value)
        else:
            decode = decoders.get(tag)
            if decode is None:
                raise BerError(f"unknown value tag 0x{tag:02x} at offset {name_end}")
            decoded = decode(data[at:value_end])
            append(name)
            append(decoded.type)
            append(decoded.value)
        at = bind_end
    return out


def _varbinds(data: bytes, at: int, end: int) -> list[tuple[Oid, Value]]:
    flat = _flat_varbinds(data, at, end)
    new = tuple.__new__
    return [(oid_arcs(flat[i]), new(Value, (flat[i + 1], flat[i + 2]))) for i in range(0, len(flat), 3)]


def subidentifiers(content: bytes) -> Oid:
    """The arcs of OID content octets that do not begin an OID (a row index after its column's
    prefix), from a name the decoder accepted."""
    return tuple(content) if content.isascii() else _multi_octet(content)


def oid_content(oid: Oid) -> bytes:
    """The content octets of an OID (its BER encoding less tag and length): what
    :class:`FlatResponse` carries for names."""
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40) or min(oid) < 0:
        raise BerError("not an encodable OBJECT IDENTIFIER")
    return _base128(40 * oid[0] + oid[1]) + b"".join(_base128(arc) for arc in oid[2:])


class Envelope(NamedTuple):
    """A Response datagram read up to its varbinds: enough to match it to its request.

    The varbinds are decoded by :func:`open_envelope` when the request's coroutine takes the answer,
    not when the datagram is read: a busy loop reads hundreds of answers before their requests run
    again, and their decoded varbinds (three objects each) were most of what every young garbage
    collection had to scan at province scale (200,000 varbinds waiting, ``benchmarks/soak.py``).
    """

    request_id: int
    error_status: int
    error_index: int
    community: bytes
    data: bytes
    varbinds_at: int


def decode_envelope(data: bytes) -> Envelope:
    """Check one SNMPv2c Response datagram up to its varbind list; raises :class:`BerError`."""
    data = bytes(data)
    end = len(data)
    at, message_end = _header(data, 0, end, 0x30)
    if message_end != end:
        raise BerError("trailing bytes after the message")
    at, field_end = _header(data, at, end, 0x02)
    if _integer(data[at:field_end], *_INT32) != _VERSION_2C:
        raise BerError("not an SNMPv2c message")
    at, field_end = _header(data, field_end, end, 0x04)
    community = data[at:field_end]
    at, pdu_end = _header(data, field_end, end, RESPONSE)
    if pdu_end != end:
        raise BerError("trailing bytes after the PDU")
    at, field_end = _header(data, at, end, 0x02)
    request_id = _integer(data[at:field_end], *_INT32)
    at, field_end = _header(data, field_end, end, 0x02)
    error_status = _integer(data[at:field_end], 0, _MAX_INDEX)
    at, field_end = _header(data, field_end, end, 0x02)
    error_index = _integer(data[at:field_end], 0, _MAX_INDEX)
    at, list_end = _header(data, field_end, end, 0x30)
    if list_end != end:
        raise BerError("trailing bytes after the varbind list")
    return Envelope(request_id, error_status, error_index, community, data, at)


def open_envelope(envelope: Envelope) -> Response:
    """Decode the varbinds of a checked datagram; raises :class:`BerError` if they are malformed."""
    varbinds = _varbinds(envelope.data, envelope.varbinds_at, len(envelope.data))
    # An error-index past the last varbind is clamped to it, as pysnmp's command generator does.
    return Response(
        envelope.request_id,
        envelope.error_status,
        min(envelope.error_index, len(varbinds)),
        envelope.community,
        varbinds,
    )


class FlatResponse(NamedTuple):
    """A checked Response's error-status and its varbinds as :data:`Flat` (what a walk files)."""

    error_status: int
    varbinds: Flat


def open_flat(envelope: Envelope) -> FlatResponse:
    """Decode the varbinds of a checked datagram without a tuple of arcs or a :class:`Value` per
    varbind; raises :class:`BerError` exactly where :func:`open_envelope` does."""
    return FlatResponse(
        envelope.error_status, _flat_varbinds(envelope.data, envelope.varbinds_at, len(envelope.data))
    )


def decode_response(data: bytes) -> Response:
    """Decode one SNMPv2c Response datagram; raises :class:`BerError` for anything else."""
    return open_envelope(decode_envelope(data))


def peek_request_id(data: bytes) -> int | None:
    """The request-id of an SNMPv2c PDU without decoding its varbinds; None if it cannot be read."""
    try:
        end = len(data)
        at, _ = _header(data, 0, end, 0x30)
        at, field_end = _header(data, at, end, 0x02)
        at, field_end = _header(data, field_end, end, 0x04)
        if field_end + 2 > end:
            return None
        at, _ = _header(data, field_end, end, data[field_end])
        at, field_end = _header(data, at, end, 0x02)
        return _integer(data[at:field_end], *_INT32)
    except BerError:
        return None


# -- encoding -----------------------------------------------------------------------------------------


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + body


def _encode_integer(value: int, tag: int = 0x02) -> bytes:
    return _tlv(tag, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _base128(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def encode_oid(oid: Oid) -> bytes:
    """A BER OBJECT IDENTIFIER (tag and length included)."""
    return _tlv(0x06, oid_content(oid))


_TAGS: Final[Mapping[str, int]] = {
    "Integer32": 0x02,
    "OctetString": 0x04,
    "Null": 0x05,
    "ObjectIdentifier": 0x06,
    "IpAddress": 0x40,
    "Counter32": 0x41,
    "Gauge32": 0x42,
    "TimeTicks": 0x43,
    "Opaque": 0x44,
    "Counter64": 0x46,
    "noSuchObject": 0x80,
    "noSuchInstance": 0x81,
    "endOfMibView": 0x82,
}


def encode_value(value: Value) -> bytes:
    """A :class:`Value` as BER (for requests' Null and for agents in tests)."""
    tag = _TAGS.get(value.type)
    if tag is None:
        raise BerError(f"cannot encode value type {value.type}")
    raw = value.value
    if value.type in ABSENT:
        return bytes((tag, 0))
    if isinstance(raw, int):
        return _encode_integer(raw, tag)
    if isinstance(raw, bytes):
        return _tlv(tag, raw)
    if value.type == "IpAddress":
        return _tlv(tag, bytes(int(part) for part in raw.split(".")))
    return bytes((tag,)) + encode_oid(tuple(int(arc) for arc in raw.split(".")))[1:]


_NULL_VALUE: Final = b"\x05\x00"


def _message(community: bytes, pdu_tag: int, request_id: int, second: int, third: int, binds: bytes) -> bytes:
    pdu = _encode_integer(request_id) + _encode_integer(second) + _encode_integer(third) + _tlv(0x30, binds)
    return _tlv(0x30, b"\x02\x01\x01" + _tlv(0x04, community) + _tlv(pdu_tag, pdu))


def _request_binds(oids: Iterable[Oid]) -> bytes:
    return b"".join(map(_request_bind, oids))


@functools.lru_cache(maxsize=65_536)
def _request_bind(oid: Oid) -> bytes:
    # A poller asks for the same few hundred OIDs every interval (column heads, then the same rows):
    # encoding each again was 8 % of the event loop in the SNMP soak.
    return _tlv(0x30, encode_oid(oid) + _NULL_VALUE)


def encode_get(request_id: int, community: bytes, oids: Sequence[Oid]) -> bytes:
    """An SNMPv2c GetRequest datagram."""
    return _message(community, GET, request_id, 0, 0, _request_binds(oids))


def encode_get_next(request_id: int, community: bytes, oids: Sequence[Oid]) -> bytes:
    """An SNMPv2c GetNextRequest datagram."""
    return _message(community, GET_NEXT, request_id, 0, 0, _request_binds(oids))


def encode_get_bulk(
    request_id: int, community: bytes, oids: Sequence[Oid], max_repetitions: int, non_repeaters: int = 0
) -> bytes:
    """An SNMPv2c GetBulkRequest datagram."""
    return _message(community, GET_BULK, request_id, non_repeaters, max_repetitions, _request_binds(oids))


def encode_response(
    request_id: int,
    community: bytes,
    varbinds: Sequence[tuple[Oid, Value]],
    *,
    error_status: int = 0,
    error_index: int = 0,
) -> bytes:
    """An SNMPv2c Response datagram (what an agent sends; for tests and simulated agents)."""
    binds = b"".join(_tlv(0x30, encode_oid(oid) + encode_value(value)) for oid, value in varbinds)
    return _message(community, RESPONSE, request_id, error_status, error_index, binds)


def dotted(oid: Oid) -> str:
    """An OID tuple as dotted text."""
    return _dotted(oid)
