"""``new_episodes``: replay while the requests match, then record the rest.

A connection starts by playing the cassette.  At the first request the
cassette does not have at that step (or when it has no steps left), the
connection switches to a live, recorded connection and sends that request
there; every connection opened afterwards is live from the start.  The
cassette then becomes the steps that were played followed by what was
recorded (``Cassette.extend``).

For GPTalk a caveat follows: a request sent live after a replayed login
carries the replayed (placeholder) token, which the live service refuses;
the client then logs in again on its own, and that is recorded too.
"""

from __future__ import annotations

import time

import anyio

from gptalk_proto import Cassette, CassetteError, Replayer

from ._cassettes import (
    AsyncRecordingConnector,
    Recording,
    ReplayTiming,
    SyncRecordingConnector,
    _cutter,
    _ReplayState,
)
from ._connector import AsyncConnectorProtocol, RequestOptions, SyncConnectorProtocol
from ._streams import AsyncByteStream, SyncByteStream

__all__ = ["AsyncEpisodeConnector", "SyncEpisodeConnector"]


class _Episodes:
    """What the connections of one new_episodes session share."""

    def __init__(self, existing: Cassette) -> None:
        self.replayer = Replayer(existing)
        self.diverged = False
        self._cut = _cutter("recorded")
        self._timing = ReplayTiming()

    def replaying(self) -> bool:
        return not self.diverged and bool(self.replayer.unplayed())

    def state(self) -> _ReplayState:
        return _ReplayState(self.replayer.connection(), self._timing, self._cut)

    def cassette(self, recorded: Cassette) -> Cassette:
        return self.replayer.cassette.extend(recorded, keep=self.replayer.played)


class _AsyncEpisodeStream:
    def __init__(self, connector: AsyncEpisodeConnector, timeout: float | None) -> None:
        self._connector = connector
        self._timeout = timeout
        self._state: _ReplayState | None = connector.episodes.state()
        self._live: AsyncByteStream | None = None

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        if self._state is not None:
            try:
                self._state.sent(data, anyio.current_time())
                return
            except CassetteError:
                self._connector.episodes.diverged = True
                self._state = None
                self._live = await self._connector.live.connect(self._timeout)
        assert self._live is not None
        await self._live.send_all(data, timeout)

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        if self._state is not None:
            _, data = self._state.next(max_bytes)
            return b"" if data is None else data
        assert self._live is not None
        return await self._live.receive_some(max_bytes, timeout)

    async def start_tls(
        self, context: object, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        raise CassetteError("episode connections carry no TLS of their own")

    def is_readable(self) -> bool:
        if self._live is not None:
            return self._live.is_readable()
        return self._state is not None and self._state.connection.at_eof

    async def aclose(self) -> None:
        if self._live is not None:
            await self._live.aclose()


class AsyncEpisodeConnector:
    """Replays ``existing`` while it matches, then records through ``live``."""

    def __init__(
        self, existing: Cassette, live: AsyncConnectorProtocol, recording: Recording
    ) -> None:
        self.episodes = _Episodes(existing)
        self.live = AsyncRecordingConnector(live, recording)
        self.recording = recording

    @property
    def request_options(self) -> RequestOptions:
        return self.live.request_options

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        if self.episodes.replaying():
            return _AsyncEpisodeStream(self, timeout)
        return await self.live.connect(timeout)

    def cassette(self) -> Cassette:
        """The played steps, then the recorded ones (not yet redacted)."""
        return self.episodes.cassette(self.recording.cassette(redact=False))


class _SyncEpisodeStream:
    def __init__(self, connector: SyncEpisodeConnector, timeout: float | None) -> None:
        self._connector = connector
        self._timeout = timeout
        self._state: _ReplayState | None = connector.episodes.state()
        self._live: SyncByteStream | None = None

    def send_all(self, data: bytes, timeout: float | None) -> None:
        if self._state is not None:
            try:
                self._state.sent(data, time.monotonic())
                return
            except CassetteError:
                self._connector.episodes.diverged = True
                self._state = None
                self._live = self._connector.live.connect(self._timeout)
        assert self._live is not None
        self._live.send_all(data, timeout)

    def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        if self._state is not None:
            _, data = self._state.next(max_bytes)
            return b"" if data is None else data
        assert self._live is not None
        return self._live.receive_some(max_bytes, timeout)

    def start_tls(
        self, context: object, server_hostname: str, timeout: float | None
    ) -> SyncByteStream:
        raise CassetteError("episode connections carry no TLS of their own")

    def is_readable(self) -> bool:
        if self._live is not None:
            return self._live.is_readable()
        return self._state is not None and self._state.connection.at_eof

    def close(self) -> None:
        if self._live is not None:
            self._live.close()


class SyncEpisodeConnector:
    """The blocking twin of :class:`AsyncEpisodeConnector`."""

    def __init__(
        self, existing: Cassette, live: SyncConnectorProtocol, recording: Recording
    ) -> None:
        self.episodes = _Episodes(existing)
        self.live = SyncRecordingConnector(live, recording)
        self.recording = recording

    @property
    def request_options(self) -> RequestOptions:
        return self.live.request_options

    def connect(self, timeout: float | None) -> SyncByteStream:
        if self.episodes.replaying():
            return _SyncEpisodeStream(self, timeout)
        return self.live.connect(timeout)

    def cassette(self) -> Cassette:
        return self.episodes.cassette(self.recording.cassette(redact=False))
