# GENERATED from _async/recording.py by `python -m tests.unasync`; do not edit.
"""Recording: a connector that tees every byte of its connections into a cassette.

Every byte the client writes or reads goes through the :class:`~.._cassettes.Recording`'s
:class:`~gptalk_proto.Recorder` as it passes, so a recorded chat behaves
exactly like a live one.  An endless stream stops cleanly at ``[DONE]`` (the
client stops), at an event limit, or after an idle timeout: the recording then
ends the stream as the server closing it.
"""

from __future__ import annotations

from gptalk_proto.cassette import CassetteError

from .._backends.base import SyncByteStream
from .._cassettes import Recording
from .._handshake import RequestOptions
from .connector import SyncConnectorProtocol

__all__ = ["SyncRecordingConnector"]


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
    """Wraps a connector; every connection it opens is recorded."""

    def __init__(self, inner: SyncConnectorProtocol, recording: Recording) -> None:
        self.inner = inner
        self.recording = recording

    @property
    def request_options(self) -> RequestOptions:
        """The options a client's requests get (those of the wrapped connector)."""
        return self.inner.request_options

    def connect(self, timeout: float | None) -> SyncByteStream:
        """Open a connection: the wrapped connector's, its bytes recorded."""
        stream = self.inner.connect(timeout)
        number = self.recording.recorder.open_connection()
        return _SyncRecordingStream(stream, self.recording, number)
