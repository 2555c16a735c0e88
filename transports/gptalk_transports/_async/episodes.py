"""The episode connectors: a cassette's episodes replayed in any subset, and
``new_episodes`` (replay the requests that match, record the others live).

What an episode is, and how requests are matched to them, is
:mod:`.._episodes`'s; these connectors move the bytes.
"""

from __future__ import annotations

from gptalk_proto.cassette import Cassette, CassetteError

from .._backends.base import AsyncByteStream
from .._cassettes import Recording
from .._episodes import EpisodeReplayer, Matching, _Episodes, _Route
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
    """One client connection in ``new_episodes``: each request replayed if an
    episode has it, else sent on a live, recorded connection (opened for the
    first such request, kept for the next; see ``_Route``)."""

    def __init__(self, connector: AsyncEpisodeConnector, timeout: float | None) -> None:
        self._connector = connector
        self._timeout = timeout
        self._route = _Route(connector.episodes)
        self._live: AsyncByteStream | None = None

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        # Episodes replay at once (no timing): no clock is read, on either side.
        data = self._route.sent(data)
        if not data:
            return
        if self._route.went_live:
            self._route.went_live = False
            if self._live is not None and self._live.is_readable():
                # The service closed it while requests replayed: a new one.
                await self._live.aclose()
                self._live = None
            if self._live is None:
                self._live = await self._connector.live.connect(self._timeout)
        assert self._live is not None
        await self._live.send_all(data, timeout)

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        state = self._route.reading()
        if self._route.live:
            assert self._live is not None
            return await self._live.receive_some(max_bytes, timeout)
        if state is None:
            return b""
        _, data = state.next(max_bytes)
        return b"" if data is None else data

    async def start_tls(
        self, context: object, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        raise CassetteError("episode connections carry no TLS of their own")

    def is_readable(self) -> bool:
        live = self._live is not None and self._live.is_readable()
        return live or self._route.at_eof

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
        # (Checked again per request: the episodes may run out meanwhile.)
        if self.episodes.replaying():
            return _AsyncEpisodeStream(self, timeout)
        return await self.live.connect(timeout)

    def cassette(self) -> Cassette:
        """The recorded cassette, then the new steps (not yet redacted)."""
        return self.episodes.cassette(self.recording.cassette(redact=False))
