"""The SNMP transport: GET and multi-column GETBULK walks, v2c on a fast path, v3 over one pysnmp engine.

The only module in netwatch that imports pysnmp. SNMPv2c goes by default through netwatch's own BER codec
and shared UDP socket (:mod:`collectors.snmp.ber`, :mod:`collectors.snmp.v2c`): pysnmp costs ~240 µs of
CPU per varbind, that path a few. ``fast_v2c=False`` keeps v2c on pysnmp; v3 security is always pysnmp's.
Everything it returns is plain Python (:class:`Value`), everything it raises is a :class:`SnmpError` with a stable ``reason`` token and a message that never
contains a community or key. OIDs are numeric strings and MIBs are never looked up (``lookupMib=False``
halves the CPU per varbind, and this machine has no MIB files anyway).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    usmAesBlumenthalCfb192Protocol,
    usmAesBlumenthalCfb256Protocol,
    usmAesCfb128Protocol,
    usmAesCfb192Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
    usmNoAuthProtocol,
    usmNoPrivProtocol,
)
from pysnmp.proto import errind

from collectors.snmp.ber import (
    ABSENT,
    END_OF_MIB_VIEW,
    ERROR_STATUS,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NULL,
    Envelope,
    Flat,
    Oid,
    encode_get,
    encode_get_bulk,
    oid_arcs,
    oid_content,
    open_envelope,
    open_flat,
    subidentifiers,
)
from collectors.snmp.ber import (
    Value as Value,
)
from collectors.snmp.credentials import SnmpCredentials, SnmpTarget
from collectors.snmp.v2c import RequestTimeout, SendFailed, V2cTransport

log = logging.getLogger(__name__)

SYS_DESCR: Final = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID: Final = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME: Final = "1.3.6.1.2.1.1.3.0"
SYS_NAME: Final = "1.3.6.1.2.1.1.5.0"

AUTH_PROTOCOLS: Final[Mapping[str, Any]] = {
    "MD5": usmHMACMD5AuthProtocol,
    "SHA": usmHMACSHAAuthProtocol,
    "SHA-224": usmHMAC128SHA224AuthProtocol,
    "SHA-256": usmHMAC192SHA256AuthProtocol,
    "SHA-384": usmHMAC256SHA384AuthProtocol,
    "SHA-512": usmHMAC384SHA512AuthProtocol,
}
# net-snmp's AES-192/AES-256 extend the key as draft-blumenthal-aes-usm-04 says; its "-C" variants repeat
# password-to-key (draft-reeder, Cisco's way). pysnmp names the Reeder ones usmAesCfb192/256Protocol.
# Proven against snmpd by tests/collectors/snmp/test_client_v3.py (SHA-1 auth, where they differ).
PRIV_PROTOCOLS: Final[Mapping[str, Any]] = {
    "DES": usmDESPrivProtocol,
    "AES": usmAesCfb128Protocol,
    "AES-192": usmAesBlumenthalCfb192Protocol,
    "AES-256": usmAesBlumenthalCfb256Protocol,
    "AES-192-C": usmAesCfb192Protocol,
    "AES-256-C": usmAesCfb256Protocol,
}

_AUTH_FAILURES: Final[Mapping[type[Exception], str]] = {
    errind.UnknownUserName: "unknown user name (usmStatsUnknownUserNames): the agent has no such user",
    errind.WrongDigest: "wrong digest (usmStatsWrongDigests): wrong auth key or auth protocol",
    errind.DecryptionError: "decryption error (usmStatsDecryptionErrors): wrong priv key or priv protocol",
    errind.NotInTimeWindow: "not in time window (usmStatsNotInTimeWindows): engine boots/time out of sync",
    errind.UnknownEngineID: "unknown engine ID (usmStatsUnknownEngineIDs)",
    errind.UnsupportedSecurityLevel: "unsupported security level (usmStatsUnsupportedSecLevels)",
    errind.AuthenticationFailure: "authentication failure: the answer's digest does not match",
    errind.AuthenticationError: "authentication error: the answer could not be authenticated",
    errind.UnknownSecurityName: "unknown security name",
}


@dataclass(frozen=True, slots=True)
class SystemInfo:
    """The SNMPv2-MIB system group scalars netwatch reads from every device."""

    descr: str | None
    object_id: str | None
    uptime_ticks: int | None
    name: str | None


@dataclass(slots=True)
class Riders:
    """Scalars a walk reads in its first request instead of a GET of their own (one request per poll).

    Each rides as a GETBULK non-repeater, a GETNEXT from just before it: ``X.0`` from ``X``, ``P.k``
    from ``P.(k-1)``. An answer naming the scalar is its value; one past it says the agent has none
    (GETNEXT returns the next object that exists); one before it (``P.(k-1)`` has descendants) leaves
    it undecided, and the walk GETs it at the end. The walk fills :attr:`values` and sets
    :attr:`answered` with its first answer, so a caller keeps them even when the walk then fails.
    """

    oids: Sequence[str]
    values: dict[str, Value] = field(default_factory=dict)
    answered: bool = False


class SnmpError(Exception):
    """An SNMP request failed; ``reason`` is a stable token, the message never holds a secret.

    Reasons: ``timeout``, ``auth``, ``protocol``, ``agent`` (an error-status from the agent), ``loop``
    (an agent returned OIDs that do not increase), ``too_many_rows``. ``partial`` holds what a walk
    read before it failed (column → index → value), so a caller may keep it.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        endpoint: str = "",
        partial: Mapping[str, Mapping[str, Value]] | None = None,
    ) -> None:
        self.reason = reason
        self.message = message
        self.endpoint = endpoint
        self.partial: Mapping[str, Mapping[str, Value]] = partial or {}
        super().__init__(f"{endpoint}: {message}" if endpoint else message)

    def __repr__(self) -> str:
        return f"SnmpError(reason={self.reason!r}, message={str(self)!r})"


def _int(v: Any) -> int:
    return int(v)


def _octets(v: Any) -> bytes:
    return bytes(v.asOctets())


def _oid(v: Any) -> str:
    return ".".join(map(str, v.asTuple()))


def _ip(v: Any) -> str:
    return socket.inet_ntoa(v.asOctets())


# pysnmp class name → (SMI type name, converter); Unsigned32 and Gauge32 share a tag on the wire.
_CONVERTERS: Final[Mapping[str, tuple[str, Any]]] = {
    "Integer": ("Integer32", _int),
    "Integer32": ("Integer32", _int),
    "Counter32": ("Counter32", _int),
    "Counter64": ("Counter64", _int),
    "Gauge32": ("Gauge32", _int),
    "Unsigned32": ("Gauge32", _int),
    "TimeTicks": ("TimeTicks", _int),
    "OctetString": ("OctetString", _octets),
    "Bits": ("OctetString", _octets),
    "Opaque": ("Opaque", _octets),
    "ObjectIdentifier": ("ObjectIdentifier", _oid),
    "ObjectName": ("ObjectIdentifier", _oid),
    "IpAddress": ("IpAddress", _ip),
}
_EXCEPTIONS: Final[Mapping[str, Value]] = {
    "NoSuchObject": NO_SUCH_OBJECT,
    "NoSuchInstance": NO_SUCH_INSTANCE,
    "EndOfMibView": END_OF_MIB_VIEW,
    "Null": NULL,
}

Rows = list[tuple[Oid, Value]]
R = TypeVar("R")
_MAX_KNOWN_INDEXES: Final = 65_536
"""Row indexes remembered by their OID tail (see :class:`_Walk`); past this many, forgotten at once."""


def from_pysnmp(value: Any) -> Value:
    """A pysnmp value as a :class:`Value`, the SNMPv2 exceptions and Null as the ``ber`` constants."""
    name = type(value).__name__
    known = _CONVERTERS.get(name)
    if known is None:
        exception = _EXCEPTIONS.get(name)
        if exception is None:
            raise SnmpError("protocol", f"unexpected value type {name} in the answer")
        return exception
    return Value(known[0], known[1](value))


def convert(value: Any) -> Value | None:
    """A pysnmp value as a :class:`Value`; None for noSuchObject/noSuchInstance/Null/endOfMibView."""
    converted = from_pysnmp(value)
    return None if converted.type in ABSENT else converted


@functools.lru_cache(maxsize=4096)
def _oid_tuple(oid: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in oid.strip().strip(".").split("."))
    except ValueError:
        raise ValueError(f"not a numeric OID: {oid!r}") from None
    if len(parts) < 2 or any(p < 0 for p in parts):
        raise ValueError(f"not a numeric OID: {oid!r}")
    return parts


def _dotted(oid: tuple[int, ...]) -> str:
    return str(oid[0]) if len(oid) == 1 else ".".join(map(str, oid))  # mostly an ifIndex alone


def _status_text(status: int) -> str:
    """An answer's error-status as pysnmp prints it; "" for noError."""
    return (ERROR_STATUS.get(status, str(status))) if status else ""


@dataclass(slots=True)
class _UserSlot:
    """Which key set an SNMPv3 user name is configured with in the engine, and who is using it."""

    credentials: SnmpCredentials | None = None
    in_flight: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


_ANSWER_ROOM = 16 * 1024
"""Receive-buffer bytes one GETBULK answer may take (up to ~10 KB, plus the kernel's overhead)."""
_MIN_IN_FLIGHT = 8


class SnmpClient:
    """GET and walk many agents concurrently over one long-lived SNMP engine.

    One engine serves every target (a new engine per host is the classic pysnmp mistake: CPU, sockets
    and engine-ID discovery each time). ``max_in_flight`` bounds requests waiting for an answer through
    pysnmp: 200 in flight overflow its UDP receive buffer and fake timeouts. ``fast_in_flight`` bounds
    those of the fast path, and never more than its socket's receive buffer can queue. More in flight
    was tried in the province soak (256): the one event loop then read more answers per turn, ICMP
    probes went out late (90 % of polls on time instead of 98 %), and the SNMP walks were no faster,
    since the loop, not the window, was what they waited for. SNMPv2c takes the fast path (one shared
    socket with a large receive buffer, netwatch's own BER codec) unless ``fast_v2c`` is False;
    ``v2c_transport`` hands it a transport of the caller's (to read its counters or tap what it
    receives), which the client then owns. Use as ``async with SnmpClient() as c`` or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        max_in_flight: int = 64,
        fast_in_flight: int = 64,
        walk_deadline: float = 60.0,
        fast_v2c: bool = True,
        v2c_transport: V2cTransport | None = None,
    ) -> None:
        if max_in_flight < 1 or fast_in_flight < 1:
            raise ValueError("max_in_flight and fast_in_flight must be at least 1")
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self._fast_in_flight = fast_in_flight
        self._fast_semaphore: asyncio.Semaphore | None = None
        self._walk_deadline = walk_deadline
        self._engine: Any = None
        self._transports: dict[tuple[str, int, float, int], Any] = {}
        self._auth: dict[SnmpCredentials, Any] = {}
        self._users: dict[str, _UserSlot] = {}
        self._garbage_from: dict[tuple[str, int], float] = {}
        self._peers: dict[tuple[str, int], tuple[str, int]] = {}
        self._fast_v2c = fast_v2c
        self._v2c = v2c_transport
        self._indexes: dict[bytes, tuple[str, Oid]] = {}
        self._closed = False

    async def __aenter__(self) -> SnmpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the engine and its socket; the client cannot be used afterwards."""
        self._closed = True
        if self._v2c is not None:
            self._v2c.close()
            self._v2c = None
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        self._transports.clear()
        self._auth.clear()
        self._peers.clear()

    # -- public requests -------------------------------------------------------------------------

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, Value]:
        """GET ``oids`` (numeric); returns OID → value, leaving out those the agent does not have."""
        wanted = [_oid_tuple(o) for o in oids]
        result: dict[str, Value] = {}
        chunk = 32
        for start in range(0, len(wanted), chunk):
            await self._get_chunk(target, wanted[start : start + chunk], result)
        return result

    async def system_info(self, target: SnmpTarget) -> SystemInfo:
        """sysDescr, sysObjectID, sysUpTime and sysName of the agent."""
        got = await self.get(target, [SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME])

        def text(oid: str) -> str | None:
            v = got.get(oid)
            return v.value.decode("utf-8", "replace") if v and isinstance(v.value, bytes) else None

        oid_value = got.get(SYS_OBJECT_ID)
        uptime = got.get(SYS_UPTIME)
        return SystemInfo(
            descr=text(SYS_DESCR),
            object_id=oid_value.value if oid_value and isinstance(oid_value.value, str) else None,
            uptime_ticks=uptime.value if uptime and isinstance(uptime.value, int) else None,
            name=text(SYS_NAME),
        )

    async def walk(
        self,
        target: SnmpTarget,
        columns: Sequence[str],
        *,
        max_repetitions: int = 25,
        max_rows: int = 100_000,
        deadline: float | None = None,
        riders: Riders | None = None,
    ) -> dict[str, dict[str, Value]]:
        """Walk table ``columns`` together with GETBULK; returns column → index suffix → value.

        One request carries every unfinished column, and the first one ``riders`` (scalars) too. A
        column ends when it leaves its prefix or at endOfMibView. Bounded by ``max_rows`` varbinds in
        all and by ``deadline`` seconds (default: the client's ``walk_deadline``). After tooBig, or a
        timeout once the agent has answered this walk, the repetitions shrink and the walk goes on
        from where it stood.
        """
        if len(self._indexes) > _MAX_KNOWN_INDEXES:
            self._indexes.clear()
        walker = _Walk(columns, max_rows, target.endpoint, self._indexes, riders)
        reps = max(1, max_repetitions)
        give_up_at = time.monotonic() + (self._walk_deadline if deadline is None else deadline)
        while walker.active:
            left = give_up_at - time.monotonic()
            if left <= 0:
                raise walker.error("timeout", "walk did not finish before its deadline")
            try:
                status, varbinds = await self._bulk(target, walker.cursors(), reps, left, walker.probes())
            except SnmpError as exc:
                if exc.reason == "timeout" and time.monotonic() >= give_up_at:
                    # The walk's deadline cut a request short: say so, not "no answer" (it was answering).
                    raise walker.error("timeout", "walk did not finish before its deadline") from None
                # Only an agent that has answered this walk before gets a smaller second chance: a
                # dead one (or a wrong community) must cost one request budget, not three.
                if exc.reason == "timeout" and walker.answered and reps > 1 and time.monotonic() < give_up_at:
                    reps = max(1, reps // 4)
                    log.debug("%s: timeout, walking on with max-repetitions %d", target.endpoint, reps)
                    continue
                raise walker.error(exc.reason, exc.message) from None
            if status == "tooBig":
                if reps == 1:
                    raise walker.error("agent", "agent answers tooBig even to one repetition")
                reps = max(1, reps // 2)
                log.debug("%s: tooBig, walking on with max-repetitions %d", target.endpoint, reps)
                continue
            if status:
                raise walker.error("agent", f"agent answered error-status {status}")
            walker.take(varbinds)
            # Not kept while the next answer is awaited: at province scale thousands of walks wait at
            # once, and every young garbage collection would scan their last answers.
            del varbinds
        if riders is not None and walker.undecided:
            riders.values.update(await self.get(target, walker.undecided))
            riders.answered = True
        return walker.results()

    # -- plumbing -------------------------------------------------------------------------------

    def _fast(self, target: SnmpTarget) -> bool:
        return self._fast_v2c and target.credentials.version == "2c"

    async def _get_chunk(self, target: SnmpTarget, oids: list[Oid], into: dict[str, Value]) -> None:
        if self._fast(target):
            community = self._community(target)
            response = await self._fast_request(
                target, lambda rid: encode_get(rid, community, oids), target.budget, open_envelope
            )
            status, rows = _status_text(response.error_status), response.varbinds
        else:
            varbinds = [ObjectType(ObjectIdentity(_dotted(o))) for o in oids]
            async with self._request(target) as (auth, transport):
                answer = await self._call(
                    target,
                    get_cmd(self._engine, auth, transport, ContextData(), *varbinds, lookupMib=False),
                    target.budget,
                )
            status, rows = self._unpack(target, answer)
        if status == "tooBig" and len(oids) > 1:
            half = len(oids) // 2
            await self._get_chunk(target, oids[:half], into)
            await self._get_chunk(target, oids[half:], into)
            return
        if status:
            raise SnmpError("agent", f"agent answered error-status {status}", endpoint=target.endpoint)
        for oid, value in rows:
            if value.type not in ABSENT:
                into[_dotted(oid)] = value

    async def _bulk(
        self, target: SnmpTarget, cursors: list[Oid], reps: int, left: float, non_repeaters: list[Oid]
    ) -> tuple[str, Flat]:
        names = [*non_repeaters, *cursors] if non_repeaters else cursors
        if self._fast(target):
            community = self._community(target)
            response = await self._fast_request(
                target,
                lambda rid: encode_get_bulk(rid, community, names, reps, len(non_repeaters)),
                min(target.budget, left),
                open_flat,
            )
            return _status_text(response.error_status), response.varbinds
        varbinds = [ObjectType(ObjectIdentity(_dotted(o))) for o in names]
        async with self._request(target) as (auth, transport):
            answer = await self._call(
                target,
                bulk_cmd(
                    self._engine,
                    auth,
                    transport,
                    ContextData(),
                    len(non_repeaters),
                    reps,
                    *varbinds,
                    lookupMib=False,
                ),
                min(target.budget, left),
            )
        status, rows = self._unpack(target, answer)
        # pysnmp's answer in the fast path's form: one way of filing a walk's answers.
        return status, [item for oid, value in rows for item in (oid_content(oid), value.type, value.value)]

    async def _call(self, target: SnmpTarget, request: Any, budget: float) -> Any:
        started = time.monotonic()
        # pysnmp times out by itself; the outer bound only guards against it never answering at all.
        try:
            answer = await asyncio.wait_for(request, budget + 1.0)
        except TimeoutError:
            raise self._timeout(target, started) from None
        except Exception as exc:
            raise SnmpError(
                "protocol", f"request failed: {type(exc).__name__}", endpoint=target.endpoint
            ) from None
        indication = answer[0]
        if isinstance(indication, errind.RequestTimedOut):
            raise self._timeout(target, started)
        if indication:
            raise self._indication_error(target, indication)
        return answer

    def _timeout(self, target: SnmpTarget, started: float) -> SnmpError:
        # pysnmp drops what it cannot parse without a word; a parse error counted for this agent's
        # address during the request tells "answers garbage" apart from "does not answer".
        if self._garbage_from.get(self._peers.get((target.address, target.port), ("", 0)), 0.0) >= started:
            return SnmpError(
                "protocol",
                "the agent answered, but nothing valid came back (garbage, truncated or mismatched answers)",
                endpoint=target.endpoint,
            )
        return SnmpError("timeout", self._timeout_message(target), endpoint=target.endpoint)

    def _unpack(self, target: SnmpTarget, answer: Any) -> tuple[str, Rows]:
        _indication, status, _index, varbinds = answer
        status_text = str(status.prettyPrint()) if hasattr(status, "prettyPrint") and status else ""
        if not status_text and status:
            status_text = str(status)
        rows = [(tuple(vb[0].asTuple()), from_pysnmp(vb[1])) for vb in varbinds]
        return status_text, rows

    # -- the v2c fast path ----------------------------------------------------------------------

    @staticmethod
    def _community(target: SnmpTarget) -> bytes:
        return (target.credentials.community or "").encode()

    async def _fast_request(
        self, target: SnmpTarget, encode: Callable[[int], bytes], budget: float, read: Callable[[Envelope], R]
    ) -> R:
        if self._closed:
            raise RuntimeError("SnmpClient is closed")
        if self._v2c is None:
            self._v2c = V2cTransport()
        transport = self._v2c
        try:
            family, peer = await transport.resolve(target.address, target.port)
        except OSError as exc:
            raise SnmpError(
                "protocol", f"cannot use address: {type(exc).__name__}", endpoint=target.endpoint
            ) from None
        if self._fast_semaphore is None:
            # Never more answers in flight than the socket can queue while the loop is busy: a
            # non-root daemon may get only net.core.rmem_max (Debian: 208 KiB) of the 16 MiB asked.
            room = transport.receive_buffer(family) // _ANSWER_ROOM
            self._fast_semaphore = asyncio.Semaphore(max(_MIN_IN_FLIGHT, min(self._fast_in_flight, room)))
        try:
            async with self._fast_semaphore:
                request = transport.request(
                    family,
                    peer,
                    self._community(target),
                    encode,
                    read=read,
                    timeout=target.timeout,
                    retries=target.retries,
                )
                # The transport keeps its own clock; the outer bound only cuts a walk at its deadline.
                if budget < target.budget:
                    response = await asyncio.wait_for(request, budget)
                else:
                    response = await request
        except RequestTimeout as exc:
            if exc.garbled:
                raise SnmpError(
                    "protocol",
                    "the agent answered, but nothing valid came back (garbage, truncated or mismatched answers)",
                    endpoint=target.endpoint,
                ) from None
            raise SnmpError("timeout", self._timeout_message(target), endpoint=target.endpoint) from None
        except TimeoutError:
            raise SnmpError("timeout", self._timeout_message(target), endpoint=target.endpoint) from None
        except SendFailed as exc:
            raise SnmpError("timeout", f"cannot send to the agent: {exc}", endpoint=target.endpoint) from None
        return response

    def _indication_error(self, target: SnmpTarget, indication: Any) -> SnmpError:
        for kind, message in _AUTH_FAILURES.items():
            if isinstance(indication, kind):
                return SnmpError("auth", message, endpoint=target.endpoint)
        # pysnmp's indications are fixed texts, never the request: safe to name.
        return SnmpError(
            "protocol", f"SNMP engine error: {type(indication).__name__}", endpoint=target.endpoint
        )

    @staticmethod
    def _timeout_message(target: SnmpTarget) -> str:
        tries = f"{target.retries + 1} × {target.timeout:g} s"
        if target.credentials.version == "2c":
            return f"no answer (timeout after {tries}) — wrong community, or agent unreachable"
        return f"no answer (timeout after {tries}) — agent unreachable, or wrong priv key or priv protocol"

    @asynccontextmanager
    async def _request(self, target: SnmpTarget) -> Any:
        if self._closed:
            raise RuntimeError("SnmpClient is closed")
        if self._engine is None:
            self._engine = self._open_engine()
        transport = await self._transport(target)
        creds = target.credentials
        async with self._user(creds), self._semaphore:
            yield self._auth_data(creds), transport

    def _open_engine(self) -> Any:
        engine = SnmpEngine()
        dispatcher = engine.message_dispatcher
        receive = dispatcher.receive_message
        heard = self._garbage_from

        counters = engine.get_mib_builder().import_symbols(
            "__SNMPv2-MIB", "snmpInASNParseErrs", "snmpInBadVersions"
        )

        def receive_and_note(snmp_engine: Any, domain: Any, address: Any, message: bytes) -> Any:
            before = [int(c.syntax) for c in counters]
            try:
                return receive(snmp_engine, domain, address, message)
            finally:
                if [int(c.syntax) for c in counters] != before:
                    heard[(str(address[0]), int(address[1]))] = time.monotonic()

        dispatcher.receive_message = receive_and_note
        return engine

    @asynccontextmanager
    async def _user(self, creds: SnmpCredentials) -> Any:
        # pysnmp keeps one key set per USM user name in the engine; two targets that share a user
        # name with different keys must not reconfigure it under each other's requests in flight.
        if creds.version != "3" or creds.username is None:
            yield
            return
        slot = self._users.setdefault(creds.username, _UserSlot())
        async with slot.changed:
            await slot.changed.wait_for(lambda: slot.in_flight == 0 or slot.credentials == creds)
            slot.credentials = creds
            slot.in_flight += 1
        try:
            yield
        finally:
            async with slot.changed:
                slot.in_flight -= 1
                slot.changed.notify_all()

    async def _transport(self, target: SnmpTarget) -> Any:
        key = (target.address, target.port, target.timeout, target.retries)
        transport = self._transports.get(key)
        if transport is None:
            kind = Udp6TransportTarget if ":" in target.address else UdpTransportTarget
            try:
                transport = await kind.create(
                    (target.address, target.port), timeout=target.timeout, retries=target.retries
                )
            except Exception as exc:
                raise SnmpError(
                    "protocol", f"cannot use address: {type(exc).__name__}", endpoint=target.endpoint
                ) from None
            self._transports[key] = transport
        self._peers.setdefault(
            (target.address, target.port),
            (str(transport.transport_address[0]), int(transport.transport_address[1])),
        )
        return transport

    def _auth_data(self, creds: SnmpCredentials) -> Any:
        auth = self._auth.get(creds)
        if auth is None:
            if creds.version == "2c":
                auth = CommunityData(creds.community, mpModel=1)
            else:
                auth = UsmUserData(
                    creds.username,
                    authKey=creds.auth_key,
                    privKey=creds.priv_key,
                    authProtocol=AUTH_PROTOCOLS[creds.auth_protocol]
                    if creds.auth_protocol
                    else usmNoAuthProtocol,
                    privProtocol=PRIV_PROTOCOLS[creds.priv_protocol]
                    if creds.priv_protocol
                    else usmNoPrivProtocol,
                )
            self._auth[creds] = auth
        return auth


def _probe(scalar: Oid) -> Oid:
    """Where a GETNEXT for ``scalar`` starts: just before it (see :class:`Riders`)."""
    return (*scalar[:-1], scalar[-1] - 1) if scalar[-1] > 0 else scalar[:-1]


def _file_riders(wanted: list[Oid], answers: Flat, riders: Riders) -> list[str]:
    """File the non-repeaters' answers into ``riders``; return the scalars left undecided."""
    riders.answered = True
    undecided: list[str] = []
    for n, scalar in enumerate(wanted):
        dotted = _dotted(scalar)
        if 3 * n + 2 >= len(answers):
            undecided.append(dotted)  # the agent sent fewer varbinds than asked
            continue
        name, kind, value = answers[3 * n : 3 * n + 3]
        if kind == "endOfMibView":
            continue
        got = oid_arcs(name)
        if got == scalar:
            if kind not in ABSENT:
                riders.values[dotted] = Value(kind, value)
        elif got < scalar:
            undecided.append(dotted)
    return undecided


class _Walk:
    """The state of one multi-column walk: where each column stands and what it has read.

    Answers come as :data:`~collectors.snmp.ber.Flat` varbinds: a name is kept as its BER content
    octets, matched to its column by a bytes prefix, and its row index read off the tail, which
    ``indexes`` (the client's, shared by every walk) remembers: a poller meets the same few row
    indexes in every column of every poll. What was read is held as plain values (``column →
    index → int, bytes or str``) and each column's SMI type, and made into :class:`Value`s only when
    the walk ends. Dicts of plain values are not tracked by the garbage collector: at province scale
    thousands of walks are in flight.
    """

    def __init__(
        self,
        columns: Sequence[str],
        max_rows: int,
        endpoint: str,
        indexes: dict[bytes, tuple[str, Oid]],
        riders: Riders | None = None,
    ) -> None:
        self.prefixes = {c: _oid_tuple(c) for c in columns}
        self.contents = {c: _content(c) for c in columns}
        self.active = list(columns)
        self.last: dict[str, Oid] = {c: () for c in columns}
        """The row index (arcs after the column's prefix) each column has reached."""
        self.values: dict[str, dict[str, int | bytes | str]] = {c: {} for c in columns}
        self.types: dict[str, str] = {}
        """Each column's type: that of its first value."""
        self.odd_types: dict[str, dict[str, str]] = {}
        """Rows whose type differs from their column's (rare: a column mixing Counter32 and Null)."""
        self.rows = 0
        self.answered = False
        self.max_rows = max_rows
        self.endpoint = endpoint
        self.indexes = indexes
        self.riders = riders
        self.riding = [_oid_tuple(o) for o in riders.oids] if riders is not None and columns else []
        """Scalars still to ride (until the first answer)."""
        self.undecided: list[str] = list(riders.oids) if riders is not None and not columns else []
        """Scalars the non-repeaters could not settle: the walk GETs them at its end."""

    def probes(self) -> list[Oid]:
        """The non-repeaters of the next request: the riders' GETNEXT starts, first request only."""
        return [_probe(o) for o in self.riding]

    def results(self) -> dict[str, dict[str, Value]]:
        """What was read, built now: column → index suffix → value."""
        new = tuple.__new__
        out: dict[str, dict[str, Value]] = {}
        for column, values in self.values.items():
            kind = self.types.get(column, "")
            built = {index: new(Value, (kind, raw)) for index, raw in values.items()}
            for index, odd in self.odd_types.get(column, {}).items():
                built[index] = new(Value, (odd, values[index]))
            out[column] = built
        return out

    def cursors(self) -> list[tuple[int, ...]]:
        """The OID each active column continues from, in request order."""
        return [self.prefixes[c] + self.last[c] for c in self.active]

    def error(self, reason: str, message: str) -> SnmpError:
        """An error carrying what was read so far."""
        return SnmpError(reason, message, endpoint=self.endpoint, partial=self.results())

    def take(self, varbinds: Flat) -> None:
        """File one GETBULK answer's varbinds (interleaved by column) under their columns."""
        if not varbinds:
            raise self.error("protocol", "empty answer to GETBULK")
        self.answered = True
        if self.riding and self.riders is not None:
            head = 3 * len(self.riding)
            self.undecided = _file_riders(self.riding, varbinds[:head], self.riders)
            self.riding = []
            varbinds = varbinds[head:]
            if not varbinds:
                return  # an agent that trimmed every repetition: the walk asks again
        active = self.active
        width = len(active)
        lanes = [(c, self.contents[c], len(self.contents[c]), self.values[c]) for c in active]
        finished: set[str] = set()
        types, last, indexes, kinds, raws = (
            self.types,
            self.last,
            self.indexes,
            varbinds[1::3],
            varbinds[2::3],
        )
        rows = self.rows
        for n, name in enumerate(varbinds[0::3]):
            column, content, cut, into = lanes[n % width]
            if column in finished:
                continue
            kind = kinds[n]
            if kind == "endOfMibView" or not name.startswith(content):
                finished.add(column)
                continue
            known = indexes.get(tail := name[cut:])
            if known is None:
                arcs = subidentifiers(tail)
                known = indexes[tail] = (_dotted(arcs) if arcs else "", arcs)
            index, arcs = known
            if arcs <= last[column]:
                self.rows = rows
                prefix = self.prefixes[column]
                raise self.error(
                    "loop",
                    f"agent returned OID {_dotted(prefix + arcs)} after {_dotted(prefix + last[column])}",
                )
            last[column] = arcs
            rows += 1
            if rows > self.max_rows:
                self.rows = rows
                raise self.error("too_many_rows", f"walk exceeded {self.max_rows} values")
            if kind not in ABSENT:
                into[index] = raws[n]
                if types.setdefault(column, kind) != kind:
                    self.odd_types.setdefault(column, {})[index] = kind
        self.rows = rows
        self.active = [c for c in active if c not in finished]


@functools.lru_cache(maxsize=4096)
def _content(column: str) -> bytes:
    return oid_content(_oid_tuple(column))
