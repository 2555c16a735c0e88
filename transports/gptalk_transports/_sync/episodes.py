# GENERATED from _async/episodes.py by `python -m tests.unasync`; do not edit.
"""The episode connectors: a cassette's episodes replayed in any subset, and
``new_episodes`` (replay while the requests match, then record live).

What an episode is, and how requests are matched to them, is
:mod:`.._episodes`'s; these connectors move the bytes.
"""

from __future__ import annotations

from gptalk_proto.cassette import Cassette, CassetteError, ReplayState

from .._backends.base import SyncByteStream
from .._cassettes import Recording
from .._episodes import EpisodeReplayer, Matching, _Episodes, _Pending
from .._handshake import RequestOptions
from .connector import SyncConnectorProtocol
from .recording import SyncRecordingConnector
from .replay import SyncReplayConnector

__all__ = ["SyncEpisodeConnector", "SyncEpisodeReplayConnector"]


class SyncEpisodeReplayConnector(SyncReplayConnector):
    """An :class:`SyncReplayConnector` that plays episodes in any subset."""

    replayer: EpisodeReplayer

    def __init__(self, cassette: Cassette, matching: Matching | None = None) -> None:
        super().__init__(cassette)
        self.replayer = EpisodeReplayer(cassette, matching)


class _SyncEpisodeStream:
    def __init__(self, connector: SyncEpisodeConnector, timeout: float | None) -> None:
        self._connector = connector
        self._timeout = timeout
        self._state: ReplayState | None = connector.episodes.state()
        self._pending = _Pending()
        self._live: SyncByteStream | None = None

    def send_all(self, data: bytes, timeout: float | None) -> None:
        if self._state is not None:
            # Episodes replay at once (no timing): no clock is read, on either side.
            if self._pending.sent(self._state, data, 0.0):
                return
            self._state = None
            self._live = self._connector.live.connect(self._timeout)
            data = self._pending.data
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
    """Replays ``existing``'s episodes while they match, else records through
    ``live``; :meth:`cassette` keeps every recorded episode."""

    def __init__(
        self,
        existing: Cassette,
        live: SyncConnectorProtocol,
        recording: Recording,
        matching: Matching | None = None,
    ) -> None:
        self.episodes = _Episodes(existing, matching)
        self.replayer = self.episodes.replayer
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
        """The recorded cassette, then the new steps (not yet redacted)."""
        return self.episodes.cassette(self.recording.cassette(redact=False))
