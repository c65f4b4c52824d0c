"""The ICMP engine on a thread of its own, with its own event loop.

At province scale one event loop could not carry everything: 5,000 echo probes a second were about
half of its work, SNMP walks about a third. SNMP waits on the loop between each request and its
answer, so when the loop was saturated the walks slowed until they hit their deadline, while the
probes (sent by timers) kept their slots. With the engine here, probes are sent and answers read
on this thread; the polling loop only awaits each round's result. The engine's socket calls release
the GIL, so the two loops overlap there; the Python parts still take turns.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Self, TypeVar

from collectors.icmp import IcmpEngine, RoundResult

T = TypeVar("T")

_JOIN_SECONDS = 5.0


class IcmpThread:
    """An :class:`IcmpEngine` running on its own thread: open once, run many rounds, close at the end."""

    def __init__(self, engine: IcmpEngine, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self._engine = engine
        self._loop = loop
        self._thread = thread

    @classmethod
    async def open(cls, *, privileged: bool | None = None) -> Self:
        """Start the thread and open the engine there; raises what :meth:`IcmpEngine.open` raises."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_serve, args=(loop,), name="netwatch-icmp", daemon=True)
        thread.start()
        try:
            engine = await _on(loop, IcmpEngine.open(privileged=privileged))
        except BaseException:
            await _stop(loop, thread)
            raise
        return cls(engine, loop, thread)

    @property
    def privileged(self) -> bool:
        """True with raw sockets, False with unprivileged datagram (ping) sockets."""
        return self._engine.privileged

    async def round(
        self, address: str, *, probes: int, probe_spacing: float, timeout: float, payload_size: int = 56
    ) -> RoundResult:
        """One round on the engine's thread (see :meth:`IcmpEngine.round`); cancelling it cancels the round."""
        return await _on(
            self._loop,
            self._engine.round(
                address,
                probes=probes,
                probe_spacing=probe_spacing,
                timeout=timeout,
                payload_size=payload_size,
            ),
        )

    async def close(self) -> None:
        """Close the engine (rounds in flight return what they have), then stop the thread."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            await _on(self._loop, self._engine.close())
        await _stop(self._loop, self._thread)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


async def _on(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> T:
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))


async def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if thread.is_alive():
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, _JOIN_SECONDS)
    if not thread.is_alive():
        loop.close()
