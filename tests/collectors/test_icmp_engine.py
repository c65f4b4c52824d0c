"""The ICMP engine against a scripted socket layer: matching, foreign and duplicate replies, stats."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.base import CollectContext, Target
from collectors.icmp import IcmpEngine, IcmpParams, RoundResult, collect, round_measurements
from collectors.icmp_socket import Datagram

Script = Callable[["FakeSocket", bytes, str, int], None]


class FakeSocket:
    """A socket layer that records requests and lets a script answer them, readable through a pipe."""

    def __init__(self, family: int, privileged: bool) -> None:
        self.family = family
        self.privileged = privileged
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        self.inbox: list[Datagram] = []
        self.requests: list[tuple[bytes, str, int]] = []
        self.script: Script | None = None
        self.send_error: int | None = None

    def fileno(self) -> int:
        return self._read

    def send(self, message: bytes, address: str) -> int:
        if self.send_error is not None:
            raise OSError(self.send_error, os.strerror(self.send_error))
        sent_ns = time.time_ns()
        self.requests.append((message, address, sent_ns))
        if self.script is not None:
            self.script(self, message, address, sent_ns)
        return sent_ns

    def deliver(self, datagram: Datagram) -> None:
        self.inbox.append(datagram)
        os.write(self._write, b"!")

    def receive(self) -> list[Datagram]:
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 4096)
        out, self.inbox = self.inbox, []
        return out

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


def reply_to(
    request: bytes, *, kind: int = 0, ident: int | None = None, payload: bytes | None = None
) -> bytes:
    """The echo reply a peer would send back to ``request`` (checksum not checked by the engine)."""
    _, _, _, req_ident, seq = struct.unpack_from("!BBHHH", request)
    body = request[8:] if payload is None else payload
    return struct.pack("!BBHHH", kind, 0, 0, req_ident if ident is None else ident, seq) + body


def _ident(request: bytes) -> int:
    return int(struct.unpack_from("!H", request, 4)[0])


def answer_after(rtts: list[float], copies: int = 1) -> Script:
    """A peer answering probe i after rtts[i] seconds, ``copies`` times each; probes beyond are lost."""

    def script(sock: FakeSocket, message: bytes, address: str, sent_ns: int) -> None:
        index = len(sock.requests) - 1
        if index >= len(rtts):
            return
        rtt = rtts[index]
        loop = asyncio.get_running_loop()
        for _ in range(copies):
            datagram = Datagram(reply_to(message), address, sent_ns + round(rtt * 1e9))
            loop.call_later(rtt, sock.deliver, datagram)

    return script


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[IcmpEngine, dict[int, FakeSocket]]]:
    made: dict[int, FakeSocket] = {}

    def factory(family: int, privileged: bool) -> FakeSocket:
        made[family] = FakeSocket(family, privileged)
        return made[family]

    engine = await IcmpEngine.open(privileged=True, socket_factory=factory)
    yield engine, made
    await engine.close()


async def test_replies_are_matched_and_timed_by_socket_timestamps(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]],
) -> None:
    engine, made = fakes
    made[socket.AF_INET].script = answer_after([0.003, 0.001, 0.002])
    result = await engine.round("203.0.113.10", probes=3, probe_spacing=0.01, timeout=0.5)
    assert (result.sent, result.received, result.reason) == (3, 3, None)
    assert result.rtts == pytest.approx((0.003, 0.001, 0.002), abs=1e-9)


async def test_echo_request_checksum_is_valid_for_raw_sockets(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]],
) -> None:
    engine, made = fakes
    await engine.round("203.0.113.10", probes=1, probe_spacing=0, timeout=0.01, payload_size=57)
    request = made[socket.AF_INET].requests[0][0]
    padded = request + b"\0"
    total = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    assert request[0] == 8 and len(request) == 8 + 57
    assert total == 0xFFFF


@pytest.mark.parametrize(
    "foreign",
    [
        pytest.param(
            lambda req, addr: Datagram(reply_to(req, ident=_ident(req) ^ 1), addr, 0), id="other-identifier"
        ),
        pytest.param(
            lambda req, addr: Datagram(reply_to(req, payload=b"x" * 56), addr, 0), id="other-payload"
        ),
        pytest.param(lambda req, addr: Datagram(reply_to(req), "203.0.113.99", 0), id="other-source"),
        pytest.param(lambda req, addr: Datagram(reply_to(req, kind=8), addr, 0), id="echo-request"),
        pytest.param(lambda req, addr: Datagram(reply_to(req)[:6], addr, 0), id="truncated"),
    ],
)
async def test_foreign_replies_never_count(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]], foreign: Callable[[bytes, str], Datagram]
) -> None:
    engine, made = fakes

    def script(sock: FakeSocket, message: bytes, address: str, sent_ns: int) -> None:
        stray = foreign(message, address)
        sock.deliver(Datagram(stray.message, stray.source, sent_ns + 1000))

    made[socket.AF_INET].script = script
    result = await engine.round("203.0.113.10", probes=2, probe_spacing=0.01, timeout=0.05)
    assert (result.sent, result.received, result.reason) == (2, 0, "timeout")


async def test_duplicate_replies_count_once(fakes: tuple[IcmpEngine, dict[int, FakeSocket]]) -> None:
    engine, made = fakes
    made[socket.AF_INET].script = answer_after([0.001] * 4, copies=3)
    result = await engine.round("203.0.113.10", probes=4, probe_spacing=0.005, timeout=0.2)
    assert (result.sent, result.received) == (4, 4)
    assert result.loss_ratio == 0.0


@pytest.mark.parametrize(
    ("received_after", "stepped", "reason"),
    [
        # Stamps that disagree with the monotonic time that passed (the fake delivers at once): the
        # round is discarded, neither loss nor RTT. (A really late reply finds its probe expired.)
        pytest.param(0.3, 1, "clock_step", id="stamped-later-than-time-passed"),
        pytest.param(-0.001, 1, "clock_step", id="clock-stepped-back"),
        pytest.param(5.0, 1, "clock_step", id="clock-stepped-forward"),
    ],
)
async def test_impossible_rtts_are_discarded(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]], received_after: float, stepped: int, reason: str
) -> None:
    engine, made = fakes

    def script(sock: FakeSocket, message: bytes, address: str, sent_ns: int) -> None:
        sock.deliver(Datagram(reply_to(message), address, sent_ns + round(received_after * 1e9)))

    made[socket.AF_INET].script = script
    result = await engine.round("203.0.113.10", probes=1, probe_spacing=0, timeout=0.1)
    assert (result.sent, result.received, result.rtts) == (1, 0, ())
    assert (result.stepped, result.reason) == (stepped, reason)


async def test_replies_read_late_by_a_busy_loop_keep_their_kernel_rtt(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]],
) -> None:
    """An overloaded loop reads replies seconds after the kernel stamped them: that is not a skew
    between the clocks, and must neither discard the round nor inflate its RTTs."""
    engine, made = fakes

    def script(sock: FakeSocket, message: bytes, address: str, sent_ns: int) -> None:
        datagram = Datagram(reply_to(message), address, sent_ns + 50_000)  # stamped 50 µs after the send
        asyncio.get_running_loop().call_later(1.2, sock.deliver, datagram)  # read 1.2 s later

    made[socket.AF_INET].script = script
    result = await engine.round("203.0.113.10", probes=3, probe_spacing=0.001, timeout=2.0)
    assert (result.sent, result.received, result.stepped, result.reason) == (3, 3, 0, None)
    assert result.max is not None and result.max < 0.001


async def test_destination_unreachable_ends_the_round_without_waiting(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]],
) -> None:
    engine, made = fakes

    def script(sock: FakeSocket, message: bytes, address: str, sent_ns: int) -> None:
        inner_ip = bytes([0x45, 0, 0, 84, 0, 0, 0, 0, 64, 1, 0, 0]) + socket.inet_aton("198.18.0.1")
        inner_ip += socket.inet_aton(address)
        error = struct.pack("!BBHI", 3, 1, 0, 0) + inner_ip + message[:8]
        sock.deliver(Datagram(error, "198.18.0.1", sent_ns + 1000))

    made[socket.AF_INET].script = script
    started = time.monotonic()
    result = await engine.round("203.0.113.10", probes=2, probe_spacing=0.01, timeout=5.0)
    assert (result.sent, result.received, result.unreachable, result.reason) == (2, 0, 2, "unreachable")
    assert "198.18.0.1" in (result.error or "")
    assert time.monotonic() - started < 5.0


async def test_send_error_no_route_is_unreachable(fakes: tuple[IcmpEngine, dict[int, FakeSocket]]) -> None:
    engine, made = fakes
    made[socket.AF_INET].send_error = errno.EHOSTUNREACH
    result = await engine.round("203.0.113.10", probes=3, probe_spacing=0.001, timeout=5.0)
    assert (result.sent, result.received, result.reason) == (3, 0, "unreachable")


async def test_datagram_sockets_match_despite_kernel_identifier_and_read_queued_errors() -> None:
    made: dict[int, FakeSocket] = {}

    def factory(family: int, privileged: bool) -> FakeSocket:
        made[family] = FakeSocket(family, privileged)
        return made[family]

    def kernel_rewrites_identifier(sock: FakeSocket, message: bytes, address: str, sent_ns: int) -> None:
        if address == "203.0.113.10":
            sock.deliver(Datagram(reply_to(message, ident=4242), address, sent_ns + 2000))
        else:
            sock.deliver(Datagram(message, address, sent_ns + 2000, queued_error=True))

    async with await IcmpEngine.open(privileged=False, socket_factory=factory) as engine:
        assert engine.privileged is False
        made[socket.AF_INET].script = kernel_rewrites_identifier
        answered, refused = await asyncio.gather(
            engine.round("203.0.113.10", probes=3, probe_spacing=0.002, timeout=0.5),
            engine.round("203.0.113.11", probes=3, probe_spacing=0.002, timeout=0.5),
        )
    assert answered.received == 3
    assert answered.rtts == pytest.approx((2e-6,) * 3)
    assert (refused.received, refused.reason) == (0, "unreachable")


async def test_ipv6_socket_opens_on_first_ipv6_round(fakes: tuple[IcmpEngine, dict[int, FakeSocket]]) -> None:
    engine, made = fakes
    assert socket.AF_INET6 not in made
    result = await engine.round("2001:db8::1", probes=1, probe_spacing=0, timeout=0.01)
    request = made[socket.AF_INET6].requests[0][0]
    assert request[0] == 128
    assert (result.address, result.reason) == ("2001:db8::1", "timeout")


@pytest.mark.parametrize(
    ("rtts", "sent", "expected"),
    [
        ((0.010, 0.020, 0.030), 3, (0.010, 0.020, 0.030, 0.010, 0.0)),
        ((0.010, 0.030, 0.010, 0.030), 5, (0.010, 0.020, 0.030, 0.020, 0.2)),
        ((0.005,), 4, (0.005, 0.005, 0.005, None, 0.75)),
        ((), 5, (None, None, None, None, 1.0)),
        ((), 0, (None, None, None, None, 1.0)),
    ],
)
def test_round_statistics(rtts: tuple[float, ...], sent: int, expected: tuple[float | None, ...]) -> None:
    result = RoundResult("203.0.113.10", sent, len(rtts), rtts)
    got = (result.min, result.avg, result.max, result.jitter, result.loss_ratio)
    assert got == pytest.approx(expected)


async def test_collect_without_an_engine_says_how_to_fix() -> None:
    result = await collect(Target("gw", "127.0.0.1"), IcmpParams(), CollectContext())
    assert (result.success, result.reason) == (False, "permission")
    assert "setcap cap_net_raw+ep" in (result.error or "")
    assert "ping_group_range" in (result.error or "")


async def test_collect_reports_round_as_measurements(fakes: tuple[IcmpEngine, dict[int, FakeSocket]]) -> None:
    engine, made = fakes
    made[socket.AF_INET].script = answer_after([0.002, 0.004])
    params = IcmpParams(probes=3, probe_spacing=0.01, timeout=0.1, interval=1)
    result = await collect(Target("gw", "203.0.113.10", port=22), params, CollectContext({"icmp": engine}))
    assert result.success
    assert {m.name: m.value for m in result.measurements} == pytest.approx(
        {
            "icmp_packets_sent": 3,
            "icmp_packets_received": 2,
            "icmp_loss_ratio": 1 / 3,
            "icmp_rtt_min_seconds": 0.002,
            "icmp_rtt_avg_seconds": 0.003,
            "icmp_rtt_max_seconds": 0.004,
            "icmp_jitter_seconds": 0.002,
        }
    )


async def test_collect_all_lost_is_a_timeout_failure(fakes: tuple[IcmpEngine, dict[int, FakeSocket]]) -> None:
    engine, _ = fakes
    params = IcmpParams(probes=2, probe_spacing=0.01, timeout=0.05, interval=1)
    result = await collect(Target("gw", "203.0.113.10"), params, CollectContext({"icmp": engine}))
    assert (result.success, result.reason) == (False, "timeout")
    assert result.value("icmp_packets_sent") == 2
    assert result.value("icmp_loss_ratio") == 1.0
    assert result.value("icmp_rtt_avg_seconds") is None


async def test_a_cancelled_round_sends_no_more_probes(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]],
) -> None:
    engine, made = fakes
    task = asyncio.create_task(engine.round("203.0.113.10", probes=3, probe_spacing=0.05, timeout=0.5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.15)
    assert len(made[socket.AF_INET].requests) == 1


async def test_closing_the_engine_ends_rounds_in_flight() -> None:
    engine = await IcmpEngine.open(privileged=True, socket_factory=FakeSocket)
    task = asyncio.create_task(engine.round("203.0.113.10", probes=2, probe_spacing=0.01, timeout=30))
    await asyncio.sleep(0.05)
    await engine.close()
    result = await asyncio.wait_for(task, timeout=1)
    assert (result.sent, result.received, result.reason) == (2, 0, "timeout")


async def test_started_rounds_report_once_each_without_a_task_per_round(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]],
) -> None:
    engine, made = fakes
    made[socket.AF_INET].script = answer_after([0.002, 0.002])
    results: dict[str, list[RoundResult]] = {}
    tasks_before = len(asyncio.all_tasks())
    for i in range(40):
        address = f"203.0.113.{i + 1}"
        engine.start_round(
            address,
            probes=1,
            probe_spacing=0,
            timeout=0.2,
            on_done=lambda r: results.setdefault(r.address, []).append(r),
        )
    assert len(asyncio.all_tasks()) == tasks_before, "a started round must not need a task"
    await asyncio.sleep(0.5)
    assert sorted(results) == sorted(f"203.0.113.{i + 1}" for i in range(40))
    assert all(len(r) == 1 for r in results.values()), "each round reports exactly once"
    answered = [r[0] for r in results.values() if r[0].received]
    assert len(answered) == 2 and all(r.rtts == pytest.approx((0.002,), abs=1e-9) for r in answered)
    lost = [r[0] for r in results.values() if not r[0].received]
    assert len(lost) == 38 and {r.reason for r in lost} == {"timeout"}


async def test_a_callback_that_raises_does_not_stop_other_rounds(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]], caplog: pytest.LogCaptureFixture
) -> None:
    engine, made = fakes
    made[socket.AF_INET].script = answer_after([0.001, 0.001])
    got: list[RoundResult] = []

    def broken(result: RoundResult) -> None:
        raise RuntimeError("sink bug")

    engine.start_round("203.0.113.1", probes=1, probe_spacing=0, timeout=0.2, on_done=broken)
    engine.start_round("203.0.113.2", probes=1, probe_spacing=0, timeout=0.2, on_done=got.append)
    await asyncio.sleep(0.1)
    assert [(r.address, r.received) for r in got] == [("203.0.113.2", 1)]
    assert "callback failed for 203.0.113.1" in caplog.text
    follow = await engine.round("203.0.113.3", probes=1, probe_spacing=0, timeout=0.2)
    assert follow.received == 0 and follow.reason == "timeout", "the engine keeps working"


async def test_closing_the_engine_reports_started_rounds() -> None:
    engine = await IcmpEngine.open(privileged=True, socket_factory=FakeSocket)
    got: list[RoundResult] = []
    engine.start_round("203.0.113.10", probes=2, probe_spacing=0.01, timeout=30, on_done=got.append)
    await asyncio.sleep(0.05)
    await engine.close()
    assert [(r.sent, r.received, r.reason) for r in got] == [(2, 0, "timeout")]
    with pytest.raises(RuntimeError, match="closed"):
        engine.start_round("203.0.113.11", probes=1, probe_spacing=0, timeout=1, on_done=got.append)


def test_the_timeline_hands_out_what_is_due_never_early_and_each_round_in_its_order() -> None:
    """Rounds starting in time order fill each delay's lane in order; a wake-up takes every event
    due, none before its time, and a round's probes and expiry in their order even when late."""
    from types import SimpleNamespace

    from collectors.icmp import _EXPIRE, _Timeline

    timeline = _Timeline()
    delays = (1.0, 2.0, 3.0, 4.0, 4.5)  # probes 1-4 at 1 s spacing, expiry after 0.5 s
    rounds = [SimpleNamespace(start=i * 0.37, number=i) for i in range(40)]
    for rnd in rounds:
        for delay in delays:
            timeline.push(delay, _EXPIRE if delay == 4.5 else int(delay), rnd)  # type: ignore[arg-type]
    events = sorted(rnd.start + delay for rnd in rounds for delay in delays)
    assert timeline.first() == events[0]
    assert list(timeline.due(events[0] - 0.001)) == [], "nothing is handed out before it is due"
    handed: list[tuple[float, int]] = []
    # Wake-ups 0.25 s apart, and one 3 s late (a busy loop): each takes exactly what is due.
    wakes = [events[0] + 0.25 * k for k in range(40)] + [events[0] + 13.0, events[-1]]
    for now in wakes:
        got = [
            (rnd.start + (4.5 if event == _EXPIRE else float(event)), rnd.number)  # type: ignore[attr-defined]
            for rnd, event in timeline.due(now)
        ]
        assert all(at <= now for at, _ in got), "nothing is handed out before it is due"
        assert timeline.first() > now, "everything due was handed out"
        handed += got
    assert sorted(at for at, _ in handed) == events, "every event handed out once"
    for rnd in rounds:  # each round's events in its own order
        mine = [at for at, number in handed if number == rnd.number]
        assert mine == sorted(mine) and len(mine) == len(delays)
    assert timeline.first() == float("inf")


async def test_probes_due_within_a_tick_go_out_together_and_never_early(
    fakes: tuple[IcmpEngine, dict[int, FakeSocket]],
) -> None:
    """50 rounds started 1 ms apart: their later probes and expiries share the engine's 10 ms ticks."""
    engine, made = fakes
    loop = asyncio.get_running_loop()
    sent_at: dict[str, list[float]] = {}
    made[socket.AF_INET].script = lambda _s, _m, address, _ns: sent_at.setdefault(address, []).append(
        loop.time()
    )
    wakes: list[float] = []
    run_timeline = engine._run_timeline

    def counted() -> None:
        wakes.append(loop.time())
        run_timeline()

    engine._run_timeline = counted  # type: ignore[method-assign]
    results: list[RoundResult] = []
    for i in range(50):
        engine.start_round(
            f"203.0.113.{i + 1}", probes=3, probe_spacing=0.05, timeout=0.05, on_done=results.append
        )
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.4)
    assert len(results) == 50 and all(r.sent == 3 for r in results)
    for address, times in sent_at.items():
        assert len(times) == 3
        early = [i for i in (1, 2) if times[i] < times[0] + i * 0.05 - 1e-3]
        assert not early, f"{address}: probes {early} went out before their spacing"
    # 100 later probes and 50 expiries over ~0.2 s: about one wake-up per tick, not one per event
    span = max(wakes) - min(wakes)
    assert len(wakes) <= span / 0.01 + 5, f"{len(wakes)} wake-ups over {span:.3f} s"


@given(
    sent=st.integers(min_value=0, max_value=20),
    rtts=st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=20),
)
def test_a_rounds_measurements_are_its_own_figures(sent: int, rtts: list[float]) -> None:
    """What a poll reports of a round (and /metrics, the database and reports read) is exactly
    what the round measured: loss, min/avg/max RTT and jitter, and the probe counts."""
    rtts = rtts[:sent]
    result = RoundResult("127.0.0.1", sent, len(rtts), tuple(rtts))
    got = {m.name: (m.value, m.kind, m.labels) for m in round_measurements(result)}
    figures = {
        "icmp_loss_ratio": result.loss_ratio,
        "icmp_rtt_min_seconds": result.min,
        "icmp_rtt_avg_seconds": result.avg,
        "icmp_rtt_max_seconds": result.max,
        "icmp_jitter_seconds": result.jitter,
    }
    assert got.pop("icmp_packets_sent") == (sent, "delta", ())
    assert got.pop("icmp_packets_received") == (len(rtts), "delta", ())
    assert got == {name: (value, "gauge", ()) for name, value in figures.items() if value is not None}
