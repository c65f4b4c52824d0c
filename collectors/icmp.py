"""ICMP echo rounds: one engine, one shared socket per address family, probes sent on schedule.

A round sends ``probes`` echo requests to one address, probe *i* at round start + *i* × spacing,
whatever the replies. Replies are matched to probes by identifier and sequence (datagram sockets:
sequence and source, since the kernel rewrites the identifier) and by a per-engine random payload,
so a stray reply never counts. RTTs come from times taken at the socket (``icmp_socket``), never
from when the event loop got round to a reply. A dead target never makes a round longer than
``(probes - 1) × probe_spacing + timeout``.

Jitter is the mean absolute difference of consecutive RTTs (in probe order, over the replies that
came back), as smokeping and fping's reports use it; not RFC 3550's smoothed estimator, which
depends on history across rounds.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import math
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import Field, model_validator

from collectors.base import (
    CollectContext,
    CollectorParams,
    CollectorSpec,
    CollectResult,
    DoneFn,
    Measurement,
    Target,
)
from collectors.icmp_socket import FIX_HINT, Datagram, IcmpPermissionError, IcmpSocket, open_socket

__all__ = [
    "SPEC",
    "IcmpEngine",
    "IcmpParams",
    "IcmpPermissionError",
    "RoundResult",
    "collect",
    "round_measurements",
    "round_result",
    "start",
]

SocketFactory = Callable[[int, bool], IcmpSocket]
RoundCallback = Callable[["RoundResult"], None]

_HEADER = struct.Struct("!BBHHH")
_ID_SEQ = struct.Struct("!HH")
_ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
_ERROR_TYPES: dict[int, tuple[int, int]] = {socket.AF_INET: (3, 11), socket.AF_INET6: (1, 3)}
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.EACCES, errno.EPERM}
)
# Replies read during a burst of sends: keeps the receive buffer from overflowing before the
# loop gets back to the reader.
_DRAIN_EVERY = 256
# A kernel timestamp may precede our monotonic reading by clock granularity; more than this means
# the wall clock stepped between send and receive.
_CLOCK_SLACK_NS = 1_000_000
# Kernel receive stamps and our send stamps both read the wall clock, so they agree to within the
# read delay. A gap beyond this, seen on two replies in a row, means they do not share one clock
# (libfaketime fakes only user space): RTTs are then taken across the measured skew.
_SKEW_TOLERANCE_NS = 1_000_000_000
# asyncio fires a timer up to its clock resolution early; entries that close are due
_TIMER_TOLERANCE = 1e-6
_EXPIRE = -1
TICK = 0.01
"""Seconds of the engine's timer ticks: probes and expiries due within one tick are handled by one
wake-up of the loop, up to a tick late. RTTs are unaffected (both ends are stamped at the socket); a
round's probes keep their spacing to within a tick. At 10,000 targets in rounds spread over their
interval (5,000 probes/s), 10 ms ticks cut the engine's CPU by 15 %: 32.9 % of a core against 38.9 %
with a wake-up per event (``benchmarks/icmp_round.py --sustained``)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """What one round of echo probes to one address measured.

    ``rtts`` are in seconds, in probe order, one per reply received. ``reason`` is set only when
    no reply came back: ``resolve``, ``unreachable``, ``timeout`` or ``error``.
    """

    address: str
    sent: int
    received: int
    rtts: tuple[float, ...] = ()
    reason: str | None = None
    error: str | None = None
    unreachable: int = 0
    stepped: int = 0
    """Replies whose times spanned a wall-clock step: the round measured nothing true and is discarded."""

    @property
    def loss_ratio(self) -> float:
        """Share of probes sent that got no reply (1.0 when none could be sent)."""
        return 1.0 - self.received / self.sent if self.sent else 1.0

    @property
    def min(self) -> float | None:
        """Smallest RTT in seconds, None without replies."""
        return min(self.rtts) if self.rtts else None

    @property
    def avg(self) -> float | None:
        """Mean RTT in seconds, None without replies."""
        return sum(self.rtts) / len(self.rtts) if self.rtts else None

    @property
    def max(self) -> float | None:
        """Largest RTT in seconds, None without replies."""
        return max(self.rtts) if self.rtts else None

    @property
    def jitter(self) -> float | None:
        """Mean absolute difference of consecutive RTTs in seconds; None with fewer than 2 replies."""
        if len(self.rtts) < 2:
            return None
        pairs = zip(self.rtts, self.rtts[1:], strict=False)
        return sum(abs(b - a) for a, b in pairs) / (len(self.rtts) - 1)


class _Round:
    """The bookkeeping of one round in flight; ``on_done`` gets its result once, when it ends.

    A probe in flight is a key in ``live`` (key → probe index) and its send times are two slots of
    ``stamps``, not an object of its own: the garbage collector scans every object alive at a pass,
    and at 10,000 targets a round's objects (probes, timeline entries) were a third of what each young
    pass found alive. A dict of ints is not even tracked.
    """

    __slots__ = (
        "address",
        "error",
        "fam",
        "finished",
        "live",
        "on_done",
        "packed",
        "payload",
        "rtts",
        "sent",
        "stamps",
        "start",
        "stepped",
        "timeout",
        "unreachable",
        "unsent",
    )

    def __init__(
        self,
        fam: _Family,
        address: str,
        packed: bytes,
        payload: bytes,
        probes: int,
        timeout: float,
        on_done: RoundCallback | None,
    ) -> None:
        self.fam = fam
        self.address = address
        self.packed = packed
        self.payload = payload
        self.timeout = timeout
        self.on_done = on_done
        self.finished = False
        self.start = 0.0
        self.rtts: list[float | None] = [None] * probes
        self.stamps: list[float] = [0.0] * (2 * probes)
        """Probe i was sent at wall-clock ns ``stamps[2i]`` and loop time ``stamps[2i + 1]``."""
        self.live: dict[int, int] = {}
        self.sent = 0
        self.unsent = probes
        self.unreachable = 0
        self.stepped = 0
        self.error: tuple[str, str] | None = None

    def expire(self, now: float) -> list[int]:
        """Once every probe is sent, drop the probes whose reply window has passed; their keys."""
        expired: list[int] = []
        if self.unsent == 0 and self.live:
            stamps, timeout = self.stamps, self.timeout
            expired = [key for key, i in self.live.items() if stamps[2 * i + 1] + timeout <= now]
            for key in expired:
                del self.live[key]
        return expired

    def fail_probe(self, reason: str, message: str) -> None:
        """Note a probe that will get no reply, and why (the first reason of the round is kept)."""
        if reason == "unreachable":
            self.unreachable += 1
        if self.error is None or (reason == "unreachable" and self.error[0] != "unreachable"):
            self.error = (reason, message)

    def result(self) -> RoundResult:
        """The round as a value."""
        rtts = tuple(r for r in self.rtts if r is not None)
        reason = error = None
        if not rtts:
            reason, error = self.error or (
                "timeout",
                f"no reply to {self.sent} probe(s) within {self.timeout:g} s",
            )
        if self.stepped:
            reason, error = (
                "clock_step",
                f"{self.stepped} reply(ies) spanned a wall-clock step: round discarded",
            )
        return RoundResult(
            self.address, self.sent, len(rtts), rtts, reason, error, self.unreachable, self.stepped
        )


class _Timeline:
    """The engine's due events, one first-in-first-out lane per (delay from a round's start, event).

    Every round schedules its events at its start plus the same few delays (probe i at
    i × spacing, the expiry after the last), and rounds start in time order: each lane is sorted
    as it is filled, so pushing and popping cost O(1). One heap of the 25,000 events in flight at
    10,000 targets spent 4 % of the event loop in ``heappop`` (the soak's profile). A lane holds
    the rounds themselves: an event is its lane's (delay, probe index or ``_EXPIRE``) and the round's
    start, with no object of its own.
    """

    __slots__ = ("lanes", "order")

    def __init__(self) -> None:
        self.lanes: dict[tuple[float, int], deque[_Round]] = {}
        self.order: tuple[tuple[float, int], ...] = ()
        """The lanes' keys, sorted: (delay, event)."""

    def push(self, delay: float, event: int, rnd: _Round) -> None:
        """Queue ``event`` (a probe index or ``_EXPIRE``) of ``rnd`` at its start + ``delay``."""
        lane = self.lanes.get((delay, event))
        if lane is None:
            lane = self.lanes[(delay, event)] = deque()
            self.order = tuple(sorted(self.lanes))
        lane.append(rnd)

    def due(self, now: float) -> Iterator[tuple[_Round, int]]:
        """Every (round, event) due at ``now`` or before, each removed as it is handed out.

        Lane by lane in (delay, event) order: a round's own events have growing delays, so they
        come in its order (probe i before probe i + 1, the expiry last); events of different rounds
        due within one wake-up need none. Merging the lanes by time cost a scan of every lane per
        event (4,000 a second at 10,000 targets).
        """
        for key in self.order:  # a tuple: a lane made meanwhile waits for the next wake-up
            lane = self.lanes[key]
            delay, event = key
            while lane and lane[0].start + delay <= now:
                yield lane.popleft(), event

    def first(self) -> float:
        """When the earliest event is due (infinity when none is queued)."""
        return min(
            (lane[0].start + delay for (delay, _), lane in self.lanes.items() if lane), default=math.inf
        )

    def clear(self) -> None:
        """Drop every event."""
        self.lanes.clear()
        self.order = ()


class _Family:
    """One address family's shared socket and the probes in flight on it."""

    __slots__ = (
        "error_types",
        "ident",
        "pending",
        "reply_type",
        "request_type",
        "sends",
        "seq",
        "skew_candidate",
        "skew_ns",
        "sock",
    )

    def __init__(self, sock: IcmpSocket, ident: int) -> None:
        self.sock = sock
        self.ident = ident
        self.seq = 0
        self.sends = 0
        self.pending: dict[int, _Round] = {}
        """The round of each probe in flight, by key."""
        self.request_type = _ECHO_REQUEST[sock.family]
        self.reply_type = _ECHO_REPLY[sock.family]
        self.error_types = _ERROR_TYPES[sock.family]
        self.skew_ns = 0
        self.skew_candidate: int | None = None

    def calibrate(self, received_ns: int, now_ns: int) -> None:
        """Track how far the kernel's receive stamps run from our wall clock (0 when they share one)."""
        off = received_ns - now_ns
        if abs(off - self.skew_ns) <= _SKEW_TOLERANCE_NS:
            if self.skew_ns:
                # off = skew − read delay: the largest seen is the closest to the true skew
                self.skew_ns = max(self.skew_ns, off)
            self.skew_candidate = None
        elif self.skew_candidate is not None and abs(off - self.skew_candidate) <= _SKEW_TOLERANCE_NS:
            self.skew_ns = 0 if abs(off) <= _SKEW_TOLERANCE_NS else max(off, self.skew_candidate)
            self.skew_candidate = None
        else:
            # one reply is not enough: it may be a genuine step between our send and its stamp
            self.skew_candidate = off


def _deliver(on_done: RoundCallback, result: RoundResult) -> None:
    # the callback runs inside the engine's reader and timeline: its bug must not stop other rounds
    try:
        on_done(result)
    except Exception:
        log.exception("a round's callback failed for %s", result.address)


def _key(privileged: bool, ident: int, seq: int) -> int:
    # datagram sockets: the kernel owns the identifier and only hands us our own replies
    return (ident << 16) | seq if privileged else seq


@functools.lru_cache(maxsize=16_384)
def _numeric_address(address: str) -> tuple[int, str, bytes] | None:
    """(family, canonical text, packed) for an IP literal, None for a name."""
    try:
        infos = socket.getaddrinfo(address, None, type=socket.SOCK_RAW, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    family, text = infos[0][0], str(infos[0][4][0])
    return family, text, socket.inet_pton(family, text.partition("%")[0])


class IcmpEngine:
    """Shared ICMP echo engine: open once, run many concurrent rounds, close at the end."""

    def __init__(
        self, *, privileged: bool, socket_factory: SocketFactory = open_socket, tick: float = TICK
    ) -> None:
        self._privileged = privileged
        self._tick = tick
        self._factory = socket_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._read_ns = 0  # wall-clock time of the last socket read, for the skew estimate
        self._families: dict[int, _Family] = {}
        self._rounds: set[_Round] = set()
        self._resolving: set[asyncio.Task[None]] = set()
        self._ident = int.from_bytes(os.urandom(2), "big")
        self._token = os.urandom(8)
        self._payloads: dict[int, tuple[bytes, int]] = {}
        self._closed = False
        self._timeline = _Timeline()
        self._wakeup: asyncio.TimerHandle | None = None
        self._wakeup_at = math.inf

    @classmethod
    async def open(
        cls,
        *,
        privileged: bool | None = None,
        socket_factory: SocketFactory = open_socket,
        tick: float = TICK,
    ) -> Self:
        """Open the IPv4 socket (raw if allowed, else datagram); raise IcmpPermissionError if neither.

        ``tick``: seconds between the engine's timer wake-ups (:data:`TICK`); 0 wakes up for every event.
        """
        failures: list[str] = []
        for choice in (True, False) if privileged is None else (privileged,):
            engine = cls(privileged=choice, socket_factory=socket_factory, tick=tick)
            try:
                engine._family(socket.AF_INET)
            except PermissionError as exc:
                kind = "raw socket" if choice else "datagram socket (net.ipv4.ping_group_range)"
                failures.append(f"{kind}: {exc.strerror or exc}")
                continue
            return engine
        raise IcmpPermissionError(f"cannot open an ICMP socket ({'; '.join(failures)}). {FIX_HINT}")

    @property
    def privileged(self) -> bool:
        """True with raw sockets, False with unprivileged datagram (ping) sockets."""
        return self._privileged

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop every round in flight (they return what they have) and close the sockets."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._timeline.clear()
        for task in list(self._resolving):
            task.cancel()
        for rnd in list(self._rounds):
            self._finish(rnd)
        for fam in self._families.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(fam.sock.fileno())
            fam.sock.close()
        self._families.clear()

    def _family(self, family: int) -> _Family:
        fam = self._families.get(family)
        if fam is None:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            fam = _Family(self._factory(family, self._privileged), self._ident)
            self._families[family] = fam
            self._loop.add_reader(fam.sock.fileno(), self._on_readable, fam)
        return fam

    def _payload(self, size: int) -> tuple[bytes, int]:
        cached = self._payloads.get(size)
        if cached is None:
            payload = (self._token * (size // len(self._token) + 1))[:size]
            padded = payload + b"\0" * (size % 2)
            words = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
            cached = self._payloads[size] = (payload, words)
        return cached

    async def round(
        self, address: str, *, probes: int, probe_spacing: float, timeout: float, payload_size: int = 56
    ) -> RoundResult:
        """Send ``probes`` echo requests to ``address`` and wait for their replies; failure is a value."""
        self._check(probes, probe_spacing, timeout, payload_size)
        resolved = await self._resolve(address, timeout)
        if isinstance(resolved, RoundResult):
            return resolved
        done: asyncio.Future[RoundResult] = asyncio.get_running_loop().create_future()

        def deliver(result: RoundResult) -> None:
            if not done.done():
                done.set_result(result)

        rnd = self._begin(resolved, probes, probe_spacing, timeout, payload_size, deliver)
        try:
            return await done
        finally:
            if rnd is not None and not rnd.finished:  # cancelled: its probes no longer count
                rnd.on_done = None
                self._finish(rnd)

    def start_round(
        self,
        address: str,
        *,
        probes: int,
        probe_spacing: float,
        timeout: float,
        on_done: RoundCallback,
        payload_size: int = 56,
    ) -> None:
        """Start a round and return at once; ``on_done`` gets its result exactly once, from the loop.

        The daemon's way in: no task, coroutine or timer per round, only the engine's timeline.
        At 1,000 rounds a second, the coroutine chain of :meth:`round` and the objects it keeps
        alive for the round's 4 s cost more loop time than the probes themselves. A name is
        resolved in a task first.
        """
        self._check(probes, probe_spacing, timeout, payload_size)
        numeric = _numeric_address(address)
        if numeric is None:
            task = asyncio.get_running_loop().create_task(
                self._resolve_and_start(address, probes, probe_spacing, timeout, payload_size, on_done)
            )
            self._resolving.add(task)
            task.add_done_callback(self._resolving.discard)
        else:
            self._begin(numeric, probes, probe_spacing, timeout, payload_size, on_done)

    def _check(self, probes: int, probe_spacing: float, timeout: float, payload_size: int) -> None:
        if self._closed:
            raise RuntimeError("the ICMP engine is closed")
        if probes < 1 or probe_spacing < 0 or timeout <= 0 or not 0 <= payload_size <= 65_000:
            raise ValueError("a round needs probes ≥ 1, probe_spacing ≥ 0, timeout > 0, 0 ≤ payload_size")

    async def _resolve_and_start(
        self,
        address: str,
        probes: int,
        probe_spacing: float,
        timeout: float,
        payload_size: int,
        on_done: RoundCallback,
    ) -> None:
        try:
            resolved = await self._resolve(address, timeout)
        except asyncio.CancelledError:
            _deliver(on_done, RoundResult(address, 0, 0, reason="error", error="the ICMP engine closed"))
            raise
        if isinstance(resolved, RoundResult):
            _deliver(on_done, resolved)
        else:
            self._begin(resolved, probes, probe_spacing, timeout, payload_size, on_done)

    def _begin(
        self,
        resolved: tuple[int, str, bytes],
        probes: int,
        probe_spacing: float,
        timeout: float,
        payload_size: int,
        on_done: RoundCallback,
    ) -> _Round | None:
        family, text, packed = resolved
        if self._closed:  # it closed while the name was resolved: open no socket again
            _deliver(on_done, RoundResult(text, 0, 0, reason="error", error="the ICMP engine closed"))
            return None
        try:
            fam = self._family(family)
        except OSError as exc:
            name = "IPv6" if family == socket.AF_INET6 else "IPv4"
            error = f"{name} ICMP is not available: {exc}"
            _deliver(on_done, RoundResult(text, 0, 0, reason="unreachable", error=error))
            return None
        loop = self._loop
        assert loop is not None
        payload, _ = self._payload(payload_size)
        rnd = _Round(fam, text, packed, payload, probes, timeout, on_done)
        self._rounds.add(rnd)
        rnd.start = loop.time()
        self._at(rnd, (probes - 1) * probe_spacing + timeout, _EXPIRE)
        for index in range(probes):
            if index == 0 or probe_spacing == 0:
                self._send(fam, rnd, index)
            else:
                self._at(rnd, index * probe_spacing, index)
        return rnd

    def _at(self, rnd: _Round, delay: float, event: int) -> None:
        """Schedule probe ``event`` of ``rnd`` (or its expiry) ``delay`` seconds after its start
        on the engine's one timeline, woken by one loop timer: a loop timer per probe costs more
        CPU than sending the probe. Wake-ups fall on tick boundaries, so one serves every event
        due within the tick."""
        self._timeline.push(delay, event, rnd)
        wake = self._on_tick(rnd.start + delay)
        if wake < self._wakeup_at:
            if self._wakeup is not None:
                self._wakeup.cancel()
            assert self._loop is not None
            self._wakeup = self._loop.call_at(wake, self._run_timeline)
            self._wakeup_at = wake

    def _on_tick(self, when: float) -> float:
        """The first tick boundary at or after ``when`` (``when`` itself without ticks)."""
        tick = self._tick
        return math.ceil(when / tick) * tick if tick > 0 else when

    def _run_timeline(self) -> None:
        assert self._loop is not None
        self._wakeup, self._wakeup_at = None, math.inf
        timeline = self._timeline
        now = self._loop.time() + _TIMER_TOLERANCE
        drained: set[int] = set()
        try:
            for rnd, index in timeline.due(now):
                fam = rnd.fam
                if rnd.finished:
                    continue
                if index == _EXPIRE:
                    # Read what already arrived before calling a probe lost: a busy loop can reach
                    # the expiry with the answer waiting in the socket (false loss at 10,000 targets).
                    if id(fam) not in drained:
                        drained.add(id(fam))
                        self._on_readable(fam)
                        if rnd.finished:
                            continue
                    self._finish(rnd)
                else:
                    self._send(fam, rnd, index)
        finally:
            # a bug in one send must not stop every other round's clock
            first = timeline.first()
            if first < math.inf and not self._closed:
                self._wakeup_at = wake = self._on_tick(first)
                self._wakeup = self._loop.call_at(wake, self._run_timeline)

    async def _resolve(self, address: str, timeout: float) -> tuple[int, str, bytes] | RoundResult:
        numeric = _numeric_address(address)
        if numeric is not None:
            return numeric
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(address, None, type=socket.SOCK_RAW)
        except TimeoutError:
            return RoundResult(
                address, 0, 0, reason="resolve", error=f"{address}: no answer from the resolver"
            )
        except (OSError, UnicodeError, ValueError) as exc:
            return RoundResult(address, 0, 0, reason="resolve", error=f"{address}: {exc}")
        ordered = sorted(infos, key=lambda info: info[0] not in self._families)
        family, text = ordered[0][0], str(ordered[0][4][0])
        return family, text, socket.inet_pton(family, text.partition("%")[0])

    def _finish(self, rnd: _Round) -> None:
        """End ``rnd``: forget its probes still in flight and hand its result over."""
        if rnd.finished:
            return
        rnd.finished = True
        pending = rnd.fam.pending
        for key in rnd.live:
            pending.pop(key, None)
        rnd.live.clear()
        self._rounds.discard(rnd)
        if rnd.on_done is not None:
            _deliver(rnd.on_done, rnd.result())

    def _allocate(self, fam: _Family) -> int | None:
        for _ in range(0x10000):
            fam.seq = (fam.seq + 1) & 0xFFFF
            if fam.seq == 0 and self._privileged:
                fam.ident = (fam.ident + 1) & 0xFFFF
            key = _key(self._privileged, fam.ident, fam.seq)
            if key not in fam.pending:
                return key
        return None

    def _send(self, fam: _Family, rnd: _Round, index: int) -> None:
        if rnd.finished:
            return
        rnd.unsent -= 1
        rnd.sent += 1
        key = self._allocate(fam)
        loop = self._loop
        assert loop is not None
        if key is None:
            rnd.fail_probe("error", "too many probes in flight (65,536 per address family)")
        else:
            payload, words = self._payload(len(rnd.payload))
            checksum = 0
            if fam.sock.family == socket.AF_INET:
                total = (fam.request_type << 8) + fam.ident + fam.seq + words
                total = (total & 0xFFFF) + (total >> 16)
                total = (total & 0xFFFF) + (total >> 16)
                checksum = ~total & 0xFFFF
            message = _HEADER.pack(fam.request_type, 0, checksum, fam.ident, fam.seq) + payload
            # before the send, like the socket layer's wall-clock stamp: the clock-step check
            # compares the two, and a slow sendto must not make a genuine reply look impossible
            sent_mono = loop.time()
            try:
                sent_ns = fam.sock.send(message, rnd.address)
            except OSError as exc:
                reason = "unreachable" if exc.errno in _UNREACHABLE_ERRNOS else "error"
                rnd.fail_probe(reason, f"{rnd.address}: {exc.strerror or exc}")
            else:
                rnd.stamps[2 * index] = sent_ns
                rnd.stamps[2 * index + 1] = sent_mono
                fam.pending[key] = rnd
                rnd.live[key] = index
                fam.sends += 1
                if fam.sends % _DRAIN_EVERY == 0:
                    self._on_readable(fam)
                if rnd.unsent:
                    return
        self._settle(fam, rnd)

    def _settle(self, fam: _Family, rnd: _Round) -> None:
        """Drop probes whose window has passed; finish the round when nothing is left to wait for."""
        assert self._loop is not None
        for key in rnd.expire(self._loop.time()):
            fam.pending.pop(key, None)
        if rnd.unsent == 0 and not rnd.live:
            self._finish(rnd)

    def _on_readable(self, fam: _Family) -> None:
        datagrams = fam.sock.receive()
        self._read_ns = time.time_ns()
        for datagram in datagrams:
            self._handle(fam, datagram)

    def _handle(self, fam: _Family, datagram: Datagram) -> None:
        message = datagram.message
        if len(message) < 8:
            return
        if datagram.queued_error:
            if message[0] == fam.request_type:
                self._refused(fam, message, datagram.source, None, f"ICMP error for {datagram.source}")
            return
        kind = message[0]
        if kind == fam.reply_type:
            self._reply(fam, message, datagram)
        elif kind in fam.error_types:
            self._icmp_error(fam, message, datagram.source)

    def _reply(self, fam: _Family, message: bytes, datagram: Datagram) -> None:
        ident, seq = _ID_SEQ.unpack_from(message, 4)
        key = _key(self._privileged, ident, seq)
        rnd = fam.pending.get(key)
        if rnd is None:
            return
        source = datagram.source
        if (source != rnd.address and source.partition("%")[0] != rnd.address.partition("%")[0]) or (
            message[8:] != rnd.payload
        ):
            return
        del fam.pending[key]
        index = rnd.live.pop(key)
        assert self._loop is not None
        rtt_ns = datagram.received_ns - rnd.stamps[2 * index] - fam.skew_ns
        elapsed_ns = (self._loop.time() - rnd.stamps[2 * index + 1]) * 1e9
        # a wall-clock step between send and receive would report a fiction: drop the probe instead
        if 0 <= rtt_ns <= elapsed_ns + _CLOCK_SLACK_NS and rtt_ns <= rnd.timeout * 1e9:
            rnd.rtts[index] = rtt_ns / 1e9
            fam.skew_candidate = None
            if fam.skew_ns:
                fam.calibrate(datagram.received_ns, self._read_ns)  # refine a skew already known
        elif rtt_ns < 0 or rtt_ns > elapsed_ns + _CLOCK_SLACK_NS:
            # Times that disagree with the monotonic time that passed: a clock step, or kernel stamps
            # on another clock (libfaketime). Not a loss: the round is discarded. Only such replies
            # move the skew estimate: a busy loop reading late makes every reply look delayed, and
            # must never be taken for a skew (it was, under overload, discarding good rounds).
            rnd.stepped += 1
            fam.calibrate(datagram.received_ns, self._read_ns)
        if not rnd.unsent:
            self._settle(fam, rnd)

    def _icmp_error(self, fam: _Family, message: bytes, source: str) -> None:
        quoted = message[8:]
        if fam.sock.family == socket.AF_INET:
            header_len = (quoted[0] & 0x0F) * 4 if quoted else 0
            if len(quoted) < header_len + 8 or quoted[9] != socket.IPPROTO_ICMP:
                return
            inner, destination = quoted[header_len:], quoted[16:20]
        else:
            if len(quoted) < 48 or quoted[6] != socket.IPPROTO_ICMPV6:
                return
            inner, destination = quoted[40:], quoted[24:40]
        if inner[0] != fam.request_type:
            return
        exceeded = message[0] == (11 if fam.sock.family == socket.AF_INET else 3)
        what = "time exceeded" if exceeded else "destination unreachable"
        self._refused(
            fam, inner, None, destination, f"{what} (ICMP type {message[0]} code {message[1]}) from {source}"
        )

    def _refused(
        self, fam: _Family, request: bytes, address: str | None, packed: bytes | None, text: str
    ) -> None:
        ident, seq = _ID_SEQ.unpack_from(request, 4)
        key = _key(self._privileged, ident, seq)
        rnd = fam.pending.get(key)
        if rnd is None:
            return
        if (address is not None and address.partition("%")[0] != rnd.address.partition("%")[0]) or (
            packed is not None and packed != rnd.packed
        ):
            return
        del fam.pending[key]
        del rnd.live[key]
        rnd.fail_probe("unreachable", f"{rnd.address}: {text}")
        self._settle(fam, rnd)


class IcmpParams(CollectorParams):
    """One round of echo probes per interval."""

    kind: Literal["icmp"] = "icmp"
    interval: float = Field(default=10.0, gt=0, le=86_400, description="Seconds between two rounds.")
    timeout: float = Field(default=1.0, gt=0, le=60, description="Seconds to wait for each probe's reply.")
    probes: int = Field(default=5, ge=1, le=100, description="Echo requests per round.")
    probe_spacing: float = Field(
        default=1.0, ge=0, le=60, description="Seconds between the probes of a round."
    )
    payload_size: int = Field(default=56, ge=0, le=1472, description="Bytes of payload per echo request.")

    @model_validator(mode="after")
    def _round_fits_interval(self) -> IcmpParams:
        span = (self.probes - 1) * self.probe_spacing + self.timeout
        if span >= self.interval:
            raise ValueError(
                f"a round takes (probes - 1) × probe_spacing + timeout = {span:g} s, which must be"
                f" shorter than interval ({self.interval:g} s): lower probes, probe_spacing or timeout"
            )
        return self


def round_measurements(result: RoundResult) -> tuple[Measurement, ...]:
    """The ``icmp_*`` measurements of one round (RTT statistics only when replies came back).

    Built with ``tuple.__new__``, as ``Measurement(...)`` builds them, without the call of the named
    tuple's Python ``__new__``: a thousand rounds a second at province scale.
    """
    new = tuple.__new__
    out = [
        new(Measurement, ("icmp_packets_sent", result.sent, (), "delta")),
        new(Measurement, ("icmp_packets_received", result.received, (), "delta")),
        new(Measurement, ("icmp_loss_ratio", result.loss_ratio, (), "gauge")),
    ]
    if result.rtts:
        out.append(new(Measurement, ("icmp_rtt_min_seconds", result.min, (), "gauge")))
        out.append(new(Measurement, ("icmp_rtt_avg_seconds", result.avg, (), "gauge")))
        out.append(new(Measurement, ("icmp_rtt_max_seconds", result.max, (), "gauge")))
        jitter = result.jitter
        if jitter is not None:
            out.append(new(Measurement, ("icmp_jitter_seconds", jitter, (), "gauge")))
    return tuple(out)


def round_result(result: RoundResult) -> CollectResult:
    """What a poll reports of one round: success with a reply, a reason without, nothing on a step.

    The round itself is not kept in ``details``: the latest state would then have to copy every
    result to drop it (1,000 rounds a second at province scale).
    """
    if result.stepped:
        # Neither a loss nor an RTT: the health rule skips it (no verdict), reports don't count it.
        return CollectResult(
            success=False, error=result.error, reason="clock_step", details={"discarded": True}
        )
    measurements = round_measurements(result)
    if result.received > 0:
        return CollectResult(success=True, measurements=measurements)
    return CollectResult(
        success=False, measurements=measurements, error=result.error, reason=result.reason or "timeout"
    )


def _no_engine() -> CollectResult:
    return CollectResult.failed("permission", f"no ICMP engine is open. {FIX_HINT}")


async def collect(target: Target, params: IcmpParams, ctx: CollectContext) -> CollectResult:
    """One round of ``params.probes`` echo requests to ``target`` through the shared engine."""
    engine = ctx.get("icmp")
    if not isinstance(engine, IcmpEngine):
        return _no_engine()
    result = await engine.round(
        target.address,
        probes=params.probes,
        probe_spacing=params.probe_spacing,
        timeout=params.timeout,
        payload_size=params.payload_size,
    )
    return round_result(result)


def start(target: Target, params: IcmpParams, ctx: CollectContext, done: DoneFn) -> None:
    """The same round as :func:`collect`, started without a coroutine; ``done`` gets its result.

    The round ends within ``(probes - 1) × probe_spacing + timeout``, which the params hold under
    the interval: the poll's deadline is kept by the engine's own expiry.
    """
    engine = ctx.get("icmp")
    if not isinstance(engine, IcmpEngine):
        done(_no_engine())
        return
    engine.start_round(
        target.address,
        probes=params.probes,
        probe_spacing=params.probe_spacing,
        timeout=params.timeout,
        payload_size=params.payload_size,
        on_done=functools.partial(_report, done),
    )


def _report(done: DoneFn, result: RoundResult) -> None:
    # a partial of this, not a lambda: one object per round for the garbage collector, not two
    done(round_result(result))


SPEC: CollectorSpec[IcmpParams] = CollectorSpec(
    kind="icmp",
    params_model=IcmpParams,
    collect=collect,
    description="ICMP echo rounds: loss, RTT, jitter.",
    start=start,
)
