"""The v2c BER codec: equal to pysnmp's own decoding on recorded real-device answers, fuzzed, round-tripped.

The recorded datagrams (``tests/testdata/snmp/*.hex``, written by ``record.py`` there) come from Debian's
snmpd and from real-device recordings served by snmpsim: Cisco, Juniper, Brocade, NetApp, APC, Linux.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder as pyasn1_decoder
from pysnmp.proto import api

from collectors.snmp.ber import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NULL,
    BerError,
    FlatResponse,
    Oid,
    Response,
    Value,
    decode_envelope,
    decode_response,
    encode_get,
    encode_get_bulk,
    encode_get_next,
    encode_oid,
    encode_response,
    oid_content,
    open_flat,
    peek_request_id,
    subidentifiers,
)
from collectors.snmp.client import from_pysnmp

TESTDATA = Path(__file__).resolve().parents[2] / "testdata" / "snmp"
SOURCES = sorted(p.stem for p in TESTDATA.glob("*.hex"))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def recorded(source: str) -> tuple[bytes, ...]:
    """The datagrams recorded from one source."""
    lines = (TESTDATA / f"{source}.hex").read_text().split()
    return tuple(bytes.fromhex(line) for line in lines)


@cache
def all_recorded() -> tuple[bytes, ...]:
    """Every recorded datagram, smallest first (hypothesis shrinks towards the start of a list)."""
    return tuple(sorted((d for s in SOURCES for d in recorded(s)), key=len))


class Rejected(Exception):
    """pysnmp does not accept the datagram as an SNMPv2c Response."""


def pysnmp_decode(data: bytes) -> Response:
    """pysnmp's reading of a datagram, in the decoder's terms (the reference)."""
    try:
        message, rest = pyasn1_decoder.decode(data, asn1Spec=api.v2c.Message())
        if rest or int(message["version"]) != 1:
            raise Rejected("trailing bytes or not v2c")
        pdus = message["data"]
        if pdus.getName() != "response":
            raise Rejected("not a Response PDU")
        pdu = api.v2c.apiMessage.get_pdu(message)
        varbinds = [
            (tuple(name.asTuple()), from_pysnmp(value)) for name, value in api.v2c.apiPDU.get_varbinds(pdu)
        ]
        return Response(
            int(api.v2c.apiPDU.get_request_id(pdu)),
            int(api.v2c.apiPDU.get_error_status(pdu)),
            int(
                api.v2c.apiPDU.get_error_index(pdu, muteErrors=True)
            ),  # as pysnmp's command generator reads it
            bytes(api.v2c.apiMessage.get_community(message)),
            varbinds,
        )
    except Rejected:
        raise
    except Exception as exc:  # pyasn1 and pysnmp raise many kinds; any of them means "not accepted"
        raise Rejected(type(exc).__name__) from exc


def flat_decode(data: bytes) -> FlatResponse:
    """The walks' reading of a datagram."""
    return open_flat(decode_envelope(data))


def as_flat(response: Response) -> FlatResponse:
    """A decoded answer in the walks' form: each name as its content octets, then type and value."""
    return FlatResponse(
        response.error_status,
        [item for oid, value in response.varbinds for item in (oid_content(oid), value.type, value.value)],
    )


def assert_same_as_pysnmp_or_rejected(data: bytes) -> None:
    """The property every datagram must have: our answer is pysnmp's, or a BerError; and the walks'
    flat reading is the same answer, or the same refusal."""
    try:
        ours = decode_response(data)
    except BerError:
        with pytest.raises(BerError):
            flat_decode(data)
        return
    assert ours == pysnmp_decode(data)
    assert flat_decode(data) == as_flat(ours)


# -- equality on recorded real answers -------------------------------------------------------------


def test_recordings_cover_every_value_type() -> None:
    seen = {value.type for data in all_recorded() for _oid, value in decode_response(data).varbinds}
    expected = {"Integer32", "OctetString", "ObjectIdentifier", "IpAddress", "Counter32", "Counter64",
                "Gauge32", "TimeTicks", "Opaque", "noSuchObject", "noSuchInstance", "endOfMibView"}  # fmt: skip
    assert expected <= seen, f"recordings lack {expected - seen}"


@pytest.mark.parametrize("source", SOURCES)
def test_decoding_equals_pysnmp_on_every_recorded_datagram(source: str) -> None:
    datagrams = recorded(source)
    assert datagrams, f"{source} has no recorded datagrams"
    for data in datagrams:
        ours = decode_response(data)
        assert ours.varbinds, "a recorded answer without varbinds proves little"
        assert ours == pysnmp_decode(data)  # every field, every varbind, exactly
        assert flat_decode(data) == as_flat(ours)


def test_at_least_four_real_devices_are_recorded() -> None:
    assert len([s for s in SOURCES if s.startswith("snmpsim-")]) >= 4
    assert "snmpd-debian12" in SOURCES


# -- fuzzing ----------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_are_pysnmps_reading_or_a_ber_error(data: bytes) -> None:
    assert_same_as_pysnmp_or_rejected(data)


@FUZZ
@given(st.data())
def test_truncated_recordings_are_rejected(data: st.DataObject) -> None:
    whole = data.draw(st.sampled_from(all_recorded()))
    cut = data.draw(st.integers(0, len(whole) - 1))
    with pytest.raises(BerError):
        decode_response(whole[:cut])
    with pytest.raises(BerError):
        flat_decode(whole[:cut])


@FUZZ
@given(st.data())
def test_bit_flipped_recordings_are_pysnmps_reading_or_a_ber_error(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(all_recorded()[:60]))
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] ^= 1 << data.draw(st.integers(0, 7))
    assert_same_as_pysnmp_or_rejected(bytes(mutated))


@FUZZ
@given(st.data())
def test_spliced_recordings_are_pysnmps_reading_or_a_ber_error(data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(all_recorded()[:60]))
    at = data.draw(st.integers(0, len(original)))
    drop = data.draw(st.integers(0, 8))
    insert = data.draw(st.binary(max_size=8))
    assert_same_as_pysnmp_or_rejected(original[:at] + insert + original[at + drop :])


oids = st.tuples(st.integers(0, 2), st.integers(0, 39), st.lists(st.integers(0, 2**32 - 1), max_size=14)).map(
    lambda t: (t[0], t[1], *t[2])
)


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


_VALUE_TAGS = [0x02, 0x04, 0x05, 0x06, 0x40, 0x41, 0x42, 0x43, 0x44, 0x46, 0x47, 0x80, 0x81, 0x82, 0x83]
# Mostly valid fields and names, so that whole answers often pass every other check; random bytes too.
fields = st.one_of(
    st.integers(0, 300).map(lambda v: v.to_bytes(v.bit_length() // 8 + 1, "big")), st.binary(max_size=6)
)
names = st.one_of(oids.map(lambda o: encode_oid(o)[2:]), st.binary(max_size=12))
tagged = st.tuples(st.one_of(st.sampled_from(_VALUE_TAGS), st.integers(0, 255)), st.binary(max_size=10))


@settings(FUZZ, max_examples=1000)
@given(fields, fields, fields, st.lists(st.tuples(names, tagged), max_size=3))
def test_well_framed_answers_with_random_contents_are_pysnmps_reading_or_a_ber_error(
    request_id: bytes, status: bytes, index: bytes, varbinds: list[tuple[bytes, tuple[int, bytes]]]
) -> None:
    """Valid framing around random field, OID and value contents: where the range and type checks live."""
    binds = b"".join(_tlv(0x30, _tlv(0x06, name) + _tlv(tag, body)) for name, (tag, body) in varbinds)
    pdu = _tlv(0x02, request_id) + _tlv(0x02, status) + _tlv(0x02, index) + _tlv(0x30, binds)
    assert_same_as_pysnmp_or_rejected(_tlv(0x30, b"\x02\x01\x01\x04\x01c" + _tlv(0xA2, pdu)))


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\x84\xff\xff\xff\xff\x02\x01\x01",  # a 4 GiB message in 9 bytes
        b"\x30\x80\x02\x01\x01\x00\x00",  # indefinite length
        b"\x30\x85\x01\x00\x00\x00\x00",  # a length of five octets
        bytes.fromhex("301a020101040170a212020101020100020100300730050603" + "2b06ff"),  # arc cut short
    ],
)
def test_lengths_beyond_the_datagram_are_refused_before_reading(data: bytes) -> None:
    with pytest.raises(BerError):
        decode_response(data)


# -- encoding ---------------------------------------------------------------------------------------

values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda v: Value("Integer32", v)),
    st.binary(max_size=300).map(lambda v: Value("OctetString", v)),
    st.binary(max_size=40).map(lambda v: Value("Opaque", v)),
    oids.map(lambda o: Value("ObjectIdentifier", ".".join(map(str, o)))),
    st.integers(0, 2**32 - 1).map(lambda v: Value("IpAddress", str(ipaddress.IPv4Address(v)))),
    st.builds(Value, st.sampled_from(["Counter32", "Gauge32", "TimeTicks"]), st.integers(0, 2**32 - 1)),
    st.integers(0, 2**64 - 1).map(lambda v: Value("Counter64", v)),
    st.sampled_from([NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW]),
)


@FUZZ
@given(
    st.integers(-(2**31), 2**31 - 1),
    st.binary(min_size=1, max_size=32),
    st.lists(st.tuples(oids, values), max_size=30),
    st.integers(0, 18),
)
def test_encoded_responses_decode_to_what_was_encoded_here_and_in_pysnmp(
    request_id: int, community: bytes, varbinds: list[tuple[Oid, Value]], status: int
) -> None:
    data = encode_response(request_id, community, varbinds, error_status=status, error_index=len(varbinds))
    expected = Response(request_id, status, len(varbinds), community, varbinds)
    assert decode_response(data) == expected
    assert pysnmp_decode(data) == expected
    assert flat_decode(data) == as_flat(expected)
    assert peek_request_id(data) == request_id


@FUZZ
@given(oids, st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6))
def test_a_row_index_reads_back_from_the_tail_of_its_name(column: Oid, index: list[int]) -> None:
    """What a walk does with a name: the column's content octets, then the index's arcs."""
    name = oid_content((*column, *index))
    head = oid_content(column)
    assert name.startswith(head)
    assert subidentifiers(name[len(head) :]) == tuple(index)


def _pysnmp_request(data: bytes) -> tuple[str, int, bytes, list[Oid], Any]:
    message, rest = pyasn1_decoder.decode(data, asn1Spec=api.v2c.Message())
    assert not rest
    pdu = api.v2c.apiMessage.get_pdu(message)
    names = [tuple(name.asTuple()) for name, _value in api.v2c.apiPDU.get_varbinds(pdu)]
    return message["data"].getName(), int(pdu["request-id"]), bytes(message["community"]), names, pdu


@given(st.integers(-(2**31), 2**31 - 1), st.lists(oids, min_size=1, max_size=20), st.integers(0, 1000))
@FUZZ
def test_requests_read_back_in_pysnmp_as_sent(request_id: int, names: list[Oid], reps: int) -> None:
    kind, rid, community, got, _ = _pysnmp_request(encode_get(request_id, b"public", names))
    assert (kind, rid, community, got) == ("get-request", request_id, b"public", names)
    kind, _, _, got, _ = _pysnmp_request(encode_get_next(request_id, b"public", names))
    assert (kind, got) == ("get-next-request", names)
    kind, _, _, got, pdu = _pysnmp_request(encode_get_bulk(request_id, b"public", names, reps, 1))
    assert (kind, got) == ("get-bulk-request", names)
    assert (int(pdu["max-repetitions"]), int(pdu["non-repeaters"])) == (reps, 1)


def test_a_request_is_not_a_response() -> None:
    with pytest.raises(BerError):
        decode_response(encode_get(7, b"public", [(1, 3, 6, 1, 2, 1, 1, 5, 0)]))
