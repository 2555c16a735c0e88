"""Record and replay transports: connectors that tee, and connectors that play.

* Recording wraps any connector.  Every byte the client writes or reads goes
  through a :class:`~gptalk_proto.cassette.Recorder` as it passes, so a recorded chat
  behaves exactly like a live one.  An endless stream stops cleanly at
  ``[DONE]`` (the client stops), at an event limit, or after an idle timeout:
  the recording then ends the stream as the server closing it.
* Replay never touches the network: the connector's streams play the server
  side from the cassette, and the client parses the recorded bytes through its
  normal path.  Timing is instant by default, or as recorded (``speed=1``),
  scaled, or with gaps capped, on an injectable clock; the bytes can be cut
  again into single bytes or seeded random pieces.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import anyio

from gptalk_proto import LocalProtocolError
from gptalk_proto.cassette import (
    Cassette,
    CassetteError,
    Recorder,
    Replayer,
    ReplayState,
    ReplayTiming,
    rechunker,
)

from ._config import Origin
from ._connector import AsyncConnectorProtocol, RequestOptions, SyncConnectorProtocol
from ._streams import AsyncByteStream, SyncByteStream

__all__ = [
    "AsyncRecordingConnector",
    "AsyncReplayConnector",
    "CassetteFileError",
    "Recording",
    "ReplayTiming",
    "SyncRecordingConnector",
    "SyncReplayConnector",
    "load_cassette",
    "save_cassette",
    "write_atomically",
]


class CassetteFileError(CassetteError):
    """A cassette file cannot be read at all (missing, a directory, no access)."""


def load_cassette(path: str | Path) -> Cassette:
    """Read, validate and re-parse a cassette file.

    Raises :class:`CassetteError` whose message starts with the file's name,
    then the field (``x.json: interactions[2].chunks[5].t: ...``);
    :class:`CassetteFileError` if the file cannot be read.
    """
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise CassetteFileError(
            f"{path}: cannot read the cassette: {exc.strerror or exc}"
        ) from None
    try:
        return Cassette.loads(text)
    except CassetteError as error:
        raise CassetteError(f"{path}: {error}") from None


def write_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then move
    it over ``path``: readers see the old file or the new one, never half of
    one, and a failed write leaves nothing behind (``OSError`` is raised)."""
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_cassette(path: str | Path, cassette: Cassette) -> None:
    """Write a cassette (deterministic JSON), creating its folder; the write
    is atomic."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, cassette.dumps())


# -- recording ----------------------------------------------------------------------


class Recording:
    """One recording session, shared by the connections of one client.

    Args:
        origin: the service URL.
        max_events: end a stream after this many events.
        idle_timeout: end a stream silent for this many seconds.
        clock: monotonic seconds (time offsets in the cassette count from the
            first call).
    """

    def __init__(
        self,
        origin: str,
        *,
        max_events: int | None = None,
        idle_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if Origin.parse(origin).path:
            # A cassette tells its steps apart (login, text, stream) by their
            # paths, and replays them at the root: a prefix would break both.
            raise LocalProtocolError(
                "recording a service under a base path is not supported: give its root URL"
            )
        self.recorder = Recorder(origin, max_events=max_events)
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._start = clock()
        self.recorded_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def t(self) -> float:
        return self._clock() - self._start

    # What both recording streams decide, apart from their IO:

    def read_limit(self, timeout: float | None) -> float | None:
        """How long a recorded read may wait: the client's timeout or the idle
        timeout, whichever is shorter."""
        idle = self.idle_timeout
        return timeout if idle is None else (idle if timeout is None else min(idle, timeout))

    def idle_ended(self, timeout: float | None) -> bool:
        """Whether a read that timed out under :meth:`read_limit` ends a silent
        stream (else it was the client's own read timeout)."""
        idle = self.idle_timeout
        return idle is not None and (timeout is None or timeout > idle)

    def received(self, number: int, data: bytes) -> tuple[int, bool]:
        """Record ``data`` read on connection ``number``: how much of it the
        client gets, and whether the recording ends the stream there."""
        keep = self.recorder.received(number, data, self.t())
        return keep, self.recorder.should_stop(number)

    def cassette(self, *, redact: bool = True, secrets: tuple[str, ...] = ()) -> Cassette:
        return self.recorder.cassette(recorded_at=self.recorded_at, redact=redact, secrets=secrets)


class _AsyncRecordingStream:
    def __init__(self, inner: AsyncByteStream, recording: Recording, number: int) -> None:
        self._inner = inner
        self._recording = recording
        self._number = number
        self._ended = False

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        self._recording.recorder.sent(self._number, data, self._recording.t())
        await self._inner.send_all(data, timeout)

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        recording = self._recording
        if self._ended:
            return b""
        try:
            data = await self._inner.receive_some(max_bytes, recording.read_limit(timeout))
        except TimeoutError:
            if not recording.idle_ended(timeout):
                raise  # the client's own read timeout
            return await self._stop()
        keep, stop = recording.received(self._number, data)
        if stop:
            await self._stop()
        return data[:keep]

    async def _stop(self) -> bytes:
        self._ended = True
        self._recording.recorder.stopped(self._number)
        await self._inner.aclose()
        return b""

    async def start_tls(
        self, context: object, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        raise CassetteError("recording wraps connections that are already set up")

    def is_readable(self) -> bool:
        return self._ended or self._inner.is_readable()

    async def aclose(self) -> None:
        await self._inner.aclose()


class AsyncRecordingConnector:
    """Wraps a connector; every connection it opens is recorded."""

    def __init__(self, inner: AsyncConnectorProtocol, recording: Recording) -> None:
        self.inner = inner
        self.recording = recording

    @property
    def request_options(self) -> RequestOptions:
        return self.inner.request_options

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        stream = await self.inner.connect(timeout)
        number = self.recording.recorder.open_connection()
        return _AsyncRecordingStream(stream, self.recording, number)


class _SyncRecordingStream:
    def __init__(self, inner: SyncByteStream, recording: Recording, number: int) -> None:
        self._inner = inner
        self._recording = recording
        self._number = number
        self._ended = False

    def send_all(self, data: bytes, timeout: float | None) -> None:
        self._recording.recorder.sent(self._number, data, self._recording.t())
        self._inner.send_all(data, timeout)

    def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        recording = self._recording
        if self._ended:
            return b""
        try:
            data = self._inner.receive_some(max_bytes, recording.read_limit(timeout))
        except TimeoutError:
            if not recording.idle_ended(timeout):
                raise  # the client's own read timeout
            return self._stop()
        keep, stop = recording.received(self._number, data)
        if stop:
            self._stop()
        return data[:keep]

    def _stop(self) -> bytes:
        self._ended = True
        self._recording.recorder.stopped(self._number)
        self._inner.close()
        return b""

    def start_tls(
        self, context: object, server_hostname: str, timeout: float | None
    ) -> SyncByteStream:
        raise CassetteError("recording wraps connections that are already set up")

    def is_readable(self) -> bool:
        return self._ended or self._inner.is_readable()

    def close(self) -> None:
        self._inner.close()


class SyncRecordingConnector:
    """The blocking twin of :class:`AsyncRecordingConnector`."""

    def __init__(self, inner: SyncConnectorProtocol, recording: Recording) -> None:
        self.inner = inner
        self.recording = recording

    @property
    def request_options(self) -> RequestOptions:
        return self.inner.request_options

    def connect(self, timeout: float | None) -> SyncByteStream:
        stream = self.inner.connect(timeout)
        number = self.recording.recorder.open_connection()
        return _SyncRecordingStream(stream, self.recording, number)


# -- replay --------------------------------------------------------------------------


class ReplayClock(Protocol):
    """Where replay time comes from (a fake one makes timing tests instant)."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> Awaitable[None] | None: ...


def _cutter(rechunk: str | int) -> Callable[[bytes], list[bytes]]:
    """``"recorded"`` keeps the reads as they were; ``"bytes"`` gives single
    bytes; an int seeds random pieces of 1 to 64 bytes."""
    if isinstance(rechunk, int) and not isinstance(rechunk, bool):
        return rechunker(random.Random(rechunk).randint)
    if rechunk in ("recorded", "bytes"):
        return rechunker(rechunk)
    raise ValueError(f"rechunk must be 'recorded', 'bytes' or an int seed, not {rechunk!r}")


class _AnyioClock:
    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class _AsyncReplayStream:
    def __init__(self, state: ReplayState, clock: ReplayClock) -> None:
        self._state = state
        self._clock = clock
        self._eof = False

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        # Instant replay needs no clock at all.
        self._state.sent(data, 0.0 if self._state.timing.speed is None else self._clock.now())

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        if self._eof:
            return b""
        due, data = self._state.next(max_bytes)
        wait = due - self._clock.now() if due else 0.0
        if wait > 0:
            # A recorded gap longer than the client's read timeout times out,
            # as it would have live.
            await self._clock.sleep(wait if timeout is None else min(wait, timeout))  # type: ignore[misc]
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


class _ReplayConnector:
    """What the two replay connectors share: the replayer, timing, cutting."""

    #: The clock when none is given: the event loop's, or the system's.
    _default_clock: Callable[[], ReplayClock]

    def __init__(
        self,
        cassette: Cassette,
        *,
        timing: ReplayTiming | None = None,
        rechunk: str | int = "recorded",
        clock: ReplayClock | None = None,
    ) -> None:
        self.replayer = Replayer(cassette)
        self.timing = timing or ReplayTiming()
        self._cut = _cutter(rechunk)
        self.clock: ReplayClock = clock or self._default_clock()
        self._options = RequestOptions(Origin.parse(cassette.origin).host_header)

    @property
    def request_options(self) -> RequestOptions:
        return self._options

    def _state(self) -> ReplayState:
        # One connection's worth of replay: the server side of the next steps.
        return ReplayState(self.replayer.connection(), self.timing, self._cut)

    def assert_played(self) -> None:
        """Fail if any recorded step was never reached."""
        self.replayer.assert_played()


class AsyncReplayConnector(_ReplayConnector):
    """Serves an AsyncClient from a cassette, offline.

    Args:
        cassette: what to play.
        timing: when chunks arrive (default: at once).
        rechunk: ``"recorded"``, ``"bytes"`` or an int seed for random pieces.
        clock: replaces the event loop's clock and sleep.
    """

    _default_clock = _AnyioClock

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        return _AsyncReplayStream(self._state(), self.clock)


class _SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _SyncReplayStream:
    def __init__(self, state: ReplayState, clock: ReplayClock) -> None:
        self._state = state
        self._clock = clock
        self._eof = False

    def send_all(self, data: bytes, timeout: float | None) -> None:
        self._state.sent(data, 0.0 if self._state.timing.speed is None else self._clock.now())

    def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        if self._eof:
            return b""
        due, data = self._state.next(max_bytes)
        wait = due - self._clock.now() if due else 0.0
        if wait > 0:
            self._clock.sleep(wait if timeout is None else min(wait, timeout))
            if timeout is not None and wait > timeout:
                raise TimeoutError
        if data is None:
            self._eof = True
            return b""
        return data

    def start_tls(
        self, context: object, server_hostname: str, timeout: float | None
    ) -> SyncByteStream:
        raise CassetteError("replayed connections carry no TLS")

    def is_readable(self) -> bool:
        return self._eof or self._state.connection.at_eof

    def close(self) -> None:
        self._eof = True


class SyncReplayConnector(_ReplayConnector):
    """The blocking twin of :class:`AsyncReplayConnector`."""

    _default_clock = _SystemClock

    def connect(self, timeout: float | None) -> SyncByteStream:
        return _SyncReplayStream(self._state(), self.clock)
