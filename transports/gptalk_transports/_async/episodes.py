"""The episode connectors: a cassette's episodes replayed in any subset, and
``new_episodes`` (replay while the requests match, then record live).

What an episode is, and how requests are matched to them, is
:mod:`.._episodes`'s; these connectors move the bytes.
"""

from __future__ import annotations

from gptalk_proto.cassette import Cassette, CassetteError, ReplayState

from .._backends.base import AsyncByteStream
from .._cassettes import Recording
from .._episodes import EpisodeReplayer, Matching, _Episodes, _Pending
from .._handshake import RequestOptions
from .connector import AsyncConnectorProtocol
from .recording import AsyncRecordingConnector
from .replay import AsyncReplayConnector

__all__ = ["AsyncEpisodeConnector", "AsyncEpisodeReplayConnector"]


class AsyncEpisodeReplayConnector(AsyncReplayConnector):
    """An :class:`AsyncReplayConnector` that plays episodes in any subset."""

    replayer: EpisodeReplayer

    def __init__(self, cassette: Cassette, matching: Matching | None = None) -> None:
        super().__init__(cassette)
        self.replayer = EpisodeReplayer(cassette, matching)


class _AsyncEpisodeStream:
    def __init__(self, connector: AsyncEpisodeConnector, timeout: float | None) -> None:
        self._connector = connector
        self._timeout = timeout
        self._state: ReplayState | None = connector.episodes.state()
        self._pending = _Pending()
        self._live: AsyncByteStream | None = None

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        if self._state is not None:
            # Episodes replay at once (no timing): no clock is read, on either side.
            if self._pending.sent(self._state, data, 0.0):
                return
            self._state = None
            self._live = await self._connector.live.connect(self._timeout)
            data = self._pending.data
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
    """Replays ``existing``'s episodes while they match, else records through
    ``live``; :meth:`cassette` keeps every recorded episode."""

    def __init__(
        self,
        existing: Cassette,
        live: AsyncConnectorProtocol,
        recording: Recording,
        matching: Matching | None = None,
    ) -> None:
        self.episodes = _Episodes(existing, matching)
        self.replayer = self.episodes.replayer
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
        """The recorded cassette, then the new steps (not yet redacted)."""
        return self.episodes.cassette(self.recording.cassette(redact=False))
