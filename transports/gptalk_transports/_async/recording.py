"""Recording: a connector that tees every byte of its connections into a cassette.

Every byte the client writes or reads goes through the :class:`~.._cassettes.Recording`'s
:class:`~gptalk_proto.Recorder` as it passes, so a recorded chat behaves
exactly like a live one.  An endless stream stops cleanly at ``[DONE]`` (the
client stops), at an event limit, or after an idle timeout: the recording then
ends the stream as the server closing it.
"""

from __future__ import annotations

from gptalk_proto.cassette import CassetteError

from .._backends.base import AsyncByteStream
from .._cassettes import Recording
from .._handshake import RequestOptions
from .connector import AsyncConnectorProtocol

__all__ = ["AsyncRecordingConnector"]


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
        """The options a client's requests get (those of the wrapped connector)."""
        return self.inner.request_options

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        """Open a connection: the wrapped connector's, its bytes recorded."""
        stream = await self.inner.connect(timeout)
        number = self.recording.recorder.open_connection()
        return _AsyncRecordingStream(stream, self.recording, number)
