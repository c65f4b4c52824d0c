"""The SNMPv2c fast path's transport: one shared UDP socket per address family, requests matched by id.

Every v2c target of a client shares one socket (per address family) with a large receive buffer: 200
walks in flight overflow the default buffer and fake timeouts. Replies are matched by request-id, then
checked for the address and port asked and for the community sent; anything else is dropped and counted
in :class:`Counters`. A matched reply's varbinds are decoded when its request runs again, not as the
socket is read; if they are unreadable, the request ends there (counted ``malformed``, not
``matched``). Requests time out and retry on their own clock (``call_later``), never with a task per
request. The socket is read until it is empty on each wakeup, not one datagram per loop turn.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from collectors.snmp.ber import BerError, Envelope, decode_envelope

log = logging.getLogger(__name__)

RECEIVE_BUFFER: Final = 16 * 1024 * 1024
_MAX_DATAGRAM: Final = 65535
_READS_PER_WAKEUP: Final = 512

Peer = tuple[str, int]
Tap = Callable[[bytes, Peer], None]
R = TypeVar("R")


class RequestTimeout(Exception):
    """No valid answer came within every try; ``garbled`` tells if the peer sent something unreadable."""

    def __init__(self, garbled: bool) -> None:
        self.garbled = garbled
        super().__init__("no valid answer" + (" (unreadable answers came)" if garbled else ""))


class SendFailed(Exception):
    """The kernel refused to send (no route, network down): the agent cannot be reached now."""


@dataclass(slots=True)
class Counters:
    """What came in on the shared sockets, and what was dropped and why."""

    sent: int = 0
    received: int = 0
    matched: int = 0
    malformed: int = 0
    unknown_request: int = 0
    wrong_peer: int = 0
    wrong_community: int = 0
    retries: int = 0
    timeouts: int = 0


@dataclass(slots=True)
class _Pending:
    peer: Peer
    community: bytes
    future: asyncio.Future[Envelope]
    garbled: bool = False


class V2cTransport:
    """Send SNMPv2c requests and match their answers over one socket per address family."""

    def __init__(self, *, receive_buffer: int = RECEIVE_BUFFER, tap: Tap | None = None) -> None:
        self._receive_buffer = receive_buffer
        self._tap = tap
        self._sockets: dict[int, socket.socket] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_id = random.randrange(1, 2**31 - 1)
        self._resolved: dict[Peer, tuple[int, Peer]] = {}
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.counters = Counters()

    def close(self) -> None:
        """Close the sockets and fail what is still waiting; the transport cannot be used afterwards."""
        self._closed = True
        loop = self._loop
        for sock in self._sockets.values():
            if loop is not None and not loop.is_closed():
                loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.cancel()
        self._pending.clear()

    async def resolve(self, address: str, port: int) -> tuple[int, Peer]:
        """(address family, (numeric host, port)) for a target, resolved once and remembered."""
        key = (address, port)
        known = self._resolved.get(key)
        if known is None:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(address, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP)
            if not infos:
                raise OSError(errno.EADDRNOTAVAIL, "no address")
            family, _type, _proto, _name, sockaddr = infos[0]
            known = (int(family), (str(sockaddr[0]), int(sockaddr[1])))
            self._resolved[key] = known
        return known

    async def request(
        self,
        family: int,
        peer: Peer,
        community: bytes,
        encode: Callable[[int], bytes],
        *,
        read: Callable[[Envelope], R],
        timeout: float,
        retries: int,
    ) -> R:
        """Send ``encode(request_id)`` to ``peer``, trying ``retries + 1`` times; return the answer as
        ``read`` decodes it (:func:`~collectors.snmp.ber.open_envelope`, or ``open_flat`` for walks).

        Raises :class:`RequestTimeout` when no valid answer came, :class:`SendFailed` when the kernel
        refuses to send.
        """
        if self._closed:
            raise RuntimeError("V2cTransport is closed")
        sock = self._socket(family)
        loop = asyncio.get_running_loop()
        request_id = self._allocate_id()
        datagram = encode(request_id)
        pending = _Pending(peer, community, loop.create_future())
        self._pending[request_id] = pending
        try:
            for attempt in range(retries + 1):
                if attempt:
                    self.counters.retries += 1
                self._send(sock, datagram, peer)
                timer = loop.call_later(timeout, _expire, pending)
                try:
                    envelope = await pending.future
                except _Expired:
                    pending.future = loop.create_future()
                    continue
                finally:
                    timer.cancel()
                # The varbinds are decoded here, when this request runs again, not when the datagram
                # was read (see collectors.snmp.ber.Envelope). The agent answered this very request
                # (id, address and community match): unreadable varbinds end it, as a try again
                # would be answered the same.
                try:
                    response = read(envelope)
                except BerError:
                    self.counters.malformed += 1
                    raise RequestTimeout(garbled=True) from None
                self.counters.matched += 1
                return response
            self.counters.timeouts += 1
            raise RequestTimeout(pending.garbled)
        finally:
            del self._pending[request_id]

    # -- plumbing -----------------------------------------------------------------------------------

    def _allocate_id(self) -> int:
        # Sequential from a random start, skipping ids in flight: a late answer to an old request
        # cannot match a new one before 2^31 requests have passed.
        while True:
            request_id = self._next_id
            self._next_id = request_id + 1 if request_id < 2**31 - 1 else 1
            if request_id not in self._pending:
                return request_id

    def _send(self, sock: socket.socket, datagram: bytes, peer: Peer) -> None:
        try:
            sock.sendto(datagram, peer)
        except (BlockingIOError, InterruptedError):
            return  # the send buffer is full: this try is lost, the next one goes out
        except OSError as exc:
            raise SendFailed(os.strerror(exc.errno) if exc.errno else type(exc).__name__) from None
        self.counters.sent += 1

    def receive_buffer(self, family: int) -> int:
        """Bytes the kernel lets queue on this family's socket (opened if need be) before it drops
        answers: what bounds how many requests may wait for an answer at once."""
        return int(self._socket(family).getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    def _socket(self, family: int) -> socket.socket:
        known = self._sockets.get(family)
        if known is not None:
            return known
        sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setblocking(False)
            self._grow_receive_buffer(sock)
            sock.bind(("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0))
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(sock.fileno(), self._drain, sock)
        except BaseException:
            sock.close()
            raise
        self._sockets[family] = sock
        return sock

    def _grow_receive_buffer(self, sock: socket.socket) -> None:
        # SO_RCVBUFFORCE passes net.core.rmem_max when running as root; otherwise the kernel caps it.
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        if force is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, self._receive_buffer)
                return
            except OSError:
                pass
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._receive_buffer)

    def _drain(self, sock: socket.socket) -> None:
        for _ in range(_READS_PER_WAKEUP):
            try:
                data, address = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket: belongs to no request
                log.debug("v2c socket error: %s", os.strerror(exc.errno) if exc.errno else exc)
                continue
            self._received(data, (str(address[0]), int(address[1])))

    def _received(self, data: bytes, peer: Peer) -> None:
        counters = self.counters
        counters.received += 1
        if self._tap is not None:
            self._tap(data, peer)
        try:
            envelope = decode_envelope(data)
        except BerError:
            counters.malformed += 1
            for waiting in self._pending.values():
                if waiting.peer == peer:
                    waiting.garbled = True
            return
        pending = self._pending.get(envelope.request_id)
        if pending is None or pending.future.done():
            counters.unknown_request += 1
        elif pending.peer != peer:
            counters.wrong_peer += 1
        elif pending.community != envelope.community:
            counters.wrong_community += 1
        else:
            pending.future.set_result(envelope)  # counted matched once its varbinds are read


class _Expired(Exception):
    pass


def _expire(pending: _Pending) -> None:
    if not pending.future.done():
        pending.future.set_exception(_Expired())
