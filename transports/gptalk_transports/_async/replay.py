"""Replay: a connector whose streams play the server side from a cassette, offline.

The client parses the recorded bytes through its normal path.  Timing is
instant by default, or as recorded (``speed=1``), scaled, or with gaps capped,
on an injectable clock; the bytes can be cut again into single bytes or seeded
random pieces.  What to send when is the sans-IO replay state's; this module
only waits on the clock and hands the bytes over.
"""

from __future__ import annotations

from typing import Protocol

from anyio import current_time, sleep

from gptalk_proto.cassette import Cassette, CassetteError, Replayer, ReplayState, ReplayTiming

from .._backends.base import AsyncByteStream
from .._cassettes import _cutter, replay_options
from .._handshake import RequestOptions

__all__ = ["AsyncReplayClock", "AsyncReplayConnector"]


class AsyncReplayClock(Protocol):
    """Where replay time comes from (a fake one makes timing tests instant)."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class _DefaultClock:
    """The event loop's clock (the blocking side: the system's monotonic one)."""

    def now(self) -> float:
        return current_time()

    async def sleep(self, seconds: float) -> None:
        await sleep(seconds)


class _AsyncReplayStream:
    def __init__(self, state: ReplayState, clock: AsyncReplayClock) -> None:
        self._state = state
        self._clock = clock
        self._eof = False

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        # Instant replay needs no clock at all.
        self._state.sent(data, 0.0 if self._state.timing.speed is None else self._clock.now())

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        if self._eof:
            return b""
        state = self._state
        if state.timing.speed is None:  # instant replay: all at once, no clock
            data = state.next_now(max_bytes)
        else:
            due, data = state.next(max_bytes)
            if due:  # (0.0: at once)
                wait = due - self._clock.now()
                if wait > 0:
                    # A recorded gap longer than the client's read timeout
                    # times out, as it would have live.
                    await self._clock.sleep(wait if timeout is None else min(wait, timeout))
                    if timeout is not None and wait > timeout:
                        raise TimeoutError
        if data is None:
            self._eof = True
            return b""
        return data

    async def start_tls(
        self, context: object, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        raise CassetteError("replayed connections carry no TLS")

    def is_readable(self) -> bool:
        return self._eof or self._state.connection.at_eof

    async def aclose(self) -> None:
        self._eof = True


class AsyncReplayConnector:
    """Serves a client from a cassette, offline.

    Args:
        cassette: what to play.
        timing: when chunks arrive (default: at once).
        rechunk: ``"recorded"``, ``"bytes"`` or an int seed for random pieces.
        clock: replaces the default clock and sleep (the event loop's; the
            system's on the blocking side).
    """

    def __init__(
        self,
        cassette: Cassette,
        *,
        timing: ReplayTiming | None = None,
        rechunk: str | int = "recorded",
        clock: AsyncReplayClock | None = None,
    ) -> None:
        self.replayer = Replayer(cassette)
        self.timing = timing or ReplayTiming()
        self._cut = _cutter(rechunk)
        self.clock: AsyncReplayClock = clock or _DefaultClock()
        self._options = replay_options(cassette.origin)

    @property
    def request_options(self) -> RequestOptions:
        """The options a client's requests get (as when the cassette was recorded)."""
        return self._options

    def _state(self) -> ReplayState:
        # One connection's worth of replay: the server side of the next steps.
        return ReplayState(self.replayer.connection(), self.timing, self._cut)

    def assert_played(self) -> None:
        """Fail if any recorded step was never reached."""
        self.replayer.assert_played()

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        """Open a connection: one that plays the cassette's next recorded connection."""
        return _AsyncReplayStream(self._state(), self.clock)
