"""The kernel side of ICMP echo: one non-blocking socket per address family, times taken at the socket.

Raw sockets (root or CAP_NET_RAW) see every ICMP message the host receives, so a kernel filter keeps
only echo replies and errors; datagram "ping" sockets (``net.ipv4.ping_group_range``) see only their
own replies, with the identifier rewritten by the kernel, and get ICMP errors on the error queue.
Receive times are the kernel's (``SO_TIMESTAMPNS``, wall clock); send times are taken right before
``sendto`` with the same clock, so an RTT never includes event-loop delay.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from typing import NamedTuple, Protocol

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
SOL_RAW = getattr(socket, "SOL_RAW", 255)
ICMP_FILTER = 1
ICMP6_FILTER = 1
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)

# Bursts of a thousand replies arrive faster than the loop reads them; the default ~200 KiB buffer
# drops some, which would be reported as loss.
BUFFER_BYTES = 4 << 20
_ANC_SIZE = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(512)
_TIMESPEC = struct.Struct("@qq")

FIX_HINT = (
    "ICMP needs raw sockets or unprivileged ping sockets. Fix one of: run as root; or give Python"
    " the capability: sudo setcap cap_net_raw+ep $(readlink -f .venv/bin/python); or allow ping"
    ' sockets for your group: sudo sysctl -w net.ipv4.ping_group_range="0 2147483647"'
    " (persist it in /etc/sysctl.d/)."
)


class IcmpPermissionError(Exception):
    """Neither raw nor datagram ICMP sockets may be opened; the message says how to fix it."""


class Datagram(NamedTuple):
    """One ICMP message read from a socket.

    ``message`` starts at the ICMP header (any IP header is stripped). For a queued error
    (``queued_error``: a datagram socket's error queue) it is our own echo request as sent, and
    ``source`` is the address that request was sent to. A named tuple: thousands are made per
    round, and a frozen dataclass costs several times more to build.
    """

    message: bytes
    source: str
    received_ns: int
    queued_error: bool = False


class IcmpSocket(Protocol):
    """The socket layer the engine drives: the seam unit tests replace with a fake."""

    family: int
    privileged: bool

    def fileno(self) -> int:
        """The descriptor the event loop watches for replies."""
        ...

    def send(self, message: bytes, address: str) -> int:
        """Send one ICMP message; return the wall-clock send time in ns. Raises OSError."""
        ...

    def receive(self) -> list[Datagram]:
        """Every datagram pending now (never blocks)."""
        ...

    def close(self) -> None:
        """Release the descriptor."""
        ...


def _icmp_filter(passed: tuple[int, ...]) -> bytes:
    mask = 0xFFFFFFFF
    for icmp_type in passed:
        mask &= ~(1 << icmp_type)
    return struct.pack("=I", mask)


def _icmp6_filter(passed: tuple[int, ...]) -> bytes:
    words = [0xFFFFFFFF] * 8
    for icmp_type in passed:
        words[icmp_type >> 5] &= ~(1 << (icmp_type & 31))
    return struct.pack("=8I", *words)


class KernelIcmpSocket:
    """A real ICMP socket (raw or datagram) for one address family."""

    def __init__(self, family: int, privileged: bool) -> None:
        proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
        kind = socket.SOCK_RAW if privileged else socket.SOCK_DGRAM
        self.family = family
        self.privileged = privileged
        self._sock = socket.socket(family, kind, proto)
        try:
            self._configure()
        except BaseException:
            self._sock.close()
            raise
        self._strip_ip_header = privileged and family == socket.AF_INET

    def _configure(self) -> None:
        sock = self._sock
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, BUFFER_BYTES)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, plain, BUFFER_BYTES)
        if self.privileged and self.family == socket.AF_INET:
            # echo reply, destination unreachable, time exceeded; not the echo requests we see go by
            sock.setsockopt(SOL_RAW, ICMP_FILTER, _icmp_filter((0, 3, 11)))
        elif self.privileged:
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, _icmp6_filter((129, 1, 3)))
        elif self.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)

    def fileno(self) -> int:
        """The descriptor the event loop watches for replies."""
        return self._sock.fileno()

    def send(self, message: bytes, address: str) -> int:
        """Send one ICMP message; return the wall-clock send time in ns. Raises OSError."""
        sent_ns = time.time_ns()
        self._sock.sendto(message, (address, 0))
        return sent_ns

    def receive(self) -> list[Datagram]:
        """Every datagram pending now (never blocks)."""
        out: list[Datagram] = []
        recvmsg = self._sock.recvmsg
        strip = self._strip_ip_header
        new = tuple.__new__  # as Datagram(...) builds it, without the call of its Python __new__
        errors = 0
        while True:
            try:
                data, ancdata, _flags, address = recvmsg(2048, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # a datagram socket reports a queued ICMP error once through recvmsg: fetch it
                errors += 1
                if errors > 64:
                    break
                self._receive_errors(out)
                continue
            received_ns = 0
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = _TIMESPEC.unpack_from(value)
                    received_ns = sec * 1_000_000_000 + nsec
            if not received_ns:
                received_ns = time.time_ns()
            if strip and data:
                data = data[(data[0] & 0x0F) * 4 :]
            out.append(new(Datagram, (data, address[0], received_ns, False)))
        if not self.privileged:
            self._receive_errors(out)
        return out

    def _receive_errors(self, out: list[Datagram]) -> None:
        while True:
            try:
                data, _anc, _flags, address = self._sock.recvmsg(2048, _ANC_SIZE, MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    return
                continue
            out.append(Datagram(data, address[0], time.time_ns(), queued_error=True))

    def close(self) -> None:
        """Release the descriptor."""
        self._sock.close()


def open_socket(family: int, privileged: bool) -> IcmpSocket:
    """Open a kernel ICMP socket; PermissionError when this process may not, OSError when unsupported."""
    return KernelIcmpSocket(family, privileged)
